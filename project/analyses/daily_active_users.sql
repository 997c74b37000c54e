-- Seed 003's sample query "Daily Active Users", unchanged.
SELECT 
    date,
    daily_active_users,
    weekly_active_users,
    monthly_active_users
FROM analytics.fct_daily_metrics
ORDER BY date DESC
LIMIT 30;
