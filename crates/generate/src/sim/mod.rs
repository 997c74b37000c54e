//! The simulated business. Every customer lives its own life, drawn from its
//! own random stream and processed in time order, so that the rows up to any
//! day are the same however far the simulation runs: `--append-days` runs it
//! further and loads only what is new.
//!
//! What a load takes is fixed by a [`Window`]: rows of events before the end
//! of its last day that arrived (`_loaded_at`) by the nightly load at 02:00.
//! A few sessions arrive hours or days late (a phone that was offline); they
//! come with a later load, which is what fct_daily_metrics' look-back is for.

use crate::catalog::{
    weekday, Catalog, COMPANIES, CURRENCY, PLANS, SIGNUPS_PER_DAY, WEEKDAY_SIGNUPS, YEARLY_GROWTH,
};
use crate::rows::{
    start_of, Day, Plan, Subscription, Ts, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_SECOND,
};
use crate::sim::customers::{simulate_company, simulate_self_serve};
use crate::sim::spend::Spend;
use crate::Sink;
mod activity;
mod billing;
mod calendar;
mod customers;
mod spend;
pub use calendar::{add_months, next_month_start};

use super::rng::{Rng, Uuid};

/// The random streams, one per kind of entity.
pub mod stream {
    pub const SIGNUPS: u64 = 1;
    pub const USER: u64 = 2;
    pub const COMPANY: u64 = 3;
    pub const TITLE: u64 = 4;
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub seed: u64,
    pub scale: f64,
    /// The first day of activity.
    pub start: Day,
    /// How many days of activity.
    pub days: u32,
}

impl Params {
    /// The day after the last day.
    pub fn end_day(&self) -> Day {
        self.start + self.days as Day
    }
}

/// The hour (UTC) of the nightly load after a day.
pub const LOAD_HOUR: i64 = 2;

/// Which rows a load takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Midnight after the last day: later events have not happened yet.
    pub end: Ts,
    /// The load's time: rows that arrived later are not in it.
    pub cutoff: Ts,
    /// For an appended load: the `end` and `cutoff` of what is already loaded.
    pub since: Option<(Ts, Ts)>,
}

impl Window {
    /// The load after `params.days` days; with `loaded_days`, only what the
    /// load after that many days did not take.
    pub fn new(params: &Params, loaded_days: Option<u32>) -> Window {
        let load = |days: u32| {
            let end = start_of(params.start + days as Day);
            (end, end + LOAD_HOUR * MICROS_PER_HOUR)
        };
        let (end, cutoff) = load(params.days);
        Window {
            end,
            cutoff,
            since: loaded_days.map(load),
        }
    }

    /// Whether a row of an event at `time` that arrived at `loaded` is in this load.
    pub fn wants(&self, time: Ts, loaded: Ts) -> bool {
        let taken = |(end, cutoff): (Ts, Ts)| time < end && loaded <= cutoff;
        taken((self.end, self.cutoff)) && !self.since.is_some_and(taken)
    }
}

/// Runs the business for `params` and hands the rows of `window` to `sink`.
/// `progress` hears of each simulated signup day.
pub fn simulate(
    params: &Params,
    window: &Window,
    sink: &mut impl Sink,
    mut progress: impl FnMut(Day),
) {
    let catalogue_loaded = start_of(params.start) - MICROS_PER_DAY;
    let catalog = Catalog::new(params.seed, params.start, catalogue_loaded);
    if window.since.is_none() {
        for p in &PLANS {
            sink.plan(&Plan {
                plan_id: p.plan_id,
                plan_name: p.plan_name,
                billing_period: p.billing_period,
                price_cents: p.price_cents,
                currency: CURRENCY,
                trial_days: p.trial_days,
                is_company_plan: p.is_company_plan,
                loaded_at: catalogue_loaded,
            });
        }
        for t in &catalog.titles {
            sink.title(t);
        }
    }
    let world = World {
        params,
        window,
        catalog: &catalog,
    };
    let mut spend = Spend::default();
    let companies = (COMPANIES * params.scale).round().max(0.0) as u64;
    for i in 0..companies {
        simulate_company(&world, i, sink, &mut spend);
    }
    for day in params.start..params.end_day() {
        let offset = (day - params.start) as u64;
        let mut r = Rng::new(params.seed, stream::SIGNUPS, offset);
        let expected = SIGNUPS_PER_DAY
            * params.scale
            * YEARLY_GROWTH.powf(offset as f64 / 365.0)
            * WEEKDAY_SIGNUPS[weekday(day) as usize];
        for k in 0..r.poisson(expected) as u64 {
            simulate_self_serve(&world, day, (offset << 20) | k, sink, &mut spend);
        }
        progress(day);
    }
    spend.add_sponsorships(params);
    spend.emit(window, sink);
}

/// What every life shares.
struct World<'a> {
    params: &'a Params,
    window: &'a Window,
    catalog: &'a Catalog,
}

/// One step of a subscription's life, due at a time.
#[derive(Debug, Clone, Copy)]
enum Step {
    Start {
        trial: bool,
        plan: usize,
        previous: Option<Uuid>,
        change: &'static str,
    },
    TrialEnd,
    Renew,
    Charge {
        attempt: i32,
        retry_of: Option<Uuid>,
        period_start: Ts,
    },
    CancelRequest,
    End {
        status: &'static str,
        reason: &'static str,
    },
    Refund {
        subscription_id: Uuid,
        payment_id: Uuid,
        amount: i64,
        payment_type: &'static str,
    },
    /// A company's month begins: its sessions are drawn.
    MonthStart,
    /// A company's month ends: without a session, it has churned.
    MonthEnd {
        sessions: u32,
    },
}

struct Sub {
    row: Subscription,
    plan: usize,
    converting: bool,
    had_trial: bool,
    paid: bool,
    last_change: Ts,
}

/// A business customer's seats: (user, signup time), the admin first.
struct Seats {
    users: Vec<(Uuid, Ts)>,
    small: bool,
}

/// One customer (a self-serve user, or a company through its admin) and
/// the subscriptions it pays for.
struct Life<'w, 'a, S: Sink> {
    world: &'w World<'a>,
    sink: &'w mut S,
    spend: &'w mut Spend,
    r: Rng,
    payer: Uuid,
    company: Option<(Uuid, Seats)>,
    partner: Option<usize>,
    engagement: f64,
    capture_rate: f64,
    /// Steps due, with the order they were planned in (ties keep it).
    steps: Vec<(Ts, u64, Step)>,
    planned: u64,
    subs: Vec<Sub>,
    paid_before: bool,
    /// The day the customer loses interest unless subscribed.
    alive_until: Day,
    /// The customer turned push notifications off (for good).
    opted_out: bool,
}

impl<S: Sink> Life<'_, '_, S> {
    fn plan(&mut self, at: Ts, step: Step) {
        self.planned += 1;
        self.steps.push((at, self.planned, step));
    }

    /// Applies the steps due before `limit` (and before the load's end), in time order.
    fn run_until(&mut self, limit: Ts) {
        let limit = limit.min(self.world.window.end);
        loop {
            let next = self
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.0 < limit)
                .min_by_key(|(_, s)| (s.0, s.1))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let (at, _, step) = self.steps.swap_remove(i);
            self.apply(at, step);
        }
    }

    fn next_step_at(&self) -> Option<Ts> {
        self.steps.iter().map(|s| s.0).min()
    }

    fn subscribed(&self) -> bool {
        self.subs.last().is_some_and(|s| s.row.ended_at.is_none())
    }

    fn current(&mut self) -> Option<&mut Sub> {
        self.subs.last_mut().filter(|s| s.row.ended_at.is_none())
    }

    fn is_company(&self) -> bool {
        self.company.is_some()
    }

    fn apply(&mut self, at: Ts, step: Step) {
        match step {
            Step::Start {
                trial,
                plan,
                previous,
                change,
            } => self.start(at, trial, plan, previous, change),
            Step::TrialEnd => {
                let Some(sub) = self.current() else { return };
                if sub.converting {
                    self.charge(at, 1, None, at);
                } else {
                    let reason = if sub.row.cancelled_at.is_some() {
                        "user_request"
                    } else {
                        "trial_expired"
                    };
                    self.end(at, "expired", reason);
                }
            }
            Step::Renew => self.renew(at),
            Step::Charge {
                attempt,
                retry_of,
                period_start,
            } => self.charge(at, attempt, retry_of, period_start),
            Step::CancelRequest => {
                let Some(sub) = self.current() else { return };
                sub.row.cancelled_at = Some(at);
                self.change("cancelled", None, None, at);
            }
            Step::End { status, reason } => self.end(at, status, reason),
            Step::Refund {
                subscription_id,
                payment_id,
                amount,
                payment_type,
            } => {
                self.payment(
                    at,
                    Some(subscription_id),
                    payment_type,
                    "refunded",
                    amount,
                    1,
                    None,
                    Some(payment_id),
                    None,
                );
            }
            Step::MonthStart => self.company_month(at),
            Step::MonthEnd { sessions } => {
                if self.current().is_none() {
                    // Not subscribed yet (a company created in a month's last
                    // hours): its months are counted from the next one. Once
                    // its subscription has ended, they are over.
                    if self.subs.is_empty() {
                        self.plan(at + MICROS_PER_HOUR, Step::MonthStart);
                    }
                    return;
                }
                if sessions == 0 {
                    self.apply(at, Step::CancelRequest);
                    self.end(at, "cancelled", "inactive");
                } else {
                    self.plan(at + MICROS_PER_HOUR, Step::MonthStart);
                }
            }
        }
    }

    /// The subscriptions as they stand at the end of the load.
    fn finish(self) {
        for sub in &self.subs {
            let mut row = sub.row.clone();
            row.loaded_at = sub.last_change + 30 * MICROS_PER_SECOND;
            self.sink.subscription(&row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Session;
    use crate::Dataset;

    fn params(days: u32) -> Params {
        Params {
            seed: 7,
            scale: 1.0,
            start: 19_723, // 2024-01-01
            days,
        }
    }

    fn run(p: &Params, loaded_days: Option<u32>) -> Dataset {
        let mut d = Dataset::default();
        simulate(p, &Window::new(p, loaded_days), &mut d, |_| {});
        d
    }

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        let a = run(&params(40), None);
        let b = run(&params(40), None);
        assert_eq!(a.sessions, b.sessions);
        assert_eq!(a.payments, b.payments);
        assert!(!a.sessions.is_empty() && !a.payments.is_empty());
    }

    #[test]
    fn appending_days_adds_exactly_what_a_longer_run_has_more() {
        // 30 days, then 5 more, hold the same rows as 35 days at once.
        let first = run(&params(30), None);
        let more = run(&params(35), Some(30));
        let all = run(&params(35), None);
        let mut sessions = first.sessions.clone();
        sessions.extend(more.sessions.iter().cloned());
        let key = |s: &Session| s.session_id;
        sessions.sort_by_key(key);
        let mut expected = all.sessions.clone();
        expected.sort_by_key(key);
        assert_eq!(sessions, expected);
        let mut events = first.events.clone();
        events.extend(more.events.iter().cloned());
        assert_eq!(events.len(), all.events.len());
        let mut payments = first.payments.clone();
        payments.extend(more.payments.iter().cloned());
        assert_eq!(payments.len(), all.payments.len());
        // Subscriptions come whole, as they stand at the later load.
        assert_eq!(more.subscriptions, all.subscriptions);
        assert!(more.plans.is_empty(), "the catalogue is loaded once");
        // Some sessions of the first 30 days arrived late and came with the later load.
        let first_end = start_of(params(30).end_day());
        let late = more
            .sessions
            .iter()
            .filter(|s| s.started_at < first_end)
            .count();
        assert!(
            late > 0,
            "{} sessions appended, none late",
            more.sessions.len()
        );
    }

    #[test]
    fn rows_follow_the_business_rules() {
        let d = run(&params(120), None);
        // Every event inside its session; sessions after the user's signup.
        let signups: std::collections::HashMap<Uuid, Ts> = d
            .users
            .iter()
            .map(|u| (u.user_id, u.signed_up_at))
            .collect();
        for s in &d.sessions {
            assert!(s.started_at >= signups[&s.user_id]);
            assert!(s.ended_at >= s.started_at);
        }
        // Trials cost 1.00, regular payments the plan's price.
        assert!(d
            .payments
            .iter()
            .any(|p| p.payment_type == "trial" && p.amount_cents == 100));
        for status in ["captured", "failed", "refunded"] {
            assert!(d.payments.iter().any(|p| p.status == status), "{status}");
        }
        for kind in [
            "trial_started",
            "converted",
            "expired",
            "cancelled",
            "ended",
            "upgraded",
        ] {
            assert!(
                d.subscription_changes.iter().any(|c| c.change_type == kind),
                "no {kind} change"
            );
        }
        // Company sizes follow seed 002: about 70 % small.
        let small = d
            .companies
            .iter()
            .filter(|c| c.company_size == "small")
            .count();
        assert!(small > 0 && small < d.companies.len());
    }
}

#[cfg(test)]
mod volume {
    use super::*;
    use crate::rows::Counts;
    use crate::Table;

    #[test]
    fn scale_one_has_the_volumes_seed_003_asks_for() {
        for (seed, start) in [(42, 20_089), (7, 20_400)] {
            let p = Params {
                seed,
                scale: 1.0,
                start,
                days: 365,
            };
            let mut c = Counts::default();
            simulate(&p, &Window::new(&p, None), &mut c, |_| {});
            let n = |t: Table| c.0.get(&t).copied().unwrap_or(0);
            assert_eq!(n(Table::Companies), 500);
            assert!(n(Table::Users) >= 10_000, "{:?}", c.0);
            assert!(n(Table::Sessions) >= 100_000, "{:?}", c.0);
            assert!(n(Table::Events) >= 500_000, "{:?}", c.0);
            assert!(n(Table::Subscriptions) >= 3_000, "{:?}", c.0);
            assert!(n(Table::Payments) >= 20_000, "{:?}", c.0);
        }
    }
}
