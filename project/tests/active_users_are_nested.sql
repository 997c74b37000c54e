-- Users active on the day were active in its week, and those in its 30 days.
select date, daily_active_users, weekly_active_users, monthly_active_users
from {{ ref('fct_daily_metrics') }}
where not (daily_active_users <= weekly_active_users and weekly_active_users <= monthly_active_users)
