//! PulseMetrics' semantic layer against its marts: every metric of
//! fct_daily_metrics answers, day by day, the mart's column; by month, the
//! sums of the days (flows), the last day (stocks, which mrr_monthly keeps
//! as a second computation) and the ratio of the month's sums (rates); and
//! the sliced facts add up to the daily totals.

use crate::common::*;
use std::collections::BTreeMap;

/// `pm query … --output csv`: the first column → the others, numbers to 4 decimals.
fn answer(p: &LocalProject, args: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut all = vec!["query", "-q", "--output", "csv"];
    all.extend_from_slice(args);
    let r = pm(p.path(), &all);
    assert_eq!(r.code, 0, "pm {}: {}", all.join(" "), r.stderr);
    keyed(
        r.stdout
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect()),
    )
}

fn by_sql(p: &LocalProject, query: &str) -> BTreeMap<String, Vec<String>> {
    keyed(
        sql(p.path(), query)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('|').map(String::from).collect()),
    )
}

/// A row's cells as compared: numbers to 4 decimals, timestamps without their zone.
fn cells(row: Vec<String>) -> Vec<String> {
    row.iter()
        .map(|v| match v.trim().parse::<f64>() {
            Ok(f) => format!("{f:.4}"),
            Err(_) => v.trim().trim_end_matches("+00").to_string(),
        })
        .collect()
}

fn keyed(rows: impl Iterator<Item = Vec<String>>) -> BTreeMap<String, Vec<String>> {
    rows.map(cells).map(|mut c| (c.remove(0), c)).collect()
}

/// Rows keyed by their first two columns.
fn keyed_twice(rows: impl Iterator<Item = Vec<String>>) -> BTreeMap<(String, String), Vec<String>> {
    rows.map(cells)
        .map(|mut c| ((c.remove(0), c.remove(0)), c))
        .collect()
}

/// Flows summed over days, stocks read on a period's last day, rates as
/// the ratio of sums.
const FLOWS: [&str; 20] = [
    "signups",
    "activated_signups",
    "sessions",
    "captures",
    "trials_started",
    "trials_converted",
    "subscriptions_created",
    "subscriptions_cancelled",
    "subscriptions_ended",
    "trial_payments",
    "regular_payments",
    "payment_attempts",
    "payments_captured",
    "payments_failed",
    "refunds",
    "gross_cash_in",
    "refunded_amount",
    "net_cash_in",
    "acquisition_spend",
    "new_paying_customers",
];
const STOCKS: [&str; 7] = [
    "daily_active_users",
    "weekly_active_users",
    "monthly_active_users",
    "capturing_users",
    "active_subscriptions",
    "paying_subscriptions",
    "mrr",
];
const RATES: [(&str, &str, &str); 5] = [
    ("activation_rate", "activated_signups", "signups"),
    (
        "trial_conversion_rate",
        "trials_converted",
        "trials_started",
    ),
    (
        "payment_success_rate",
        "payments_captured",
        "payment_attempts",
    ),
    ("refund_rate", "refunds", "payments_captured"),
    ("cac", "acquisition_spend", "new_paying_customers"),
];

pub fn metrics_equal_the_marts(p: &LocalProject) {
    let flows = FLOWS;
    let metrics: Vec<&str> = flows
        .iter()
        .chain(STOCKS.iter())
        .copied()
        .chain(["arr"])
        .collect();
    let list = metrics.join(",");
    // Day by day: the mart's columns.
    let columns = metrics.join(", ");
    assert_eq!(
        answer(p, &["--metrics", &list, "--group-by", "metric_time"]),
        by_sql(
            p,
            &format!(
                "select date::timestamp, {columns} from analytics.fct_daily_metrics order by 1"
            )
        ),
        "daily metrics against fct_daily_metrics"
    );
    let rate_list: Vec<&str> = RATES.iter().map(|r| r.0).collect();
    let rounded = |m: &str| format!("round({m}::numeric, 4)");
    let ours_rates = answer(
        p,
        &[
            "--metrics",
            &rate_list.join(","),
            "--group-by",
            "metric_time",
        ],
    );
    let marts_rates = by_sql(
        p,
        &format!(
            "select date::timestamp, {} from analytics.fct_daily_metrics order by 1",
            RATES
                .iter()
                .map(|(m, n, d)| if *m == "cac" {
                    format!("round({n}::numeric / nullif({d}, 0), 4)")
                } else {
                    rounded(m)
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    // The mart rounds rates to 4 digits; the metric does not.
    assert_eq!(
        ours_rates.keys().collect::<Vec<_>>(),
        marts_rates.keys().collect::<Vec<_>>(),
        "days of the rates"
    );
    for (day, ours) in &ours_rates {
        for (k, (a, b)) in ours.iter().zip(&marts_rates[day]).enumerate() {
            let close = match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 0.000_11,
                _ => a == b,
            };
            assert!(close, "{} on {day}: metric {a}, mart {b}", RATES[k].0);
        }
    }
    // By month: flows add up, stocks are the last day's, as mrr_monthly has MRR.
    let monthly = answer(p, &["--metrics", &list, "--group-by", "metric_time__month"]);
    let sums = flows
        .iter()
        .map(|m| format!("sum({m})"))
        .collect::<Vec<_>>()
        .join(", ");
    let last_day = STOCKS
        .iter()
        .map(|m| format!("(array_agg({m} order by date desc))[1]"))
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        monthly,
        by_sql(
            p,
            &format!(
                "select date_trunc('month', date), {sums}, {last_day}, (array_agg(arr order by date desc))[1] \
                 from analytics.fct_daily_metrics group by 1 order by 1"
            )
        ),
        "monthly metrics against fct_daily_metrics"
    );
    let mrr = answer(
        p,
        &["--metrics", "mrr,arr", "--group-by", "metric_time__month"],
    );
    let months = by_sql(
        p,
        "select month_start::timestamp, mrr, arr from analytics.mrr_monthly order by 1",
    );
    for (month, values) in &months {
        assert_eq!(
            mrr.get(month),
            Some(values),
            "MRR and ARR of {month} against mrr_monthly"
        );
    }
    // Sliced facts add up to the daily totals.
    let new_users = answer(p, &["--metrics", "new_users", "--group-by", "metric_time"]);
    let signups = by_sql(p, "select date::timestamp, signups from analytics.fct_daily_metrics where signups > 0 order by 1");
    assert_eq!(
        new_users, signups,
        "new_users from dim_users against fct_daily_metrics.signups"
    );
    // By day and country: the first two columns are the key.
    let r = pm(
        p.path(),
        &[
            "query",
            "-q",
            "--output",
            "csv",
            "--saved-query",
            "payments_by_country",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ours = keyed_twice(
        r.stdout
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect()),
    );
    let mart = keyed_twice(
        sql(
            p.path(),
            "select p.payment_date::timestamp, u.country_code, sum(p.amount) from analytics.fct_payments p \
             left join analytics.dim_users u using (user_id) where p.status = 'captured' group by 1, 2 order by 1, 2",
        )
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(String::from).collect()),
    );
    assert_eq!(
        ours.len(),
        mart.len(),
        "days and countries with captured payments"
    );
    assert_eq!(
        ours, mart,
        "captured payments by day and country against fct_payments"
    );
    // Cohort retention at days 7, 30 and 90 (the mart rounds to 4 digits).
    let retention = answer(p, &["--saved-query", "cohort_retention"]);
    let mart = by_sql(
        p,
        "select cohort_month::timestamp, cohort_size, retention_d7, retention_d30, retention_d90 \
         from analytics.cohort_retention_days order by 1",
    );
    assert_eq!(
        retention.keys().collect::<Vec<_>>(),
        mart.keys().collect::<Vec<_>>(),
        "cohorts"
    );
    for (month, ours) in &retention {
        for (a, b) in ours.iter().zip(&mart[month]) {
            let close = match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 0.000_11,
                _ => a == b,
            };
            assert!(close, "cohort {month}: metric {a}, mart {b}");
        }
    }
    let by_tier = answer(
        p,
        &["--metrics", "new_subscriptions", "--group-by", "plan__tier"],
    );
    let tiers = by_sql(p, "select pl.tier, count(*) from analytics.fct_subscriptions s join analytics.dim_plan pl using (plan_id) group by 1 order by 1");
    assert_eq!(by_tier, tiers, "new subscriptions by plan tier");
}
