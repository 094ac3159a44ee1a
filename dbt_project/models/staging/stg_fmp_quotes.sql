with source as (
    select * from {{ source('silver', 'quotes') }}
),

renamed as (
    select
        symbol,
        {{ to_date(date_col()) }} as quote_date,
        name as company_name,
        price,
        change as price_change,
        change_pct as price_change_pct,
        volume,
        day_low,
        day_high,
        year_low,
        year_high,
        market_cap,
        price_avg_50,
        price_avg_200,
        exchange,
        open as open_price,
        previous_close,
        quote_timestamp,
        ingested_at
    from source
)

select * from renamed
