-- End-of-day prices: bronze_raw -> checked rows (reason NULL = valid; see _latest.sql).
-- One text for both engines: DuckDB and Spark SQL execute it unchanged, so it
-- sticks to their common dialect (TRY_CAST, regexp_extract, ROW_NUMBER, CASE).
typed AS (
    SELECT
        NULLIF(TRIM(j_symbol), '') AS symbol,
        TRY_CAST(j_date AS DATE) AS date,
        TRY_CAST(j_open AS DOUBLE) AS open,
        TRY_CAST(j_high AS DOUBLE) AS high,
        TRY_CAST(j_low AS DOUBLE) AS low,
        TRY_CAST(j_close AS DOUBLE) AS close,
        -- FMP sends volume as a JSON number that may carry ".0"
        TRY_CAST(ROUND(TRY_CAST(j_volume AS DOUBLE), 0) AS BIGINT) AS volume,
        TRY_CAST(j_vwap AS DOUBLE) AS vwap,
        TRY_CAST(j_change AS DOUBLE) AS change,
        TRY_CAST(j_changePercent AS DOUBLE) AS change_pct,
        TRY_CAST(concat(substr(ts, 1, 4), '-', substr(ts, 5, 2), '-', substr(ts, 7, 2), ' ',
                        substr(ts, 10, 2), ':', substr(ts, 12, 2), ':', substr(ts, 14, 2))
                 AS TIMESTAMP) AS ingested_at,
        source_file, file_ok, is_object, record,
        j_date, j_open, j_high, j_low, j_close, j_volume, j_vwap, j_change, j_changePercent
    FROM located
),
checked AS (
    SELECT *,
        CASE
            WHEN NOT file_ok THEN 'unparseable_file'
            WHEN NOT is_object THEN 'not_an_object'
            WHEN symbol IS NULL THEN 'missing_symbol'
            WHEN date IS NULL THEN 'bad_date'
            WHEN date <> DATE '{date}' THEN 'outside_partition_date'
            WHEN (j_open IS NOT NULL AND open IS NULL) OR (j_high IS NOT NULL AND high IS NULL)
              OR (j_low IS NOT NULL AND low IS NULL) OR (j_close IS NOT NULL AND close IS NULL)
              OR (j_volume IS NOT NULL AND volume IS NULL) OR (j_vwap IS NOT NULL AND vwap IS NULL)
              OR (j_change IS NOT NULL AND change IS NULL)
              OR (j_changePercent IS NOT NULL AND change_pct IS NULL) THEN 'malformed_number'
            WHEN close IS NULL THEN 'missing_close'
            -- the upper bound also rejects NaN, which both engines sort above every number
            WHEN NOT (close > 0 AND close < 1e9) OR open <= 0 OR high <= 0 OR low <= 0
              THEN 'non_positive_price'
            WHEN high < low THEN 'high_below_low'
            WHEN volume < 0 THEN 'negative_volume'
        END AS reason
    FROM typed
)
SELECT {columns}, reason,
    -- only a reject keeps its record, so the table stays narrow
    CASE WHEN reason IS NOT NULL THEN record END AS record
FROM checked
