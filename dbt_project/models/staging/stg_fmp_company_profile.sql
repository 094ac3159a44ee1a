with source as (
    select * from {{ source('silver', 'profiles') }}
),

renamed as (
    select
        symbol,
        {{ to_date(date_col()) }} as snapshot_date,
        company_name,
        exchange,
        exchange_full_name,
        sector,
        industry,
        country,
        currency,
        market_cap,
        price,
        beta,
        last_dividend,
        -- FMP's 52-week range arrives as "low-high"
        {{ try_to_double("split_part(price_range, '-', 1)") }} as range_low,
        {{ try_to_double("split_part(price_range, '-', 2)") }} as range_high,
        full_time_employees,
        ipo_date,
        is_etf,
        is_actively_trading,
        ingested_at
    from source
)

select * from renamed
