-- Exactly one row per day, from the first day with data to the last: rows
-- returned are missing days (count 0) and repeated ones (count > 1).
select d.date, count(m.date) as rows
from {{ ref('dim_date') }} as d
left join {{ ref('fct_daily_metrics') }} as m on m.date = d.date
group by d.date
having count(m.date) <> 1
union all
select m.date, 0
from {{ ref('fct_daily_metrics') }} as m
where not exists (select 1 from {{ ref('dim_date') }} as d where d.date = m.date)
