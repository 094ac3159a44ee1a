-- Shared by every dataset: where each bronze record came from (prepended by
-- jobs.datasets._sql_text, so each dataset's text continues the WITH list).
WITH located AS (
    SELECT *,
        regexp_extract(filename, '(fmp/.*)$', 1) AS source_file,
        regexp_extract(filename, 'ingested_at=([0-9]{8}T[0-9]{6}Z)', 1) AS ts
    FROM bronze_raw
),
