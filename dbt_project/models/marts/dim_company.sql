-- One row per company: its most recent profile snapshot.
with profiles as (
    select * from {{ ref('stg_fmp_company_profile') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by symbol order by snapshot_date desc, ingested_at desc
        ) as recency
    from profiles
),

final as (
    select
        symbol,
        company_name,
        exchange,
        sector,
        industry,
        country,
        currency,
        market_cap
    from ranked
    where recency = 1
)

select * from final
