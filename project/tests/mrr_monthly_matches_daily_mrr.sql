-- A month's MRR is fct_daily_metrics' MRR on the month's last day.
select m.month_start, m.mrr as monthly, d.mrr as daily
from {{ ref('mrr_monthly') }} as m
left join {{ ref('fct_daily_metrics') }} as d on d.date = m.month_end_day
where d.mrr is distinct from m.mrr
