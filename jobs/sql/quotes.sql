-- Quotes: bronze_raw -> checked rows (reason NULL = valid; see _latest.sql).
-- Shared by DuckDB and Spark SQL (see eod_prices.sql). A quote belongs to the
-- trading date it was ingested for; `timestamp` is FMP's epoch seconds (UTC).
typed AS (
    SELECT
        NULLIF(TRIM(j_symbol), '') AS symbol,
        DATE '{date}' AS date,
        j_name AS name,
        TRY_CAST(j_price AS DOUBLE) AS price,
        TRY_CAST(j_change AS DOUBLE) AS change,
        TRY_CAST(j_changePercentage AS DOUBLE) AS change_pct,
        TRY_CAST(ROUND(TRY_CAST(j_volume AS DOUBLE), 0) AS BIGINT) AS volume,
        TRY_CAST(j_dayLow AS DOUBLE) AS day_low,
        TRY_CAST(j_dayHigh AS DOUBLE) AS day_high,
        TRY_CAST(j_yearLow AS DOUBLE) AS year_low,
        TRY_CAST(j_yearHigh AS DOUBLE) AS year_high,
        TRY_CAST(j_marketCap AS DOUBLE) AS market_cap,
        TRY_CAST(j_priceAvg50 AS DOUBLE) AS price_avg_50,
        TRY_CAST(j_priceAvg200 AS DOUBLE) AS price_avg_200,
        j_exchange AS exchange,
        TRY_CAST(j_open AS DOUBLE) AS open,
        TRY_CAST(j_previousClose AS DOUBLE) AS previous_close,
        TIMESTAMP '1970-01-01 00:00:00'
            + INTERVAL '1' SECOND * TRY_CAST(ROUND(TRY_CAST(j_timestamp AS DOUBLE), 0) AS BIGINT)
            AS quote_timestamp,
        TRY_CAST(concat(substr(ts, 1, 4), '-', substr(ts, 5, 2), '-', substr(ts, 7, 2), ' ',
                        substr(ts, 10, 2), ':', substr(ts, 12, 2), ':', substr(ts, 14, 2))
                 AS TIMESTAMP) AS ingested_at,
        source_file, file_ok, is_object, record,
        j_price, j_change, j_changePercentage, j_volume, j_dayLow, j_dayHigh, j_yearLow,
        j_yearHigh, j_marketCap, j_open, j_previousClose, j_timestamp
    FROM located
),
checked AS (
    SELECT *,
        CASE
            WHEN NOT file_ok THEN 'unparseable_file'
            WHEN NOT is_object THEN 'not_an_object'
            WHEN symbol IS NULL THEN 'missing_symbol'
            WHEN (j_price IS NOT NULL AND price IS NULL) OR (j_change IS NOT NULL AND change IS NULL)
              OR (j_changePercentage IS NOT NULL AND change_pct IS NULL)
              OR (j_volume IS NOT NULL AND volume IS NULL)
              OR (j_dayLow IS NOT NULL AND day_low IS NULL)
              OR (j_dayHigh IS NOT NULL AND day_high IS NULL)
              OR (j_yearLow IS NOT NULL AND year_low IS NULL)
              OR (j_yearHigh IS NOT NULL AND year_high IS NULL)
              OR (j_marketCap IS NOT NULL AND market_cap IS NULL)
              OR (j_open IS NOT NULL AND open IS NULL)
              OR (j_previousClose IS NOT NULL AND previous_close IS NULL)
              OR (j_timestamp IS NOT NULL AND quote_timestamp IS NULL) THEN 'malformed_number'
            WHEN price IS NULL THEN 'missing_price'
            WHEN NOT (price > 0 AND price < 1e9) OR open <= 0 OR day_low <= 0 OR day_high <= 0
              THEN 'non_positive_price'
            WHEN day_high < day_low THEN 'high_below_low'
            WHEN volume < 0 THEN 'negative_volume'
        END AS reason
    FROM typed
)
SELECT {columns}, reason,
    -- only a reject keeps its record, so the table stays narrow
    CASE WHEN reason IS NOT NULL THEN record END AS record
FROM checked
