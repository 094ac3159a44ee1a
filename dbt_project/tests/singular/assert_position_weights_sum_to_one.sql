-- Every portfolio's position weights add up to 1 on every date.
select portfolio_id, "date", sum(weight) as total_weight
from {{ ref('fct_portfolio_positions') }}
group by portfolio_id, "date"
having abs(sum(weight) - 1) > 0.000001
