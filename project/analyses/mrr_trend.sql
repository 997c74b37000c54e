-- Seed 003's sample query "MRR Trend", unchanged: the current monthly value
-- of active subscriptions by the month they were created in.
SELECT 
    date_trunc('month', created_at) as month,
    SUM(monthly_value) as mrr
FROM analytics.fct_subscriptions
WHERE status = 'active'
GROUP BY month
ORDER BY month;
