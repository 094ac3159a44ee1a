-- Shared by every dataset: bronze_checked -> silver, one row per key. The latest
-- ingestion wins (FMP restates past days); the other ranking columns only make
-- ties deterministic. Most keys arrive once, so only the repeated ones are
-- ranked: the sort sees the duplicates, not the whole day. Placeholders are
-- filled by jobs.datasets.render from the dataset's key and ranking.
WITH repeated AS (
    SELECT {key_as_repeated} FROM bronze_checked WHERE reason IS NULL
    GROUP BY {key} HAVING count(*) > 1
)
SELECT {columns}
FROM bronze_checked LEFT JOIN repeated ON {key_join}
WHERE reason IS NULL AND repeated.{repeated_key} IS NULL
UNION ALL
SELECT {columns} FROM (
    SELECT bronze_checked.*, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {ranking}) AS rn
    FROM bronze_checked JOIN repeated ON {key_join}
    WHERE reason IS NULL
) ranked
WHERE rn = 1
