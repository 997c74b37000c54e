//! `pm query` on the built metrics fixture: each metric type's answer
//! equals the same number computed a second way, by SQL written by hand
//! over the raw seeds; the output formats; the errors; and a role that may
//! not read a metric's table gets an error naming the metric, not an empty
//! answer.

use crate::common::*;
use std::path::Path;

/// A cell as both sides are compared: numbers to 4 decimals, timestamps
/// without their zone.
fn cell(v: &str) -> String {
    let v = v.trim();
    if let Ok(f) = v.parse::<f64>() {
        return format!("{f:.4}");
    }
    v.trim_end_matches("+00").to_string()
}

/// `pm query <args> --output csv`, as `a|b|c` lines after the header.
fn answer(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["query", "-q", "--output", "csv"];
    all.extend_from_slice(args);
    let r = pm(dir, &all);
    assert_eq!(r.code, 0, "pm {}: {}{}", all.join(" "), r.stdout, r.stderr);
    r.stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(cell).collect::<Vec<_>>().join("|"))
        .collect()
}

/// The rows of hand-written SQL, in the same form.
fn by_hand(dir: &Path, query: &str) -> Vec<String> {
    sql(dir, query)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(cell).collect::<Vec<_>>().join("|"))
        .collect()
}

/// Each order (that passes `filter`) with the customer's latest visit in
/// the `days` before it (and `extra_on`): the conversions, by hand.
fn latest_visit_per_order(extra_on: &str, days: u32, filter: &str) -> String {
    format!(
        "select distinct on (o.order_id) o.customer_id, v.visited_at::date as visit_day \
         from raw_orders o join raw_visits v on v.customer_id = o.customer_id {extra_on} \
           and v.visited_at::date <= o.ordered_at::date and v.visited_at::date > o.ordered_at::date - {days} \
         where {filter} \
         order by o.order_id, v.visited_at::date desc"
    )
}

/// Converting customers over visitors, by the month of the visit.
fn conversion_rate_by_month(extra_on: &str, days: u32, filter: &str) -> String {
    format!(
        "with m as ({}), \
              base as (select date_trunc('month', visited_at) as month, count(distinct customer_id) as n \
                       from raw_visits group by 1), \
              conv as (select date_trunc('month', visit_day) as month, count(distinct customer_id) as n from m group by 1) \
         select coalesce(base.month, conv.month), conv.n::float / nullif(base.n, 0) \
         from base full join conv using (month) order by 1",
        latest_visit_per_order(extra_on, days, filter)
    )
}

#[test]
fn each_metric_type_equals_sql_written_by_hand() {
    let p = LocalProject::fixture("metrics");
    let dir = p.path();
    let r = pm(dir, &["build", "-q"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let check = |args: &[&str], query: &str| {
        let ours = answer(dir, args);
        assert!(!ours.is_empty(), "{args:?} answered no rows");
        assert_eq!(ours, by_hand(dir, query), "{args:?}");
    };
    // Simple, by month, with a two-hop dimension and a filter on a local one.
    check(
        &["--metrics", "revenue", "--group-by", "metric_time__month,customer__region__manager", "--where", "{{ Dimension('order__status') }} = 'completed'"],
        "select date_trunc('month', o.ordered_at), r.manager, sum(o.amount) from raw_orders o \
         left join raw_customers c using (customer_id) left join raw_regions r on r.region = c.region \
         where o.status = 'completed' group by 1, 2 order by 1, 2",
    );
    // Every aggregation at once.
    check(
        &["--metrics", "customers_with_orders,average_order,median_order,p90_order,gift_orders", "--group-by", "metric_time__quarter"],
        "select date_trunc('quarter', ordered_at), count(distinct customer_id), avg(amount), \
         percentile_cont(0.5) within group (order by amount), percentile_cont(0.9) within group (order by amount), \
         sum(case when is_gift then 1 else 0 end) from raw_orders group by 1 order by 1",
    );
    // Ratio with a filtered numerator.
    check(
        &[
            "--metrics",
            "completed_share",
            "--group-by",
            "customer__tier",
        ],
        "select c.tier, sum(o.amount) filter (where o.status = 'completed') / sum(o.amount) \
         from raw_orders o left join raw_customers c using (customer_id) group by 1 order by 1",
    );
    // Derived with a month's offset: this month's revenue less last month's
    // (NULL where either is missing, as MetricFlow has it).
    check(
        &["--metrics", "revenue_growth_mom", "--group-by", "metric_time__month"],
        "with m as (select date_trunc('month', ordered_at) as month, sum(amount) as revenue from raw_orders group by 1) \
         select coalesce(a.month, b.month + interval '1 month'), a.revenue - b.revenue \
         from m a full join m b on b.month = a.month - interval '1 month' order by 1",
    );
    // Cumulative: the trailing 7 days of each day that has any.
    check(
        &["--metrics", "revenue_7d", "--group-by", "metric_time", "--start-time", "2024-03-01", "--end-time", "2024-03-31"],
        "select d::timestamp, sum(amount) from generate_series(date '2024-03-01', date '2024-03-31', interval '1 day') d \
         join raw_orders o on o.ordered_at::date <= d and o.ordered_at::date > d - interval '7 days' \
         group by 1 order by 1",
    );
    // Month to date, read at its first day of each month.
    check(
        &["--metrics", "revenue_mtd", "--group-by", "metric_time__month"],
        "with first_day as (select date_trunc('month', ordered_at)::date as month, min(ordered_at::date) as day \
           from raw_orders group by 1) \
         select f.month::timestamp, sum(o.amount) from first_day f join raw_orders o \
           on o.ordered_at::date <= f.day and o.ordered_at >= f.month group by 1 order by 1",
    );
    // Filled with zero on the spine's months without orders.
    check(
        &["--metrics", "orders", "--group-by", "metric_time__month", "--start-time", "2024-01-01", "--end-time", "2025-02-28"],
        "select m, count(o.order_id) from generate_series(timestamp '2024-01-01', timestamp '2025-02-01', interval '1 month') m \
         left join raw_orders o on date_trunc('month', o.ordered_at) = m group by 1 order by 1",
    );
    // Non-additive: the balances of each month's last day with any, and
    // each customer's balance on its own first day of the month.
    check(
        &["--metrics", "total_balance,opening_balance", "--group-by", "metric_time__month"],
        "with last_day as (select date_trunc('month', balance_on) as m, max(balance_on) as d from raw_balances group by 1), \
              first_days as (select customer_id, date_trunc('month', balance_on) as m, min(balance_on) as d \
                             from raw_balances group by 1, 2) \
         select l.m, (select sum(balance) from raw_balances where balance_on = l.d), \
                (select sum(b.balance) from first_days f join raw_balances b using (customer_id) \
                 where f.m = l.m and b.balance_on = f.d) \
         from last_day l order by 1",
    );
    // Conversion: each order counted at the customer's latest visit in the
    // 7 days before it; distinct converting customers over visitors.
    check(
        &[
            "--metrics",
            "visit_to_order",
            "--group-by",
            "metric_time__month",
        ],
        &conversion_rate_by_month("", 7, "true"),
    );
    // A constant property: the visit and the order came through the same channel.
    check(
        &["--metrics", "same_channel_conversions", "--group-by", "metric_time__month"],
        &format!(
            "with m as ({}), \
                  months as (select distinct date_trunc('month', visited_at) as month from raw_visits) \
             select months.month, c.n from months left join \
               (select date_trunc('month', visit_day) as month, count(distinct customer_id) as n from m group by 1) c \
               using (month) order by 1",
            latest_visit_per_order("and v.channel = o.channel", 14, "true")
        ),
    );
    // A filter on the conversion measure: only completed orders convert
    // (MetricFlow 0.213 ignores such a filter; pm applies it).
    check(
        &[
            "--metrics",
            "visit_to_completed_order",
            "--group-by",
            "metric_time__month",
        ],
        &conversion_rate_by_month("", 7, "o.status = 'completed'"),
    );
    // A Metric() filter: signups of customers whose revenue is over 500.
    check(
        &[
            "--metrics",
            "signups",
            "--group-by",
            "customer__region",
            "--where",
            "{{ Metric('revenue', group_by=['customer']) }} > 500",
        ],
        "select c.region, count(*) from raw_customers c \
         where (select sum(amount) from raw_orders o where o.customer_id = c.customer_id) > 500 \
         group by 1 order by 1",
    );
    // An offset finer than the grain: each day reads the orders of the
    // day a week before, and the days add up by month.
    check(
        &["--metrics", "revenue_week_ago", "--group-by", "metric_time__month"],
        "select date_trunc('month', ordered_at::date + 7), sum(amount) from raw_orders group by 1 order by 1",
    );
    // A saved query.
    check(
        &["--saved-query", "revenue_by_region"],
        "select date_trunc('month', o.ordered_at) as m, c.region, sum(o.amount), count(*) from raw_orders o \
         left join raw_customers c using (customer_id) where o.status = 'completed' group by 1, 2 \
         union all select m, null, null, 0 from generate_series(timestamp '2023-06-01', timestamp '2025-12-01', interval '1 month') m \
         where m not in (select date_trunc('month', ordered_at) from raw_orders where status = 'completed') \
         order by 1, 2",
    );
}

#[test]
fn answers_print_as_a_table_csv_or_json_and_explain_prints_the_sql() {
    let p = LocalProject::fixture("metrics");
    let dir = p.path();
    assert_eq!(pm(dir, &["build", "-q"]).code, 0);
    let args = [
        "--metrics",
        "revenue,signups",
        "--group-by",
        "customer__region",
        "--order-by",
        "-customer__region",
    ];
    let csv = pm(
        dir,
        &[&["query", "-q", "--output", "csv"][..], &args].concat(),
    );
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(
        lines[0], "customer__region,revenue,signups",
        "{}",
        csv.stdout
    );
    assert!(lines[1].starts_with("west,"), "{}", csv.stdout);
    let json = pm(
        dir,
        &[&["query", "-q", "--output", "json"][..], &args].concat(),
    );
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(doc["columns"][0]["name"], "customer__region");
    assert_eq!(doc["rows"].as_array().map(Vec::len), Some(lines.len() - 1));
    let table = pm(dir, &[&["query", "-q"][..], &args].concat());
    assert!(
        table.stdout.starts_with("| customer__region | revenue"),
        "{}",
        table.stdout
    );
    let explain = pm(dir, &[&["query", "-q", "--explain"][..], &args].concat());
    assert!(
        explain.stdout.contains("FULL OUTER JOIN")
            && explain.stdout.contains("ORDER BY customer__region DESC"),
        "{}",
        explain.stdout
    );
    // No values in CSV are NULL-words: an empty field is NULL.
    let sparse = pm(
        dir,
        &[
            "query",
            "-q",
            "--output",
            "csv",
            "--metrics",
            "revenue,signups",
            "--group-by",
            "metric_time__month,customer__region",
        ],
    );
    assert!(
        sparse
            .stdout
            .lines()
            .any(|l| l.ends_with(",1") && l.contains(",,")),
        "{}",
        sparse.stdout
    );
}

#[test]
fn a_wrong_query_is_an_error_with_the_names_that_would_do() {
    let dir = fixture("metrics");
    let fails = |args: &[&str]| {
        let r = pm(dir.path(), &[&["query", "--explain"][..], args].concat());
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        unwrapped(&r.stderr)
    };
    let e = fails(&["--metrics", "revenu"]);
    assert!(
        e.contains("there is no metric `revenu`") && e.contains("did you mean `revenue`"),
        "{e}"
    );
    let e = fails(&["--metrics", "revenue", "--group-by", "customer__tie"]);
    assert!(
        e.contains("`customer__tie` is not something this metric can be grouped or filtered by")
            && e.contains("`customer__tier`"),
        "{e}"
    );
    let e = fails(&[
        "--metrics",
        "revenue",
        "--where",
        "{{ Dimension('customer__region__country') }} = 'US'",
    ]);
    assert!(
        e.contains("write `Dimension('region__country', entity_path=['customer'])`"),
        "{e}"
    );
    let e = fails(&[
        "--metrics",
        "revenue",
        "--where",
        "{{ Dimension('customer__region') }} = 'x'",
    ]);
    assert!(
        e.contains("`customer__region` is not a dimension; write Entity('customer__region')"),
        "{e}"
    );
    let e = fails(&["--metrics", "revenue_7d", "--group-by", "customer__tier"]);
    assert!(e.contains("the group-by must include metric_time"), "{e}");
    let e = fails(&[
        "--metrics",
        "revenue",
        "--where",
        "{{ Metric('orders', group_by=['customer', 'order']) }} > 2",
    ]);
    assert!(e.contains("needs exactly one entity to group by"), "{e}");
    let e = fails(&["--metrics", "revenue", "--start-time", "last tuesday"]);
    assert!(e.contains("start time `last tuesday` is not a date"), "{e}");
    let e = fails(&["--saved-query", "revenue_by_regio"]);
    assert!(
        e.contains("there is no saved query `revenue_by_regio`")
            && e.contains("`revenue_by_region`"),
        "{e}"
    );
}

#[test]
fn a_role_that_may_not_read_a_metric_gets_an_error_naming_it() {
    let p = LocalProject::fixture("metrics");
    let dir = p.path();
    assert_eq!(pm(dir, &["build", "-q"]).code, 0);
    sql(dir, "create role viewer login; grant usage on schema public to viewer; grant select on customers, raw_customers to viewer");
    let url = pm(dir, &["db", "url", "--role", "viewer"])
        .stdout
        .trim()
        .to_string();
    let as_viewer = |metrics: &str| {
        pm_env(
            dir,
            &["query", "--metrics", metrics, "--output", "csv"],
            &[("PM_DATABASE_URL", &url)],
        )
    };
    // What it may read, it reads.
    let ok = as_viewer("signups");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.stdout.trim(), "signups\n40".trim(), "{}", ok.stdout);
    // What it may not is an error naming the metric, not an empty answer.
    let denied = as_viewer("revenue");
    assert_eq!(denied.code, 1, "{}{}", denied.stdout, denied.stderr);
    let e = unwrapped(&denied.stderr);
    assert!(
        e.contains("the query of revenue failed") && e.contains("permission denied"),
        "{e}"
    );
    assert!(denied.stdout.trim().is_empty(), "{}", denied.stdout);
}

#[test]
fn pm_build_exports_saved_queries_after_what_they_read_and_again_on_each_build() {
    let p = LocalProject::fixture("metrics");
    let dir = p.path();
    let r = pm(dir, &["build"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("saved_query")
            && r.stderr
                .contains("exported to table exports.revenue_by_region"),
        "{}",
        r.stderr
    );
    let export = "select metric_time__month, customer__region, revenue, orders from exports.revenue_by_region order by 1, 2";
    let asked = answer(dir, &["--saved-query", "revenue_by_region"]);
    assert_eq!(
        by_hand(dir, export),
        asked,
        "the export holds the saved query's answer"
    );
    // A new order, and the export follows on the next build.
    let seed = dir.join("seeds/raw_orders.csv");
    let mut text = std::fs::read_to_string(&seed).unwrap();
    text.push_str("9999,1,2024-05-05 10:00:00,1000.00,0,false,completed,search\n");
    std::fs::write(&seed, text).unwrap();
    let r = pm(
        dir,
        &[
            "build",
            "-s",
            "+saved_query:revenue_by_region",
            "+metricflow_time_spine",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let after = by_hand(dir, export);
    assert_eq!(after, answer(dir, &["--saved-query", "revenue_by_region"]));
    assert_ne!(after, asked, "the new order is in the export");
    // `pm run` builds models only; the selector picks the export alone.
    let run = pm(dir, &["run"]);
    assert!(!run.stderr.contains("saved_query"), "{}", run.stderr);
    let alone = pm(dir, &["build", "-s", "saved_query:revenue_by_region"]);
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert!(alone.stderr.contains("TOTAL=1"), "{}", alone.stderr);
}

#[test]
fn the_latest_spec_answers_as_the_legacy_spec_does() {
    let p = LocalProject::fixture("metrics");
    let dir = p.path();
    assert_eq!(pm(dir, &["build", "-q"]).code, 0);
    let queries: [&[&str]; 10] = [
        &[
            "--metrics",
            "revenue,signups",
            "--group-by",
            "metric_time__month,customer__region",
        ],
        &[
            "--metrics",
            "revenue_per_customer",
            "--group-by",
            "customer__tier",
        ],
        &[
            "--metrics",
            "net_revenue,completed_revenue",
            "--group-by",
            "order__status",
        ],
        &[
            "--metrics",
            "revenue_growth_mom",
            "--group-by",
            "metric_time__month",
        ],
        &["--metrics", "revenue_7d", "--group-by", "metric_time"],
        &[
            "--metrics",
            "revenue_mtd",
            "--group-by",
            "metric_time__month",
        ],
        &[
            "--metrics",
            "visit_to_order",
            "--group-by",
            "metric_time__month,visit__channel",
        ],
        &[
            "--metrics",
            "p90_order",
            "--group-by",
            "metric_time__quarter",
        ],
        &["--metrics", "orders", "--group-by", "metric_time__month"],
        &[
            "--metrics",
            "revenue",
            "--group-by",
            "customer__region__manager",
        ],
    ];
    let legacy: Vec<Vec<String>> = queries.iter().map(|q| answer(dir, q)).collect();
    let latest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics_latest_semantic.yml");
    std::fs::copy(latest, dir.join("models/semantic.yml")).expect("latest spec");
    let parsed = pm(dir, &["parse"]);
    assert!(
        parsed.stderr.contains("4 semantic models, 14 metrics"),
        "{}",
        parsed.stderr
    );
    for (q, before) in queries.iter().zip(&legacy) {
        assert!(!before.is_empty(), "{q:?}");
        assert_eq!(&answer(dir, q), before, "{q:?} in the latest spec");
    }
}
