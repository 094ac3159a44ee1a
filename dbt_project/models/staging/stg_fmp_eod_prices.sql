with source as (
    select * from {{ source('silver', 'eod_prices') }}
),

renamed as (
    select
        symbol,
        {{ to_date(date_col()) }} as price_date,
        open as open_price,
        high as high_price,
        low as low_price,
        close as close_price,
        volume,
        vwap,
        change as intraday_change,
        change_pct as intraday_change_pct,
        ingested_at,
        source_file
    from source
)

select * from renamed
