-- Seed 003's sample query "Cohort Retention", unchanged (its "retained_30d"
-- counts users signed up 30 or more days ago; cohort_retention_days has
-- day-30 retention by sessions).
SELECT 
    date_trunc('month', signup_date) as cohort_month,
    COUNT(DISTINCT user_id) as cohort_size,
    COUNT(DISTINCT CASE WHEN days_since_signup >= 30 THEN user_id END) as retained_30d
FROM analytics.dim_users
GROUP BY cohort_month
ORDER BY cohort_month;
