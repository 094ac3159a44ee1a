-- One row per symbol and trading day: the prices the portfolio marts value with.
with prices as (
    select * from {{ ref('stg_fmp_eod_prices') }}
),

final as (
    select
        symbol,
        price_date as {{ date_col() }},
        open_price as open,
        high_price as high,
        low_price as low,
        close_price as close,
        volume,
        vwap,
        intraday_change as change,
        intraday_change_pct as change_pct
    from prices
)

select * from final
