-- The summary's market value is the sum of its positions (no position lost or doubled).
with positions as (
    select portfolio_id, "date", sum(market_value) as market_value, count(*) as positions
    from {{ ref('fct_portfolio_positions') }}
    group by portfolio_id, "date"
)
select s.portfolio_id, s."date", s.market_value, p.market_value as positions_value
from {{ ref('daily_portfolio_summary') }} as s
left join positions as p
  on p.portfolio_id = s.portfolio_id and p."date" = s."date"
where p.portfolio_id is null
   or abs(s.market_value - p.market_value) > 0.01
   or s.position_count <> p.positions
