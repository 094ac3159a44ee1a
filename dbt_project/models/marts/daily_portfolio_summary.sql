-- One row per portfolio and trading day: value, cost, unrealised P&L and the
-- day's change. Percentages are in percent units, like FMP's.
with positions as (
    select * from {{ ref('fct_portfolio_positions') }}
),

previous_close as (
    select
        symbol,
        {{ date_col() }},
        lag(close) over (partition by symbol order by {{ date_col() }}) as prev_close
    from {{ ref('fct_daily_prices') }}
),

with_previous as (
    select
        pos.*,
        prev.prev_close
    from positions as pos
    left join previous_close as prev
        on prev.symbol = pos.symbol
        and prev.{{ date_col() }} = pos.{{ date_col() }}
),

aggregated as (
    select
        portfolio_id,
        {{ date_col() }},
        sum(market_value) as market_value,
        sum(cost_basis) as cost_basis,
        sum(unrealized_pnl) as unrealized_pnl,
        -- a symbol's first priced day has no previous close: it adds no day change
        sum(case when prev_close is not null then shares * (close - prev_close) else 0 end) as day_change,
        sum(case when prev_close is not null then shares * prev_close else 0 end) as previous_value,
        count(*) as position_count
    from with_previous
    group by portfolio_id, {{ date_col() }}
),

final as (
    select
        portfolio_id,
        {{ date_col() }},
        {{ money('market_value') }} as market_value,
        {{ money('cost_basis') }} as cost_basis,
        {{ money('unrealized_pnl') }} as unrealized_pnl,
        round({{ safe_divide('unrealized_pnl', 'cost_basis') }} * 100, 4) as unrealized_pnl_pct,
        {{ money('day_change') }} as day_change,
        round({{ safe_divide('day_change', 'previous_value') }} * 100, 4) as day_change_pct,
        position_count
    from aggregated
)

select * from final
