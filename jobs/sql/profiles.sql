-- Company profiles: bronze_raw -> checked rows (reason NULL = valid; see _latest.sql).
-- Shared by DuckDB and Spark SQL (see eod_prices.sql). A profile is a snapshot
-- of the date it was ingested for; the key is the symbol alone.
typed AS (
    SELECT
        NULLIF(TRIM(j_symbol), '') AS symbol,
        DATE '{date}' AS date,
        j_companyName AS company_name,
        j_exchange AS exchange,
        j_exchangeFullName AS exchange_full_name,
        j_sector AS sector,
        j_industry AS industry,
        j_country AS country,
        j_currency AS currency,
        TRY_CAST(j_marketCap AS DOUBLE) AS market_cap,
        TRY_CAST(j_price AS DOUBLE) AS price,
        TRY_CAST(j_beta AS DOUBLE) AS beta,
        TRY_CAST(j_lastDividend AS DOUBLE) AS last_dividend,
        j_range AS price_range,
        TRY_CAST(ROUND(TRY_CAST(j_volume AS DOUBLE), 0) AS BIGINT) AS volume,
        TRY_CAST(ROUND(TRY_CAST(j_averageVolume AS DOUBLE), 0) AS BIGINT) AS average_volume,
        j_cik AS cik,
        j_isin AS isin,
        j_cusip AS cusip,
        j_website AS website,
        j_ceo AS ceo,
        -- FMP sends the head count as a string
        TRY_CAST(ROUND(TRY_CAST(j_fullTimeEmployees AS DOUBLE), 0) AS BIGINT) AS full_time_employees,
        TRY_CAST(j_ipoDate AS DATE) AS ipo_date,
        TRY_CAST(j_isEtf AS BOOLEAN) AS is_etf,
        TRY_CAST(j_isActivelyTrading AS BOOLEAN) AS is_actively_trading,
        TRY_CAST(j_isAdr AS BOOLEAN) AS is_adr,
        TRY_CAST(j_isFund AS BOOLEAN) AS is_fund,
        TRY_CAST(concat(substr(ts, 1, 4), '-', substr(ts, 5, 2), '-', substr(ts, 7, 2), ' ',
                        substr(ts, 10, 2), ':', substr(ts, 12, 2), ':', substr(ts, 14, 2))
                 AS TIMESTAMP) AS ingested_at,
        source_file, file_ok, is_object, record,
        j_marketCap, j_price, j_beta, j_lastDividend, j_volume, j_averageVolume
    FROM located
),
checked AS (
    SELECT *,
        CASE
            WHEN NOT file_ok THEN 'unparseable_file'
            WHEN NOT is_object THEN 'not_an_object'
            WHEN symbol IS NULL THEN 'missing_symbol'
            WHEN (j_marketCap IS NOT NULL AND market_cap IS NULL)
              OR (j_price IS NOT NULL AND price IS NULL) OR (j_beta IS NOT NULL AND beta IS NULL)
              OR (j_lastDividend IS NOT NULL AND last_dividend IS NULL)
              OR (j_volume IS NOT NULL AND volume IS NULL)
              OR (j_averageVolume IS NOT NULL AND average_volume IS NULL) THEN 'malformed_number'
            WHEN company_name IS NULL OR TRIM(company_name) = '' THEN 'missing_company_name'
            WHEN price < 0 OR market_cap < 0 THEN 'negative_value'
        END AS reason
    FROM typed
)
SELECT {columns}, reason,
    -- only a reject keeps its record, so the table stays narrow
    CASE WHEN reason IS NOT NULL THEN record END AS record
FROM checked
