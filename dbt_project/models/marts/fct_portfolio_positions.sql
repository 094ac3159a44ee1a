-- One row per portfolio, trading day and symbol held that day, valued at the close.
-- Lots of the same symbol add up; a lot counts from its opened_date on.
with holdings as (
    select * from {{ ref('holdings') }}
),

prices as (
    select symbol, {{ date_col() }}, close from {{ ref('fct_daily_prices') }}
),

positions as (
    select
        h.portfolio_id,
        p.{{ date_col() }},
        h.symbol,
        sum(h.shares) as shares,
        sum(h.cost_basis) as cost_basis,
        max(p.close) as close
    from holdings as h
    inner join prices as p
        on p.symbol = h.symbol
        and p.{{ date_col() }} >= h.opened_date
    group by h.portfolio_id, p.{{ date_col() }}, h.symbol
),

valued as (
    select
        *,
        shares * close as exact_market_value
    from positions
),

final as (
    select
        portfolio_id,
        {{ date_col() }},
        symbol,
        shares,
        close,
        {{ money('exact_market_value') }} as market_value,
        {{ money('cost_basis') }} as cost_basis,
        {{ money('exact_market_value - cost_basis') }} as unrealized_pnl,
        -- Rounded: the window sum adds rows in no fixed order, and re-running a
        -- date must give byte-identical gold (the last bits would differ).
        round({{ safe_divide('exact_market_value',
                             'sum(exact_market_value) over (partition by portfolio_id, ' ~ date_col() ~ ')') }}, 10)
            as weight
    from valued
)

select * from final
