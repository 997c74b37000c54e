//! PulseMetrics end to end: `pm generate` loads the synthetic business,
//! `pm build` turns it into the marts, and the marts' numbers are checked
//! against a second computation in plain Rust from the generator's own rows.

use crate::common::*;
use pm_generate::catalog::PLANS;
use pm_generate::rng::Uuid;
use pm_generate::rows::{day_of, Dataset, Day};
use pm_generate::{Params, Window};
use std::collections::{BTreeMap, HashMap, HashSet};

const SEED: &str = "11";
const SCALE: &str = "0.3";
const START: &str = "2024-01-01";
const DAYS: &str = "240";

/// `pm generate` with the dataset of these tests.
fn generate_args<'a>(p: &'a LocalProject, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "generate",
        "--seed",
        SEED,
        "--scale",
        SCALE,
        "--start",
        START,
        "--days",
        DAYS,
        "--project-dir",
        p.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// The rows `pm generate` with the same flags loads, made in memory.
fn dataset() -> Dataset {
    let params = Params {
        seed: SEED.parse().unwrap(),
        scale: SCALE.parse().unwrap(),
        start: pm_generate::to_day(START.parse().unwrap()),
        days: DAYS.parse().unwrap(),
    };
    let mut d = Dataset::default();
    pm_generate::simulate(&params, &Window::new(&params, None), &mut d, |_| {});
    d
}

fn date(day: Day) -> String {
    pm_generate::to_date(day).to_string()
}

fn month_start(day: Day) -> Day {
    use chrono::Datelike;
    let d = pm_generate::to_date(day);
    pm_generate::to_day(d.with_day(1).unwrap())
}

fn next_month(day: Day) -> Day {
    let d = pm_generate::to_date(month_start(day));
    pm_generate::to_day(d.checked_add_months(chrono::Months::new(1)).unwrap())
}

/// SQL rows as `key -> columns`, the first column being the key.
fn rows(p: &LocalProject, query: &str) -> BTreeMap<String, Vec<String>> {
    sql(p.path(), query)
        .lines()
        .map(|l| {
            let mut cols: Vec<String> = l.split('|').map(str::to_string).collect();
            (cols.remove(0), cols)
        })
        .collect()
}

/// The business computed from the generator's rows with PulseMetrics'
/// definitions (DESIGN.md), independently of the SQL models.
struct Second<'a> {
    d: &'a Dataset,
    first_day: Day,
    last_day: Day,
}

/// Two counts per day.
type DayCounts = BTreeMap<Day, (i64, i64)>;

/// A stretch of days a subscription paid one plan's monthly value.
struct Stretch {
    customer: Uuid,
    monthly_cents: i64,
    from: Day,
    until: Option<Day>,
}

impl<'a> Second<'a> {
    fn new(d: &'a Dataset) -> Second<'a> {
        let signup_days = d.users.iter().map(|u| day_of(u.signed_up_at));
        let first_day = signup_days.clone().min().unwrap();
        let last_day = signup_days
            .chain(d.sessions.iter().map(|s| day_of(s.started_at)))
            .chain(d.payments.iter().map(|p| day_of(p.created_at)))
            .max()
            .unwrap();
        Second {
            d,
            first_day,
            last_day,
        }
    }

    fn days(&self) -> impl Iterator<Item = Day> {
        self.first_day..=self.last_day
    }

    fn signups(&self) -> BTreeMap<Day, i64> {
        let mut out = BTreeMap::new();
        for u in &self.d.users {
            *out.entry(day_of(u.signed_up_at)).or_default() += 1;
        }
        out
    }

    /// DAU, WAU and MAU of every day: distinct users with a session on the
    /// day and in the 7 and 30 days ending on it.
    fn active_users(&self) -> BTreeMap<Day, (usize, usize, usize)> {
        let mut by_day: HashMap<Day, HashSet<Uuid>> = HashMap::new();
        for s in &self.d.sessions {
            by_day
                .entry(day_of(s.started_at))
                .or_default()
                .insert(s.user_id);
        }
        let distinct = |d: Day, window: Day| {
            let mut users = HashSet::new();
            for x in d - window + 1..=d {
                if let Some(u) = by_day.get(&x) {
                    users.extend(u.iter().copied());
                }
            }
            users.len()
        };
        self.days()
            .map(|d| (d, (distinct(d, 1), distinct(d, 7), distinct(d, 30))))
            .collect()
    }

    fn stretches(&self) -> Vec<Stretch> {
        let monthly = |plan: &str| {
            let p = PLANS.iter().find(|p| p.plan_id == plan).unwrap();
            if p.billing_period == "annual" {
                (p.price_cents as f64 / 12.0).round() as i64
            } else {
                p.price_cents
            }
        };
        let mut changes: HashMap<Uuid, Vec<(i64, Uuid, &str)>> = HashMap::new();
        for c in &self.d.subscription_changes {
            if matches!(
                c.change_type,
                "trial_started" | "created" | "reactivated" | "upgraded" | "downgraded"
            ) {
                changes.entry(c.subscription_id).or_default().push((
                    c.changed_at,
                    c.change_id,
                    c.to_plan_id.unwrap(),
                ));
            }
        }
        let mut out = Vec::new();
        for s in &self.d.subscriptions {
            let start = day_of(s.started_at);
            let paying_from = s.trial_ends_at.map(day_of).unwrap_or(start);
            let end = s.ended_at.map(day_of);
            let mut list = changes.remove(&s.subscription_id).unwrap_or_default();
            list.sort();
            for (i, &(at, _, plan)) in list.iter().enumerate() {
                let valid_from = day_of(at);
                let valid_to = list.get(i + 1).map(|n| day_of(n.0));
                if valid_to.is_some_and(|t| t <= valid_from) {
                    continue;
                }
                let until = match (valid_to, end) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                out.push(Stretch {
                    customer: s.user_id,
                    monthly_cents: monthly(plan),
                    from: valid_from.max(paying_from),
                    until,
                });
            }
        }
        out
    }

    /// Each month (by its first day) and the day its figures are as of.
    fn months(&self) -> Vec<(Day, Day)> {
        let mut out = Vec::new();
        let mut m = month_start(self.first_day);
        while m <= self.last_day {
            let next = next_month(m);
            out.push((m, (next - 1).min(self.last_day)));
            m = next;
        }
        out
    }

    /// MRR per month in cents with its movements:
    /// (mrr, new, expansion, contraction, churned, reactivation).
    fn mrr_monthly(&self) -> BTreeMap<Day, [i64; 6]> {
        let stretches = self.stretches();
        let customer_mrr = |day: Day| {
            let mut m: HashMap<Uuid, i64> = HashMap::new();
            for s in &stretches {
                if s.from <= day && s.until.is_none_or(|u| u > day) {
                    *m.entry(s.customer).or_default() += s.monthly_cents;
                }
            }
            m
        };
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut previous: HashMap<Uuid, i64> = HashMap::new();
        let mut out = BTreeMap::new();
        for (month, end_day) in self.months() {
            let current = customer_mrr(end_day);
            let mut row = [0i64; 6];
            row[0] = current.values().sum();
            for (c, &now) in &current {
                match previous.get(c).copied().unwrap_or(0) {
                    0 if seen.contains(c) => row[5] += now,
                    0 => row[1] += now,
                    before if now > before => row[2] += now - before,
                    before => row[3] += before - now,
                }
            }
            for (c, &before) in &previous {
                if !current.contains_key(c) {
                    row[4] += before;
                }
            }
            seen.extend(current.keys().copied());
            previous = current;
            out.insert(month, row);
        }
        out
    }

    /// Trials started and converted (a captured regular payment at or after
    /// the trial's end) per trial-start day.
    /// (trials started, of them converted) by start day, and (trials ended,
    /// of them converted) by the day their trial ended.
    fn trials(&self) -> (DayCounts, DayCounts) {
        let mut first_paid: HashMap<Uuid, i64> = HashMap::new();
        for p in &self.d.payments {
            if p.payment_type == "regular" && p.status == "captured" {
                let e = first_paid.entry(p.subscription_id).or_insert(p.created_at);
                *e = (*e).min(p.created_at);
            }
        }
        let mut started = DayCounts::new();
        let mut ended = DayCounts::new();
        for s in &self.d.subscriptions {
            let Some(trial_end) = s.trial_ends_at else {
                continue;
            };
            let converted = first_paid
                .get(&s.subscription_id)
                .is_some_and(|&t| t >= trial_end) as i64;
            for (map, day) in [(&mut started, s.started_at), (&mut ended, trial_end)] {
                let e = map.entry(day_of(day)).or_default();
                e.0 += 1;
                e.1 += converted;
            }
        }
        (started, ended)
    }

    /// (what partners were paid, in cents; customers whose first captured
    /// regular payment fell on the day) of every day.
    fn acquisition(&self) -> BTreeMap<Day, (i64, i64)> {
        let mut out: BTreeMap<Day, (i64, i64)> = BTreeMap::new();
        for c in &self.d.partner_commissions {
            out.entry(c.spend_date).or_default().0 += c.amount_cents;
        }
        let mut first_paid: HashMap<Uuid, i64> = HashMap::new();
        for p in &self.d.payments {
            if p.payment_type == "regular" && p.status == "captured" {
                let e = first_paid.entry(p.user_id).or_insert(p.created_at);
                *e = (*e).min(p.created_at);
            }
        }
        for t in first_paid.values() {
            out.entry(day_of(*t)).or_default().1 += 1;
        }
        out
    }

    /// (cohort size, users with a session in the month after) of a signup month.
    fn month_one_retention(&self, cohort: Day) -> (usize, usize) {
        let members: HashSet<Uuid> = self
            .d
            .users
            .iter()
            .filter(|u| month_start(day_of(u.signed_up_at)) == cohort)
            .map(|u| u.user_id)
            .collect();
        let next = next_month(cohort);
        let active: HashSet<Uuid> = self
            .d
            .sessions
            .iter()
            .filter(|s| month_start(day_of(s.started_at)) == next && members.contains(&s.user_id))
            .map(|s| s.user_id)
            .collect();
        (members.len(), active.len())
    }

    /// Seed 002's KPIs of a month by company size: (active companies,
    /// revenue in cents, sessions).
    fn company_kpis(&self, month: Day) -> BTreeMap<&'static str, (usize, i64, usize)> {
        let size: HashMap<Uuid, &'static str> = self
            .d
            .companies
            .iter()
            .map(|c| (c.company_id, c.company_size))
            .collect();
        let company_of: HashMap<Uuid, Uuid> = self
            .d
            .users
            .iter()
            .filter_map(|u| u.company_id.map(|c| (u.user_id, c)))
            .collect();
        let sub_company: HashMap<Uuid, Uuid> = self
            .d
            .subscriptions
            .iter()
            .filter_map(|s| s.company_id.map(|c| (s.subscription_id, c)))
            .collect();
        let mut active: BTreeMap<&str, HashSet<Uuid>> = BTreeMap::new();
        let mut sessions: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.d.sessions {
            if month_start(day_of(s.started_at)) != month {
                continue;
            }
            if let Some(c) = company_of.get(&s.user_id) {
                active.entry(size[c]).or_default().insert(*c);
                *sessions.entry(size[c]).or_default() += 1;
            }
        }
        let mut revenue: BTreeMap<&str, i64> = BTreeMap::new();
        for p in &self.d.payments {
            if month_start(day_of(p.created_at)) != month {
                continue;
            }
            if let Some(c) = sub_company.get(&p.subscription_id) {
                let cash = match p.status {
                    "captured" => p.amount_cents,
                    "refunded" => -p.amount_cents,
                    _ => 0,
                };
                *revenue.entry(size[c]).or_default() += cash;
            }
        }
        ["large", "small"]
            .into_iter()
            .map(|z| {
                (
                    z,
                    (
                        active.get(z).map_or(0, HashSet::len),
                        revenue.get(z).copied().unwrap_or(0),
                        sessions.get(z).copied().unwrap_or(0),
                    ),
                )
            })
            .collect()
    }
}

#[test]
fn the_warehouse_agrees_with_a_second_computation_from_the_generators_rows() {
    let p = LocalProject::pulsemetrics();
    let r = pm(p.path(), &generate_args(&p, &["--build"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // `pm build` passed every data test and says where to look next.
    assert!(r.stderr.contains(" ERROR=0 SKIP=0 "), "{}", r.stderr);
    assert!(
        r.stderr.contains("The warehouse is built. Next:"),
        "{}",
        r.stderr
    );

    let d = dataset();
    let second = Second::new(&d);
    // The generator loaded exactly these rows.
    for (table, n) in [
        ("users", d.users.len()),
        ("sessions", d.sessions.len()),
        ("events", d.events.len()),
        ("payments", d.payments.len()),
        ("subscriptions", d.subscriptions.len()),
    ] {
        assert_eq!(
            sql(p.path(), &format!("select count(*) from raw.{table}")),
            n.to_string(),
            "raw.{table}"
        );
    }

    let daily = rows(
        &p,
        "select date, signups, daily_active_users, weekly_active_users, monthly_active_users,
                trials_started, trials_converted, trials_ended, trials_ended_converted
         from analytics.fct_daily_metrics order by date",
    );
    assert_eq!(daily.len(), second.days().count(), "one row per day");
    let signups = second.signups();
    let active = second.active_users();
    let (trials, trial_ends) = second.trials();
    for day in second.days() {
        let row = &daily[&date(day)];
        let (dau, wau, mau) = active[&day];
        let (started, converted) = trials.get(&day).copied().unwrap_or((0, 0));
        let (ended, ended_converted) = trial_ends.get(&day).copied().unwrap_or((0, 0));
        assert_eq!(
            row,
            &vec![
                signups.get(&day).copied().unwrap_or(0).to_string(),
                dau.to_string(),
                wau.to_string(),
                mau.to_string(),
                started.to_string(),
                converted.to_string(),
                ended.to_string(),
                ended_converted.to_string(),
            ],
            "signups, DAU, WAU, MAU, trials started and converted, trials ended and converted on {}",
            date(day)
        );
    }
    // Seed 000's CAC: the day's acquisition spend and new paying customers,
    // and month to date spend ÷ new paying customers.
    let acquisition = rows(
        &p,
        "select date, acquisition_spend, new_paying_customers, coalesce(cac_mtd::text, '')
         from analytics.fct_daily_metrics order by date",
    );
    let by_day = second.acquisition();
    let (mut month, mut spend_mtd, mut new_mtd) = (0, 0i64, 0i64);
    for day in second.days() {
        if month_start(day) != month {
            (month, spend_mtd, new_mtd) = (month_start(day), 0, 0);
        }
        let (spend, new) = by_day.get(&day).copied().unwrap_or((0, 0));
        spend_mtd += spend;
        new_mtd += new;
        let row = &acquisition[&date(day)];
        assert_eq!(
            (row[0].as_str(), row[1].as_str()),
            (
                format!("{}.{:02}", spend / 100, spend % 100).as_str(),
                new.to_string().as_str()
            ),
            "acquisition spend and new paying customers on {}",
            date(day)
        );
        if new_mtd == 0 {
            assert_eq!(row[2], "", "no CAC without a new customer on {}", date(day));
        } else {
            let cac = spend_mtd as f64 / 100.0 / new_mtd as f64;
            let shown: f64 = row[2].parse().unwrap();
            assert!(
                (shown - cac).abs() < 0.006,
                "CAC month to date on {}: {shown} vs {cac}",
                date(day)
            );
        }
    }
    // Feature adoption: per month and feature, users and uses of feature_use events.
    let mut adoption: BTreeMap<(Day, &str), (HashSet<Uuid>, i64)> = BTreeMap::new();
    for e in d.events.iter().filter(|e| e.event_type == "feature_use") {
        let entry = adoption
            .entry((
                month_start(day_of(e.occurred_at)),
                e.feature.unwrap_or_default(),
            ))
            .or_default();
        entry.0.insert(e.user_id);
        entry.1 += 1;
    }
    let shown = rows(
        &p,
        "select month_start || ' ' || feature, feature_users, uses from analytics.feature_adoption_monthly where uses > 0",
    );
    assert_eq!(
        shown.len(),
        adoption.len(),
        "a row per month and feature used"
    );
    for ((month, feature), (users, uses)) in &adoption {
        assert_eq!(
            shown[&format!("{} {feature}", date(*month))],
            vec![users.len().to_string(), uses.to_string()],
            "{feature} in {}",
            date(*month)
        );
    }

    // Seed 004's notification performance, content and payments by country.
    let mut notifications: BTreeMap<Day, [i64; 4]> = BTreeMap::new();
    for e in &d.events {
        let k = match e.event_type {
            "notification_sent" => 0,
            "notification_delivered" => 1,
            "notification_opened" => 2,
            "notification_opt_out" => 3,
            _ => continue,
        };
        notifications.entry(day_of(e.occurred_at)).or_default()[k] += 1;
    }
    let shown = rows(
        &p,
        "select date, notifications_sent, notifications_delivered, notifications_opened, opt_outs
         from analytics.notification_metrics_daily order by date",
    );
    assert_eq!(shown.len(), second.days().count());
    for day in second.days() {
        let n = notifications.get(&day).copied().unwrap_or_default();
        assert_eq!(
            shown[&date(day)],
            n.map(|x| x.to_string()).to_vec(),
            "notifications on {}",
            date(day)
        );
    }
    assert!(
        notifications.values().map(|n| n[3]).sum::<i64>() > 0,
        "some customers opted out"
    );
    let mut content: BTreeMap<(Day, i32), (HashSet<Uuid>, i64, i64)> = BTreeMap::new();
    for s in &d.sessions {
        if let Some(t) = s.title_id {
            let e = content.entry((day_of(s.started_at), t)).or_default();
            e.0.insert(s.user_id);
            e.1 += 1;
            e.2 += i64::from(s.watched_seconds);
        }
    }
    let shown = rows(
        &p,
        "select date || ' ' || title_id, viewers, plays, hours_watched from analytics.content_performance_daily",
    );
    assert_eq!(shown.len(), content.len(), "a row per day and title played");
    for ((day, title), (viewers, plays, secs)) in &content {
        let row = &shown[&format!("{} {title}", date(*day))];
        assert_eq!(
            (row[0].clone(), row[1].clone()),
            (viewers.len().to_string(), plays.to_string())
        );
        let hours: f64 = row[2].parse().unwrap();
        assert!(
            (hours - *secs as f64 / 3600.0).abs() < 0.006,
            "hours of title {title} on {}",
            date(*day)
        );
    }
    let country: HashMap<Uuid, &str> = d
        .users
        .iter()
        .map(|u| (u.user_id, u.country_code))
        .collect();
    let mut by_country: BTreeMap<(Day, &str), [i64; 5]> = BTreeMap::new();
    for pay in &d.payments {
        let e = by_country
            .entry((day_of(pay.created_at), country[&pay.user_id]))
            .or_default();
        match pay.status {
            "captured" => {
                e[0] += 1;
                e[1] += 1;
                e[4] += pay.amount_cents;
            }
            "failed" => {
                e[0] += 1;
                e[2] += 1;
            }
            "refunded" => e[3] += 1,
            _ => {}
        }
    }
    let shown = rows(
        &p,
        "select date || ' ' || country_code, payment_attempts, payments_captured, payments_failed, refunds, gross_cash_in
         from analytics.payments_by_country_daily",
    );
    assert_eq!(shown.len(), by_country.len());
    for ((day, c), n) in &by_country {
        let gross = format!("{}.{:02}", n[4] / 100, n[4] % 100);
        assert_eq!(
            shown[&format!("{} {c}", date(*day))],
            vec![
                n[0].to_string(),
                n[1].to_string(),
                n[2].to_string(),
                n[3].to_string(),
                gross
            ],
            "payments in {c} on {}",
            date(*day)
        );
    }

    // The CEO weekly report (seed 003): the last complete week's totals.
    let ceo = pm(
        p.path(),
        &[
            "report",
            "weekly_ceo",
            "--date",
            "2024-08-27",
            "--format",
            "json",
        ],
    );
    assert_eq!(ceo.code, 0, "{}", ceo.stderr);
    let weekly: serde_json::Value = serde_json::from_str(&ceo.stdout).unwrap();
    assert_eq!(
        weekly["date"], "2024-08-19",
        "Monday of the week that ended on Sunday the 25th"
    );
    assert_eq!(weekly["period"], "week");
    let week: i64 = (0..7)
        .map(|k| {
            signups
                .get(&(pm_generate::to_day("2024-08-19".parse().unwrap()) + k))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        weekly["metrics"][0]["value"],
        serde_json::json!(week as f64),
        "the week's signups"
    );
    assert_eq!(weekly["metrics"][0]["comparisons"][0]["date"], "2024-08-12");

    // LTV of the current, partial month uses the last complete month's churn.
    let months = rows(
        &p,
        "select month_start, is_complete_month, arpu, churn_rate, ltv from analytics.mrr_monthly order by 1",
    );
    let (last, previous) = {
        let mut it = months.values().rev();
        (it.next().unwrap(), it.next().unwrap())
    };
    assert_eq!(last[0], "f", "the last month is partial: {last:?}");
    assert_eq!(previous[0], "t", "{previous:?}");
    let expected = last[1].parse::<f64>().unwrap() / previous[2].parse::<f64>().unwrap();
    let ltv: f64 = last[3].parse().unwrap();
    assert!(
        (ltv - expected).abs() / expected < 0.01,
        "partial month's LTV {ltv} vs {expected}"
    );
    let previous_ltv: f64 = previous[3].parse().unwrap();
    assert!(
        ltv < previous_ltv * 2.0 && ltv > previous_ltv / 2.0,
        "{ltv} against {previous_ltv}"
    );

    // The output ends with the digest of the last generated day (the README's first command).
    assert!(
        r.stdout
            .contains("PulseMetrics daily KPIs — Tuesday 2024-08-27 (UTC)"),
        "{}",
        r.stdout
    );
    let shown = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Signups "))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|v| v.replace(',', ""));
    let last = pm_generate::to_day("2024-08-27".parse().unwrap());
    assert_eq!(
        shown,
        Some(signups.get(&last).copied().unwrap_or(0).to_string()),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("target/reports/daily_kpis/2024-08-27/signups.png"));
    let (started, converted) = trials.values().fold((0, 0), |a, t| (a.0 + t.0, a.1 + t.1));
    assert!(
        converted > 0 && converted < started,
        "{converted} of {started}"
    );

    let mrr = rows(
        &p,
        "select month_start, (mrr * 100)::bigint, (new_mrr * 100)::bigint, (expansion_mrr * 100)::bigint,
                (contraction_mrr * 100)::bigint, (churned_mrr * 100)::bigint, (reactivation_mrr * 100)::bigint
         from analytics.mrr_monthly order by 1",
    );
    let expected = second.mrr_monthly();
    assert_eq!(mrr.len(), expected.len());
    for (month, movement) in &expected {
        let got: Vec<i64> = mrr[&date(*month)]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(
            got,
            movement.to_vec(),
            "MRR, new, expansion, contraction, churned, reactivation in {}",
            date(*month)
        );
    }
    // Every kind of movement happened, so each was compared for real.
    for (k, name) in [
        "mrr",
        "new",
        "expansion",
        "contraction",
        "churned",
        "reactivation",
    ]
    .iter()
    .enumerate()
    {
        assert!(expected.values().any(|m| m[k] > 0), "no {name} MRR at all");
    }

    let january = pm_generate::to_day("2024-01-01".parse().unwrap());
    let (size, retained) = second.month_one_retention(january);
    assert_eq!(
        sql(
            p.path(),
            "select cohort_size || '|' || active_users from analytics.cohort_retention_monthly
             where cohort_month = '2024-01-01' and months_since_signup = 1"
        ),
        format!("{size}|{retained}")
    );
    assert!(retained > 0 && retained < size);

    let march = pm_generate::to_day("2024-03-01".parse().unwrap());
    let kpis = rows(
        &p,
        "select company_size, active_companies, (revenue * 100)::bigint, avg_sessions_per_company
         from analytics.company_kpis_monthly where month_start = '2024-03-01'",
    );
    for (company_size, (companies, revenue, sessions)) in second.company_kpis(march) {
        // sessions ÷ companies rounded half up to the cent, as SQL's round(x, 2).
        let hundredths = (sessions * 200 + companies) / (2 * companies);
        let average = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        assert_eq!(
            kpis[company_size],
            vec![companies.to_string(), revenue.to_string(), average],
            "{company_size} companies in March 2024"
        );
        assert!(companies > 0 && revenue > 0);
    }
    // The semantic layer's metrics answer what the marts hold.
    crate::pulsemetrics_metrics::metrics_equal_the_marts(&p);
}

/// fct_daily_metrics, every row and column, in date order.
fn daily_metrics(p: &LocalProject) -> Vec<String> {
    sql(
        p.path(),
        "select t::text from analytics.fct_daily_metrics as t order by date",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// `pm <args> --full-refresh --vars '{rebuild_history: true}'`: a rebuild
/// that rebuilds the history tables on purpose too. It must succeed.
fn rebuild_on_purpose(p: &LocalProject, args: &[&str]) -> Run {
    let dir = p.path().to_str().unwrap();
    let mut all = args.to_vec();
    all.extend([
        "--full-refresh",
        "--vars",
        "{rebuild_history: true}",
        "--project-dir",
        dir,
    ]);
    let r = pm(p.path(), &all);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

/// Row count and a hash of every row of each table PulseMetrics builds (but
/// the job log, which records each run).
fn built_tables(p: &LocalProject) -> Vec<(String, String)> {
    let tables = sql(
        p.path(),
        "select table_schema || '.' || table_name from information_schema.tables \
         where table_schema in ('staging', 'intermediate', 'analytics') and table_type = 'BASE TABLE' \
           and table_name <> 'metrics_job_log' order by 1",
    );
    tables
        .lines()
        .map(|t| {
            let rows = sql(
                p.path(),
                &format!("select count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {t} t"),
            );
            (t.to_string(), rows)
        })
        .collect()
}

#[test]
fn nightly_builds_of_the_recent_days_equal_a_full_rebuild_table_for_table() {
    // Three nights, each with late sessions of the days before: every
    // incremental model (facts, activity days, daily aggregates, history)
    // holds what a full rebuild from raw computes, and its tests passed.
    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    let r = pm(p.path(), &generate_args(&p, &["--build"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for _ in 0..3 {
        let r = pm(
            p.path(),
            &["generate", "-q", "--append-days", "1", "--project-dir", dir],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = pm(p.path(), &["build", "--project-dir", dir]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains("ERROR=0 SKIP=0"), "{}", r.stderr);
    }
    // The nightly build read only the recent days of fct_events: the day
    // added, the last one it held and the 4 (late_arrival_days) before.
    let log = sql(
        p.path(),
        "select string_agg(days::text, ',' order by finished_at) from analytics.metrics_job_log where model = 'fct_events'",
    );
    let days: Vec<i64> = log.split(',').map(|d| d.parse().unwrap()).collect();
    assert_eq!(days.len(), 4, "{log}");
    assert!(days[0] > 200 && days[1..].iter().all(|&d| d == 6), "{log}");
    let nightly = built_tables(&p);
    assert!(nightly.len() >= 25, "{nightly:?}");
    rebuild_on_purpose(&p, &["build", "-q"]);
    let full = built_tables(&p);
    for ((table, a), (_, b)) in nightly.iter().zip(&full) {
        assert_eq!(a, b, "{table}: nightly builds, then a full rebuild");
    }
    assert_eq!(nightly.len(), full.len());
}

#[test]
fn the_nightly_incremental_run_equals_a_full_refresh_and_backfills_touch_only_their_days() {
    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    let r = pm(
        p.path(),
        &["generate", "--append-days", "1", "--project-dir", dir],
    );
    assert_eq!(r.code, 2, "nothing to append to yet: {}", r.stderr);
    assert!(
        unwrapped(&r.stderr).contains("--append-days adds to a dataset pm generate made"),
        "{}",
        r.stderr
    );
    let r = pm(p.path(), &generate_args(&p, &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for command in ["seed", "run"] {
        let r = pm(p.path(), &[command, "-q", "--project-dir", dir]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let before = daily_metrics(&p);

    // The next night: one more day of data (and sessions of earlier days
    // that arrived late), then the incremental run.
    let r = pm(
        p.path(),
        &["generate", "--append-days", "1", "--project-dir", dir],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("Adding 1 day after 2024-08-27"),
        "{}",
        r.stderr
    );
    let late = sql(
        p.path(),
        "select count(*) from raw.sessions where started_at < '2024-08-28' and _loaded_at > '2024-08-28 02:00+00'",
    );
    assert_ne!(
        late, "0",
        "the appended load brought late sessions of earlier days"
    );
    let r = pm(
        p.path(),
        &["run", "-s", "+fct_daily_metrics", "--project-dir", dir],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let incremental = daily_metrics(&p);
    assert_eq!(incremental.len(), before.len() + 1, "one new day");
    assert!(incremental.last().unwrap().starts_with("(2024-08-28,"));
    assert_ne!(
        &incremental[..before.len()],
        &before[..],
        "late data changed recent days"
    );
    rebuild_on_purpose(&p, &["run", "-q", "-s", "fct_daily_metrics"]);
    assert_eq!(daily_metrics(&p), incremental, "incremental = full refresh");

    // A backfill recomputes exactly its days: spoil a week and the days
    // around it, recompute the week, and only the week comes back.
    sql(
        p.path(),
        "update analytics.fct_daily_metrics set signups = -1 where date between '2024-03-01' and '2024-03-07';
         update analytics.fct_daily_metrics set signups = -2 where date in ('2024-02-29', '2024-03-08')",
    );
    let r = pm(
        p.path(),
        &[
            "run",
            "-s",
            "fct_daily_metrics",
            "--vars",
            "{from: 2024-03-01, to: 2024-03-07}",
            "--project-dir",
            dir,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(date || ':' || signups, ',' order by date) from analytics.fct_daily_metrics
             where signups < 0"
        ),
        "2024-02-29:-2,2024-03-08:-2",
        "the days outside the range are untouched"
    );
    let after: Vec<String> = daily_metrics(&p);
    for (now, then) in after.iter().zip(&incremental) {
        if now.starts_with("(2024-03-0") && !now.starts_with("(2024-03-08") {
            assert_eq!(now, then, "a backfilled day is recomputed exactly");
        }
    }
    // Running it again changes nothing.
    let r = pm(
        p.path(),
        &[
            "run",
            "-q",
            "-s",
            "fct_daily_metrics",
            "--vars",
            "{from: 2024-03-01, to: 2024-03-07}",
            "--project-dir",
            dir,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(daily_metrics(&p), after);
    // Each run is in the job history.
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pm_meta.run_results where node = 'model.pulsemetrics.fct_daily_metrics' and status = 'success'"
        ),
        "5"
    );
}

/// The project's database URL for another role.
/// The role's own way in: `pm db url --role` (its password in .pm/passwords).
fn url_as(p: &LocalProject, role: &str) -> String {
    let r = pm(p.path(), &["db", "url", "--role", role]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_string()
}

#[test]
fn roles_see_exactly_their_marts_and_recent_data_is_fresh() {
    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    // Data up to yesterday, so the reader's last 30 days hold rows.
    let start = (chrono::Utc::now().date_naive() - chrono::Days::new(45)).to_string();
    let args = [
        "--seed",
        "5",
        "--scale",
        "0.3",
        "--start",
        &start,
        "--days",
        "45",
        "--project-dir",
        dir,
    ];
    let mut generate = vec!["generate", "--build", "-q"];
    generate.extend_from_slice(&args);
    let r = pm(p.path(), &generate);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let can = |role: &str, query: &str| psql_result(p.path(), &url_as(&p, role), query);
    let denied = |role: &str, query: &str| match can(role, query) {
        Ok(out) => panic!("{role} ran `{query}`: {out}"),
        Err(e) => assert!(e.contains("permission denied"), "{role}: {e}"),
    };
    // Seed 004's job log: the roles that read the daily metrics read when
    // their days were computed.
    for role in ["analyst", "finance"] {
        assert!(
            can(role, "select count(*) from analytics.metrics_job_log").is_ok(),
            "{role}"
        );
    }
    denied("reader", "select count(*) from analytics.metrics_job_log");
    for role in ["analyst", "finance", "reader"] {
        denied(role, "select count(*) from raw.users");
        denied(role, "select count(*) from raw.payments");
        denied(role, "select count(*) from staging.stg_users");
        denied(
            role,
            "select count(*) from intermediate.int_user_activity_days",
        );
    }
    // analyst: engagement marts and the non-revenue columns of the daily metrics.
    for table in [
        "dim_users",
        "dim_companies",
        "fct_events",
        "fct_sessions",
        "cohort_retention_monthly",
        "feature_adoption_monthly",
    ] {
        can(
            "analyst",
            &format!("select count(*) from analytics.{table}"),
        )
        .unwrap();
    }
    for table in [
        "fct_payments",
        "fct_subscriptions",
        "mrr_monthly",
        "ltv_cohorts",
        "cac_monthly",
        "company_kpis_monthly",
    ] {
        denied(
            "analyst",
            &format!("select count(*) from analytics.{table}"),
        );
    }
    let all_days = sql(p.path(), "select count(*) from analytics.fct_daily_metrics");
    assert_eq!(
        can("analyst", "select count(*) from (select date, daily_active_users, signups from analytics.fct_daily_metrics) t").unwrap(),
        all_days
    );
    denied(
        "analyst",
        "select sum(net_cash_in) from analytics.fct_daily_metrics",
    );
    denied("analyst", "select mrr from analytics.fct_daily_metrics");
    // finance: revenue marts, the dimensions, all of the daily metrics; not the engagement facts.
    for table in [
        "fct_payments",
        "fct_subscriptions",
        "mrr_monthly",
        "ltv_cohorts",
        "cac_monthly",
        "company_kpis_monthly",
        "dim_users",
    ] {
        can(
            "finance",
            &format!("select count(*) from analytics.{table}"),
        )
        .unwrap();
    }
    denied("finance", "select count(*) from analytics.fct_events");
    assert_eq!(
        can(
            "finance",
            "select count(*) from analytics.fct_daily_metrics where net_cash_in >= 0 or true"
        )
        .unwrap(),
        all_days
    );
    // reader: fct_daily_metrics of the last 30 days, nothing else.
    let recent = sql(
        p.path(),
        "select count(*) from analytics.fct_daily_metrics where date >= (now() at time zone 'UTC')::date - 30",
    );
    assert!(recent.parse::<i64>().unwrap() >= 29, "{recent}");
    assert!(all_days.parse::<i64>().unwrap() > recent.parse::<i64>().unwrap());
    assert_eq!(
        can("reader", "select count(*) from analytics.fct_daily_metrics").unwrap(),
        recent
    );
    // The window is counted in the project's time zone (UTC), whatever the session's.
    for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
        assert_eq!(
            can(
                "reader",
                &format!(
                    "set timezone = '{zone}'; select count(*) from analytics.fct_daily_metrics"
                )
            )
            .unwrap(),
            format!("SET\n{recent}"),
            "a session in {zone}"
        );
    }
    denied("reader", "select count(*) from analytics.dim_users");
    denied("reader", "select count(*) from analytics.mrr_monthly");
    // Nor the revenue columns of its 30 days (seed 004: financial data is for admins).
    for column in ["mrr", "gross_cash_in", "net_cash_in", "arr", "refunds"] {
        denied(
            "reader",
            &format!("select {column} from analytics.fct_daily_metrics"),
        );
    }
    assert_eq!(
        can("reader", "select count(*) from (select date, daily_active_users, signups from analytics.fct_daily_metrics) t").unwrap(),
        recent
    );

    // A rebuild of every table (the history ones too) keeps each role's access exactly.
    rebuild_on_purpose(&p, &["build", "-q"]);
    for role in ["analyst", "finance", "reader"] {
        denied(role, "select count(*) from raw.payments");
        denied(role, "select count(*) from staging.stg_users");
    }
    assert_eq!(
        can("reader", "select count(*) from analytics.fct_daily_metrics").unwrap(),
        recent,
        "the reader's 30 days after the rebuild"
    );
    denied("reader", "select mrr from analytics.fct_daily_metrics");
    denied("reader", "select count(*) from analytics.dim_users");
    denied(
        "analyst",
        "select sum(net_cash_in) from analytics.fct_daily_metrics",
    );
    denied("analyst", "select count(*) from analytics.fct_payments");
    can("analyst", "select count(*) from analytics.fct_events").unwrap();
    assert_eq!(
        can(
            "finance",
            "select count(*) from analytics.fct_daily_metrics"
        )
        .unwrap(),
        all_days
    );
    denied("finance", "select count(*) from analytics.fct_events");

    // Seed 003's three sample queries run unchanged and make sense.
    let query = |name: &str| read(p.path(), &format!("analyses/{name}.sql"));
    let dau = sql(p.path(), &query("daily_active_users"));
    assert_eq!(dau.lines().count(), 30);
    for line in dau.lines() {
        let v: Vec<i64> = line
            .split('|')
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(0 < v[0] && v[0] <= v[1] && v[1] <= v[2], "{line}");
    }
    let mrr = sql(p.path(), &query("mrr_trend"));
    assert!(mrr.lines().count() >= 2, "{mrr}");
    assert!(mrr
        .lines()
        .all(|l| l.split('|').nth(1).unwrap().parse::<f64>().unwrap() > 0.0));
    let cohorts = sql(p.path(), &query("cohort_retention"));
    let users: i64 = cohorts
        .lines()
        .map(|l| l.split('|').nth(1).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(
        users.to_string(),
        sql(p.path(), "select count(*) from raw.users")
    );

    // --if-empty leaves a loaded dataset alone.
    let r = pm(p.path(), &["generate", "--if-empty", "--project-dir", dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("raw already holds a dataset (seed 5, scale 0.3"),
        "{}",
        r.stderr
    );

    // The data ends yesterday: every source is fresh (no error).
    let r = pm(p.path(), &["source", "freshness", "--project-dir", dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // --out writes the same rows as CSV files.
    let out = tempfile::tempdir().unwrap();
    let mut csv = vec!["generate", "--out", out.path().to_str().unwrap()];
    csv.extend_from_slice(&args[..args.len() - 2]);
    let r = pm(p.path(), &csv);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for table in [
        "users",
        "sessions",
        "events",
        "payments",
        "subscription_changes",
    ] {
        let text = std::fs::read_to_string(out.path().join(format!("{table}.csv"))).unwrap();
        assert_eq!(
            (text.lines().count() - 1).to_string(),
            sql(p.path(), &format!("select count(*) from raw.{table}")),
            "{table}.csv"
        );
    }

    // --empty builds the whole DAG on no rows: every model and seed is there
    // and empty, every test passes, and raw is untouched.
    let r = rebuild_on_purpose(&p, &["build", "--empty"]);
    assert!(r.stderr.contains("ERROR=0 SKIP=0"), "{}", r.stderr);
    for table in [
        "staging.stg_users",
        "analytics.fct_daily_metrics",
        "analytics.mrr_monthly",
        "analytics.cohort_retention_monthly",
        "reference.plan_tiers",
    ] {
        assert_eq!(
            sql(p.path(), &format!("select count(*) from {table}")),
            "0",
            "{table}"
        );
    }
    assert_ne!(sql(p.path(), "select count(*) from raw.users"), "0");
}

/// Every raw table's row count and the sum of its rows' hashes.
fn raw_fingerprint(p: &LocalProject) -> String {
    let tables = sql(
        p.path(),
        "select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'raw' and c.relkind in ('r', 'p') and not c.relispartition
           and c.relname not like 'pm\\_load\\_%' order by 1",
    );
    tables
        .lines()
        .map(|t| {
            // The state row's generated_at is the time of the load.
            let row = if t == "raw.generator_state" {
                "(x.seed, x.scale, x.start_date, x.end_date)"
            } else {
                "x"
            };
            sql(
                p.path(),
                &format!("select '{t} ' || count(*) || ' ' || coalesce(sum(hashtext({row}::text)::bigint), 0) from {t} x"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_appended_day_killed_at_any_point_leaves_raw_as_it_was_or_adds_all_of_it() {
    // The uninterrupted run.
    let reference = LocalProject::pulsemetrics();
    let dir = reference.path().to_str().unwrap();
    assert_eq!(
        pm(reference.path(), &generate_args(&reference, &["-q"])).code,
        0
    );
    let r = pm(
        reference.path(),
        &["generate", "-q", "--append-days", "1", "--project-dir", dir],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let appended = raw_fingerprint(&reference);

    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    assert_eq!(pm(p.path(), &generate_args(&p, &["-q"])).code, 0);
    let loaded = raw_fingerprint(&p);
    assert_ne!(loaded, appended);
    let url = pm(p.path(), &["db", "url"]).stdout.trim().to_string();
    // A commit that adds sessions waits for advisory lock 4242
    // (a deferred trigger), so the load can be stopped at that commit.
    sql(
        p.path(),
        "create function raw.wait_at_commit() returns trigger language plpgsql as
           $$ begin perform pg_advisory_xact_lock(4242); return null; end $$;
         create constraint trigger wait_at_commit after insert on raw.sessions
           deferrable initially deferred for each row execute function raw.wait_at_commit()",
    );
    // Each lock stops the load at one point, where it is killed: while
    // staging (users), in the middle of the transaction that publishes
    // (partner_commissions), just before its last statement (the state row):
    // raw is as it was. Last, in its commit: the server has the COMMIT, and
    // the whole day is added (when every table commits on its own, the
    // tables before that commit have their day and the others do not).
    for lock in [
        "lock table raw.users in access exclusive mode",
        "lock table raw.partner_commissions in share mode",
        "lock table raw.generator_state in share mode",
        "select pg_advisory_xact_lock(4242)",
    ] {
        let mut holder = std::process::Command::new(psql_bin(p.path()))
            .args([
                url.as_str(),
                "-Xqc",
                &format!("begin; {lock}; select pg_sleep(300); commit"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut load = spawn_pm(
            p.path(),
            &["generate", "-q", "--append-days", "1", "--project-dir", dir],
            &[],
        );
        let waiting = "select count(*) from pg_stat_activity where application_name = 'pm' and wait_event_type = 'Lock'";
        let started = std::time::Instant::now();
        while sql(p.path(), waiting) == "0" {
            assert!(
                started.elapsed().as_secs() < 120,
                "the load never reached {lock}"
            );
            assert!(
                load.try_wait().unwrap().is_none(),
                "the load ended before {lock}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        load.kill().unwrap();
        load.wait().unwrap();
        sql(p.path(), "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(300)%' and pid <> pg_backend_pid()");
        let _ = holder.wait();
        // pm's server sessions end once they notice their client is gone.
        wait_for_sql(
            p.path(),
            "select count(*) from pg_stat_activity where application_name = 'pm'",
            "0",
            60,
            "pm's sessions outlived it",
        );
        if lock.contains("advisory") {
            assert_eq!(
                raw_fingerprint(&p),
                appended,
                "killed in the commit: all of the day"
            );
        } else {
            assert_eq!(raw_fingerprint(&p), loaded, "killed at {lock}: raw changed");
        }
    }
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_tables where tablename like 'pm\\_load\\_%'"
        ),
        "0",
        "no staging table is left"
    );
}

#[test]
fn vars_pasted_into_sql_are_refused_by_name_when_they_are_not_what_they_mean() {
    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    for (vars, says) in [
        (
            "{reader_window_days: '30 or true'}",
            "var `reader_window_days` is `30 or true`: it must be a whole number from 0 to 36600",
        ),
        (
            "{from: \"2024-01-01' or true\"}",
            "var `from` is `2024-01-01' or true`: it must be a day written YYYY-MM-DD",
        ),
        (
            "{to: '2024-02-01; drop table raw.users'}",
            "var `to` is `2024-02-01; drop table raw.users`: it must be a day written YYYY-MM-DD",
        ),
        (
            "{lookback_days: '1) or (true'}",
            "var `lookback_days` is `1) or (true`: it must be a whole number from 0 to 3660",
        ),
        (
            "{fiscal_year_start_month: 13}",
            "var `fiscal_year_start_month` is `13`: it must be a whole number from 1 to 12",
        ),
        (
            "{timezone: \"UTC')::date; drop table raw.users; --\"}",
            "var `timezone` is `UTC')::date; drop table raw.users; --`: it must be a time zone name",
        ),
    ] {
        let r = pm(p.path(), &["compile", "-q", "--vars", vars, "--project-dir", dir]);
        let err = unwrapped(&r.stderr);
        assert_eq!(r.code, 2, "{vars}: {err}");
        assert!(err.contains(says), "{vars}: {err}");
    }
    let r = pm(
        p.path(),
        &[
            "compile",
            "-q",
            "--vars",
            "{from: 2024-03-01, to: '2024-03-07', reader_window_days: 7}",
            "--project-dir",
            dir,
        ],
    );
    assert_eq!(r.code, 0, "good values compile: {}", r.stderr);
}

#[test]
fn the_readmes_sql_lines_run_as_written() {
    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    let start = (chrono::Utc::now().date_naive() - chrono::Days::new(200)).to_string();
    let r = pm(
        p.path(),
        &[
            "generate",
            "-q",
            "--seed",
            "2",
            "--scale",
            "0.05",
            "--start",
            &start,
            "--days",
            "200",
            "--project-dir",
            dir,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    // Every `select raw.…` the README shows, its line breaks joined.
    let statements: Vec<String> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.trim_start().starts_with("select raw."))
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(statements.len() >= 2, "{statements:?}");
    for statement in &statements {
        let url = pm(p.path(), &["db", "url"]).stdout.trim().to_string();
        if let Err(e) = psql_result(p.path(), &url, statement) {
            panic!("README: `{statement}` failed: {e}");
        }
    }
    // They did what the README says: next month's partition exists, and
    // none of the months past 90 days is left.
    let next_month = sql(
        p.path(),
        "select to_char(current_date + interval '1 month', 'YYYY_MM')",
    );
    assert_eq!(
        sql(
            p.path(),
            &format!("select to_regclass('raw.events_{next_month}') is not null")
        ),
        "t"
    );
    assert_eq!(
        sql(p.path(), "select count(*) from raw.events where occurred_at < date_trunc('month', current_date - 90)"),
        "0"
    );
}

/// Seed 002's rule, checked over every company of several datasets: a
/// calendar month spent wholly under a subscription without a session of
/// the company's users means it churned, for good.
#[test]
fn a_company_month_without_a_session_means_it_churned_for_good() {
    use pm_generate::rows::{start_of, Ts};
    let mut months_checked = 0;
    for seed in 1..=8u64 {
        // Companies are acquired over the first 28 days: from the 4th, some
        // are created in the last hours of a month.
        let params = Params {
            seed,
            scale: 1.0,
            start: pm_generate::to_day("2024-01-04".parse().unwrap()),
            days: 150,
        };
        let mut d = Dataset::default();
        pm_generate::simulate(&params, &Window::new(&params, None), &mut d, |_| {});
        let data_end = start_of(params.start + params.days as Day);
        let company_of: HashMap<Uuid, Uuid> = d
            .users
            .iter()
            .filter_map(|u| u.company_id.map(|c| (u.user_id, c)))
            .collect();
        let mut sessions: HashMap<Uuid, Vec<Ts>> = HashMap::new();
        for s in &d.sessions {
            if let Some(c) = company_of.get(&s.user_id) {
                sessions.entry(*c).or_default().push(s.started_at);
            }
        }
        // Each company's subscriptions: (start, end, why it ended).
        type Period<'a> = (Ts, Ts, Option<&'a str>);
        let mut subs: HashMap<Uuid, Vec<Period>> = HashMap::new();
        for s in &d.subscriptions {
            if let Some(c) = s.company_id {
                subs.entry(c).or_default().push((
                    s.started_at,
                    s.ended_at.unwrap_or(data_end),
                    s.cancel_reason,
                ));
            }
        }
        for (company, mut periods) in subs {
            periods.sort_by_key(|p| p.0);
            // Churned for inactivity: nothing of the company starts after.
            if let Some(churn) = periods.iter().find(|p| p.2 == Some("inactive")) {
                assert!(
                    periods.iter().all(|p| p.0 <= churn.1),
                    "seed {seed}: company {company:?} subscribed again after churning"
                );
            }
            let first_start = periods[0].0;
            let mut month = next_month(day_of(first_start));
            while start_of(next_month(month)) <= data_end {
                let (from, to) = (start_of(month), start_of(next_month(month)));
                let covered = periods.iter().any(|p| p.0 <= from && p.1 >= to);
                if covered {
                    months_checked += 1;
                    let had = sessions
                        .get(&company)
                        .is_some_and(|v| v.iter().any(|&t| from <= t && t < to));
                    assert!(
                        had,
                        "seed {seed}: company {company:?} kept its subscription through {} without a session",
                        date(month)
                    );
                }
                month = next_month(month);
            }
        }
    }
    assert!(
        months_checked > 1000,
        "{months_checked} company months checked"
    );
}

/// What raw events' retention must not change: the older days of the daily
/// metrics, the older months of feature adoption, activation, session depth.
fn history(p: &LocalProject, before: &str) -> String {
    sql(
        p.path(),
        &format!(
            "select concat_ws(' | ',
               (select md5(string_agg(t::text, ',' order by date)) from analytics.fct_daily_metrics t where date < '{before}'),
               (select sum(captures) from analytics.fct_daily_metrics where date < '{before}'),
               (select md5(string_agg(t::text, ',' order by month_start, feature)) from analytics.feature_adoption_monthly t where month_start < date_trunc('month', '{before}'::date)),
               (select count(*) filter (where is_activated) from analytics.dim_users),
               (select md5(string_agg(first_capture_at::text, ',' order by user_id)) from analytics.dim_users),
               (select sum(events) from analytics.fct_sessions where session_date < '{before}'),
               (select md5(string_agg(t::text, ',' order by date)) from analytics.notification_metrics_daily t where date < '{before}'))"
        ),
    )
}

#[test]
fn history_outlives_raw_retention_and_old_aggregates_and_runs_are_pruned() {
    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    // 200 days up to yesterday, so that months older than 90 days exist.
    let r = pm(
        p.path(),
        &[
            "generate",
            "-q",
            "--seed",
            "4",
            "--scale",
            "0.2",
            "--days",
            "200",
            "--build",
            "--project-dir",
            dir,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = (chrono::Utc::now().date_naive() - chrono::Days::new(100)).to_string();
    let kept = history(&p, &before);
    assert!(!kept.contains("| 0 |"), "{kept}");
    // Seed 004's retention: raw events older than 90 days are dropped.
    let dropped = sql(
        p.path(),
        "select count(*) from raw.drop_events_partitions_before(interval '90 days')",
    );
    assert!(
        dropped.parse::<i32>().unwrap() >= 2,
        "{dropped} partitions dropped"
    );
    assert_eq!(
        sql(
            p.path(),
            &format!("select count(*) from raw.events where occurred_at < '{before}'")
        ),
        "0"
    );

    // The nightly build, then a full refresh: every older day is as it was.
    let r = pm(p.path(), &["build", "-q", "--project-dir", dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(history(&p, &before), kept, "after the nightly build");
    let r = pm(p.path(), &["build", "--full-refresh", "--project-dir", dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("model.pulsemetrics.fct_daily_metrics has full_refresh: false"),
        "{}",
        r.stderr
    );
    assert_eq!(history(&p, &before), kept, "after --full-refresh");
    // fct_events keeps the events raw no longer has.
    let old_events =
        format!("select count(*) from analytics.fct_events where event_date < '{before}'");
    assert_ne!(sql(p.path(), &old_events), "0");
    let backfill = |p: &LocalProject| {
        pm(
            p.path(),
            &[
                "run",
                "-s",
                "fct_daily_metrics",
                "--vars",
                &format!("{{from: '{before}'}}"),
                "--project-dir",
                dir,
            ],
        )
    };
    // A backfill of those days computes them again from what fct_events kept: the same.
    let r = backfill(&p);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(history(&p, &before), kept, "after a backfill");
    // Once fct_events is rebuilt on purpose from what raw keeps, a backfill
    // of days whose events are gone is refused, and changes nothing.
    rebuild_on_purpose(&p, &["run", "-q", "-s", "fct_events"]);
    assert_eq!(sql(p.path(), &old_events), "0");
    let r = backfill(&p);
    let err = unwrapped(&r.stderr);
    assert_ne!(r.code, 0, "{err}");
    assert!(err.contains("but fct_events holds events from"), "{err}");
    assert_eq!(history(&p, &before), kept, "after a refused backfill");
    // The job log: the first build computed every day, the nightly and the
    // full refresh the last days again, the backfill the days from `before`.
    let log = sql(p.path(), "select string_agg(days::text, ',' order by finished_at) from analytics.metrics_job_log where model = 'fct_daily_metrics'");
    let days: Vec<i64> = log.split(',').map(|d| d.parse().unwrap()).collect();
    assert_eq!(days.len(), 4, "{log}");
    assert!(
        days[0] >= 199 && days[1] <= 32 && days[2] <= 32 && (99..=101).contains(&days[3]),
        "{log}"
    );

    // Aggregates older than metrics_retention_days before the last day are pruned.
    let r = pm(
        p.path(),
        &[
            "run",
            "-q",
            "-s",
            "fct_daily_metrics",
            "feature_adoption_monthly",
            "--vars",
            "{metrics_retention_days: 60}",
            "--project-dir",
            dir,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select max(date) - min(date) from analytics.fct_daily_metrics"
        ),
        "60"
    );
    assert_eq!(
        sql(p.path(), "select count(*) from analytics.feature_adoption_monthly where month_start < (select max(month_start) from analytics.feature_adoption_monthly) - 60"),
        "0"
    );
    // pm_meta.run_results keeps pm_run_results_retention_days (90) of runs.
    sql(p.path(), "insert into pm_meta.run_results (run_id, command, node, status, started_at, finished_at) values ('old', 'run', 'model.x', 'success', now() - interval '100 days', now() - interval '100 days')");
    let r = pm(
        p.path(),
        &["run", "-q", "-s", "dim_date", "--project-dir", dir],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pm_meta.run_results where run_id = 'old'"
        ),
        "0"
    );
    assert_ne!(
        sql(p.path(), "select count(*) from pm_meta.run_results"),
        "0"
    );

    // Rebuilding on purpose (the documented way) recomputes from what raw still holds.
    rebuild_on_purpose(&p, &["build", "-q"]);
    assert_eq!(
        sql(
            p.path(),
            &format!(
                "select sum(captures) from analytics.fct_daily_metrics where date < '{before}'"
            )
        ),
        "0",
        "rebuilt from the events that are left"
    );
}

#[test]
fn every_metric_definition_is_in_the_repository_and_shown_on_its_columns() {
    let p = LocalProject::pulsemetrics();
    let r = pm(p.path(), &["compile", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = manifest(p.path());
    let text = read(p.path(), "docs/metric_definitions.md");
    // Every definition is used on a column, and each column shows its text.
    let blocks: Vec<&str> = text
        .match_indices("{% docs ")
        .map(|(i, _)| text[i + 8..].split_whitespace().next().unwrap())
        .collect();
    assert!(blocks.len() >= 25, "{blocks:?}");
    let yml = read(p.path(), "models/metrics/metrics.yml");
    for b in &blocks {
        let used = yml.contains(&format!("doc(\"{b}\")"))
            || [
                "def_day",
                "def_history",
                "def_active_subscription",
                "def_paying_subscription",
                "def_cancelled",
            ]
            .contains(b);
        assert!(used || yml.contains(b), "{b} is on no column");
    }
    let columns = &m["nodes"]["model.pulsemetrics.fct_daily_metrics"]["columns"];
    let shown = columns["trial_end_conversion_rate"]["description"]
        .as_str()
        .unwrap();
    assert!(
        shown.starts_with("**Trial → paid conversion (of trials ending that day)**"),
        "{shown}"
    );
    assert!(text.contains(shown), "the column shows the file's text");
    for (column, words) in [
        ("repeat_viewers_7d", "two or more distinct days"),
        ("active_subscriptions", "not ended by the end of d"),
        ("paying_subscriptions", "past its trial"),
        ("subscriptions_cancelled", "asks to stop"),
        ("cac_mtd", "new paying customers"),
    ] {
        let d = columns[column]["description"].as_str().unwrap_or_default();
        assert!(d.contains(words), "{column}: {d}");
    }
    let retention = &m["nodes"]["model.pulsemetrics.cohort_retention_days"]["columns"]
        ["retention_d30"]["description"];
    assert!(
        retention.as_str().unwrap().contains("Day-N retention"),
        "{retention}"
    );
}
