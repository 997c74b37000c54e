-- Seed 002: a company with no session in a month has churned for good.
-- Rows returned are sessions of a company after the month it churned in.
select c.company_id, c.churned_month, s.session_id, s.session_date
from {{ ref('dim_companies') }} as c
join {{ ref('fct_sessions') }} as s on s.company_id = c.company_id
where c.churned_month is not null
  and s.session_date >= (c.churned_month + interval '1 month')::date
