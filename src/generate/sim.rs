//! The simulated business. Every customer lives its own life, drawn from its
//! own random stream and processed in time order, so that the rows up to any
//! day are the same however far the simulation runs: `--append-days` runs it
//! further and loads only what is new.
//!
//! What a load takes is fixed by a [`Window`]: rows of events before the end
//! of its last day that arrived (`_loaded_at`) by the nightly load at 02:00.
//! A few sessions arrive hours or days late (a phone that was offline); they
//! come with a later load, which is what fct_daily_metrics' look-back is for.

use super::catalog::*;
use super::rng::{Rng, Uuid};
use super::rows::*;
use std::collections::BTreeMap;

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

/// Acquisition spend in cents by day and partner (index into `partners()`).
#[derive(Default)]
struct Spend(BTreeMap<(Day, usize), i64>);

impl Spend {
    fn add(&mut self, day: Day, partner: usize, cents: i64) {
        *self.0.entry((day, partner)).or_default() += cents;
    }

    /// A signup's cost, for partners paid per signup.
    fn on_signup(&mut self, r: &mut Rng, partner: Option<usize>, at: Ts) {
        let Some(i) = partner else { return };
        let cents = match partners().nth(i).map(|p| p.cost) {
            Some(Cost::PerSignup(lo, hi)) => r.range(lo, hi),
            Some(Cost::Sponsorship {
                per_signup_cents, ..
            }) => per_signup_cents,
            _ => 0,
        };
        if cents > 0 {
            self.add(day_of(at), i, cents);
        }
    }

    /// An affiliate's commission on a customer's first regular payment.
    fn on_first_payment(&mut self, partner: Option<usize>, at: Ts, amount: i64) {
        let Some(i) = partner else { return };
        if let Some(Cost::FirstPayment {
            percent,
            minimum_cents,
        }) = partners().nth(i).map(|p| p.cost)
        {
            self.add(day_of(at), i, (amount * percent / 100).max(minimum_cents));
        }
    }

    fn add_sponsorships(&mut self, params: &Params) {
        for day in params.start..params.end_day() {
            for (i, p) in partners().enumerate() {
                if let Cost::Sponsorship {
                    flat_cents,
                    weekdays,
                    ..
                } = p.cost
                {
                    if weekdays.contains(&weekday(day)) {
                        self.add(day, i, (flat_cents as f64 * params.scale).round() as i64);
                    }
                }
            }
        }
    }

    fn emit(&self, window: &Window, sink: &mut impl Sink) {
        let ids: Vec<&'static str> = partners().map(|p| p.partner_id).collect();
        for (&(day, i), &cents) in &self.0 {
            // Settled after the day, with the 01:00 batch.
            let loaded = start_of(day + 1) + MICROS_PER_HOUR;
            if cents > 0 && window.wants(start_of(day), loaded) {
                sink.partner_commission(&PartnerCommission {
                    partner_id: ids[i],
                    spend_date: day,
                    amount_cents: cents,
                    currency: CURRENCY,
                    loaded_at: loaded,
                });
            }
        }
    }
}

/// A time on `day`, at an hour drawn from the daily traffic curve.
fn time_in_day(r: &mut Rng, day: Day) -> Ts {
    let hour = r.weighted(&HOURS) as i64;
    start_of(day) + hour * MICROS_PER_HOUR + r.range(0, MICROS_PER_HOUR - 1)
}

fn seconds(r: &mut Rng, lo: i64, hi: i64) -> Ts {
    r.range(lo, hi) * MICROS_PER_SECOND
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

    fn change(
        &mut self,
        change_type: &'static str,
        from: Option<&'static str>,
        to: Option<&'static str>,
        at: Ts,
    ) {
        let change_id = self.r.uuid();
        let loaded = at + seconds(&mut self.r, 5, 120);
        let Some(sub) = self.subs.last_mut() else {
            return;
        };
        sub.last_change = at;
        if self.world.window.wants(at, loaded) {
            self.sink.subscription_change(&SubscriptionChange {
                change_id,
                subscription_id: sub.row.subscription_id,
                change_type,
                from_plan_id: from,
                to_plan_id: to,
                changed_at: at,
                loaded_at: loaded,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    /// A payment row of the current subscription (or, for a refund, of `subscription`).
    fn payment(
        &mut self,
        at: Ts,
        subscription: Option<Uuid>,
        payment_type: &'static str,
        status: &'static str,
        amount: i64,
        attempt: i32,
        retry_of: Option<Uuid>,
        refund_of: Option<Uuid>,
        failure_reason: Option<&'static str>,
    ) -> Uuid {
        let payment_id = self.r.uuid();
        let loaded = at + seconds(&mut self.r, 2, 300);
        let subscription_id =
            subscription.or_else(|| self.subs.last().map(|s| s.row.subscription_id));
        if let (Some(subscription_id), true) =
            (subscription_id, self.world.window.wants(at, loaded))
        {
            self.sink.payment(&Payment {
                payment_id,
                subscription_id,
                user_id: self.payer,
                payment_type,
                status,
                amount_cents: amount,
                currency: CURRENCY,
                attempt,
                retry_of_payment_id: retry_of,
                refund_of_payment_id: refund_of,
                failure_reason,
                created_at: at,
                loaded_at: loaded,
            });
        }
        payment_id
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

    fn start(
        &mut self,
        at: Ts,
        trial: bool,
        plan: usize,
        previous: Option<Uuid>,
        change: &'static str,
    ) {
        if self.subscribed() {
            return;
        }
        let def = &PLANS[plan];
        let trial_ends_at = trial.then(|| at + def.trial_days as i64 * MICROS_PER_DAY);
        let subscription_id = self.r.uuid();
        self.subs.push(Sub {
            row: Subscription {
                subscription_id,
                user_id: self.payer,
                company_id: self.company.as_ref().map(|c| c.0),
                plan_id: def.plan_id,
                status: if trial { "trialing" } else { "active" },
                started_at: at,
                trial_ends_at,
                cancelled_at: None,
                ended_at: None,
                cancel_reason: None,
                previous_subscription_id: previous,
                loaded_at: 0,
            },
            plan,
            converting: false,
            had_trial: trial,
            paid: false,
            last_change: at,
        });
        self.change(change, None, Some(def.plan_id), at);
        let Some(trial_ends_at) = trial_ends_at else {
            self.charge(at, 1, None, at);
            return;
        };
        // The trial costs a token amount.
        let captured = self.r.chance(0.96);
        let (status, reason) = if captured {
            ("captured", None)
        } else {
            ("failed", Some("card_declined"))
        };
        let id = self.payment(at, None, "trial", status, 100, 1, None, None, reason);
        if !captured {
            self.plan(
                at + MICROS_PER_MINUTE,
                Step::End {
                    status: "expired",
                    reason: "payment_failed",
                },
            );
            return;
        }
        if self.r.chance(0.01) {
            let when = at + seconds(&mut self.r, 3600, 5 * 86_400);
            self.plan(
                when,
                Step::Refund {
                    subscription_id,
                    payment_id: id,
                    amount: 100,
                    payment_type: "trial",
                },
            );
        }
        let converting = self
            .r
            .chance((0.40 + 0.25 * self.engagement).clamp(0.15, 0.85));
        if let Some(sub) = self.current() {
            sub.converting = converting;
        }
        if !converting && self.r.chance(0.55) {
            let when = at + self.r.range(3600, trial_ends_at - at - 3600).max(0);
            self.plan(when.min(trial_ends_at - 1), Step::CancelRequest);
        }
        self.plan(trial_ends_at, Step::TrialEnd);
    }

    fn renew(&mut self, at: Ts) {
        let Some(sub) = self.current() else { return };
        let plan = sub.plan;
        let company = self.is_company();
        if !company {
            let switch = match plan {
                BASIC_MONTHLY if self.r.chance(0.05) => Some((PRO_MONTHLY, "upgraded")),
                PRO_MONTHLY if self.r.chance(0.04) => Some((BASIC_MONTHLY, "downgraded")),
                _ => None,
            };
            if let Some((to, kind)) = switch {
                if let Some(sub) = self.current() {
                    sub.plan = to;
                    sub.row.plan_id = PLANS[to].plan_id;
                }
                self.change(kind, Some(PLANS[plan].plan_id), Some(PLANS[to].plan_id), at);
            }
        }
        self.charge(at, 1, None, at);
    }

    fn charge(&mut self, at: Ts, attempt: i32, retry_of: Option<Uuid>, period_start: Ts) {
        let Some(sub) = self.current() else { return };
        let plan = &PLANS[sub.plan];
        let company = self.is_company();
        let success = if company {
            // Invoices of business customers are paid in the end.
            [0.95, 0.7, 0.8, 1.0][(attempt as usize - 1).min(3)]
        } else if attempt == 1 {
            0.90
        } else {
            0.5
        };
        if !self.r.chance(success) {
            let reason = [
                "card_declined",
                "insufficient_funds",
                "expired_card",
                "processing_error",
            ][self.r.weighted(&[0.45, 0.30, 0.15, 0.10])];
            let id = self.payment(
                at,
                None,
                "regular",
                "failed",
                plan.price_cents,
                attempt,
                retry_of,
                None,
                Some(reason),
            );
            if let Some(sub) = self.current() {
                sub.row.status = "past_due";
            }
            if attempt < 4 {
                let days = [1, 2, 2][attempt as usize - 1];
                let when = at + days * MICROS_PER_DAY + seconds(&mut self.r, 0, 3600);
                self.plan(
                    when,
                    Step::Charge {
                        attempt: attempt + 1,
                        retry_of: Some(id),
                        period_start,
                    },
                );
            } else {
                self.plan(
                    at + MICROS_PER_HOUR,
                    Step::End {
                        status: "cancelled",
                        reason: "payment_failed",
                    },
                );
            }
            return;
        }
        let id = self.payment(
            at,
            None,
            "regular",
            "captured",
            plan.price_cents,
            attempt,
            retry_of,
            None,
            None,
        );
        let (had_trial, first) = match self.current() {
            Some(sub) => {
                sub.row.status = "active";
                let first = !sub.paid;
                sub.paid = true;
                (sub.had_trial, first)
            }
            None => return,
        };
        if first && had_trial {
            let plan_id = plan.plan_id;
            self.change("converted", None, Some(plan_id), at);
        }
        if !self.paid_before {
            self.paid_before = true;
            self.spend
                .on_first_payment(self.partner, at, plan.price_cents);
        }
        if self.r.chance(if company { 0.005 } else { 0.025 }) {
            let when = at + seconds(&mut self.r, 86_400, 10 * 86_400);
            let subscription_id = self
                .subs
                .last()
                .map(|s| s.row.subscription_id)
                .unwrap_or(id);
            self.plan(
                when,
                Step::Refund {
                    subscription_id,
                    payment_id: id,
                    amount: plan.price_cents,
                    payment_type: "regular",
                },
            );
        }
        let period_end = add_months(period_start, plan.months);
        let cancels = !company && {
            let q = if plan.months == 1 {
                0.03 * (1.4 - 0.4 * self.engagement.min(2.0))
            } else {
                0.30
            };
            self.r.chance(q.max(0.01))
        };
        if cancels {
            let when = self.r.range(at + 1, period_end - 1);
            self.plan(when, Step::CancelRequest);
            self.plan(
                period_end,
                Step::End {
                    status: "cancelled",
                    reason: "user_request",
                },
            );
        } else {
            self.plan(period_end, Step::Renew);
        }
    }

    fn end(&mut self, at: Ts, status: &'static str, reason: &'static str) {
        let Some(sub) = self.current() else { return };
        sub.row.ended_at = Some(at);
        sub.row.status = status;
        sub.row.cancel_reason = Some(reason);
        let (plan, id) = (sub.plan, sub.row.subscription_id);
        self.change(
            if status == "expired" {
                "expired"
            } else {
                "ended"
            },
            Some(PLANS[plan].plan_id),
            None,
            at,
        );
        self.alive_until = self.alive_until.max(day_of(at) + 10);
        if self.is_company() {
            return;
        }
        // Some come back: paying customers to a new subscription, lapsed trials to a paid one.
        if status == "cancelled" && self.r.chance(0.25) {
            let plan = if self.r.chance(0.6) {
                plan
            } else {
                self.r.weighted(&SELF_SERVE_PLAN_WEIGHTS)
            };
            let when =
                at + self.r.range(20, 120) * MICROS_PER_DAY + seconds(&mut self.r, 0, 86_399);
            self.plan(
                when,
                Step::Start {
                    trial: false,
                    plan,
                    previous: Some(id),
                    change: "reactivated",
                },
            );
        } else if status == "expired" && self.r.chance(0.08) {
            let plan = self.r.weighted(&SELF_SERVE_PLAN_WEIGHTS);
            let when = at + self.r.range(30, 90) * MICROS_PER_DAY + seconds(&mut self.r, 0, 86_399);
            self.plan(
                when,
                Step::Start {
                    trial: false,
                    plan,
                    previous: None,
                    change: "created",
                },
            );
        }
    }

    /// A company's month: seed 002's rule draws its sessions (small: 5 ± U(0..5),
    /// large: 10 ± U(0..10)) at random times in the month.
    fn company_month(&mut self, at: Ts) {
        if self.current().is_none() && !self.subs.is_empty() {
            return;
        }
        let Some((_, seats)) = &self.company else {
            return;
        };
        let small = seats.small;
        let admin_signup = seats.users[0].1;
        let month_end = next_month_start(at);
        let from = at.max(admin_signup);
        let count = if small {
            self.r.range(0, 10)
        } else {
            self.r.range(0, 20)
        } as u32;
        let mut times: Vec<Ts> = (0..count)
            .map(|_| self.r.range(from, month_end - 1))
            .collect();
        times.sort_unstable();
        for t in times {
            let user = {
                let Some((_, seats)) = &self.company else {
                    return;
                };
                let ready: Vec<Uuid> = seats
                    .users
                    .iter()
                    .filter(|s| s.1 <= t)
                    .map(|s| s.0)
                    .collect();
                let k = self.r.range(0, ready.len() as i64 - 1) as usize;
                ready.get(k).copied().unwrap_or(seats.users[0].0)
            };
            self.session(user, t, "web");
        }
        self.plan(
            month_end - MICROS_PER_HOUR,
            Step::MonthEnd { sessions: count },
        );
    }

    /// A session and its events, arriving together (late, now and then).
    fn session(&mut self, user_id: Uuid, started_at: Ts, platform: &'static str) {
        let r = &mut self.r;
        let duration =
            r.lognormal((840f64).ln(), 0.8).clamp(30.0, 10_800.0) as i64 * MICROS_PER_SECOND;
        let ended_at = started_at + duration;
        let title = r.chance(0.85).then(|| self.world.catalog.pick(r));
        let watched = title
            .map(|t| {
                ((duration / MICROS_PER_SECOND) as f64 * r.uniform(0.55, 1.0))
                    .min(t.length_seconds as f64) as i32
            })
            .unwrap_or(0);
        let lag = if r.chance(0.02) {
            seconds(r, 6 * 3600, 72 * 3600)
        } else {
            seconds(r, 60, 600)
        };
        let loaded = ended_at + lag;
        let session_id = r.uuid();
        let window = self.world.window;
        if window.wants(started_at, loaded) {
            self.sink.session(&Session {
                session_id,
                user_id,
                started_at,
                ended_at,
                platform,
                title_id: title.map(|t| t.title_id),
                watched_seconds: watched,
                loaded_at: loaded,
            });
        }
        let emit = |r: &mut Rng, sink: &mut S, event_type, feature, title_id, occurred_at: Ts| {
            let event_id = r.uuid();
            if window.wants(occurred_at, loaded) {
                sink.event(&Event {
                    event_id,
                    user_id,
                    session_id: Some(session_id),
                    event_type,
                    feature,
                    title_id,
                    occurred_at,
                    loaded_at: loaded,
                });
            }
        };
        if let Some(t) = title {
            let play = (started_at + seconds(r, 5, 60)).min(ended_at);
            emit(r, self.sink, "content_play", None, Some(t.title_id), play);
            if watched as f64 >= 0.9 * t.length_seconds as f64 {
                let done = (play + watched as i64 * MICROS_PER_SECOND).min(ended_at);
                emit(
                    r,
                    self.sink,
                    "content_complete",
                    None,
                    Some(t.title_id),
                    done,
                );
            }
        }
        for _ in 0..r.poisson(self.capture_rate) {
            let at = r.range(started_at, ended_at);
            emit(r, self.sink, "capture", None, None, at);
        }
        for _ in 0..r.poisson(1.3) {
            let feature = FEATURES[r.weighted(&FEATURES.map(|f| f.1))].0;
            let at = r.range(started_at, ended_at);
            emit(r, self.sink, "feature_use", Some(feature), None, at);
        }
        for _ in 0..r.poisson(1.5) {
            let at = r.range(started_at, ended_at);
            emit(r, self.sink, "page_view", None, None, at);
        }
    }

    /// A push notification, opened now and then.
    fn notification(&mut self, day: Day) {
        let sent = start_of(day) + seconds(&mut self.r, 9 * 3600, 21 * 3600);
        let opened = self
            .r
            .chance(0.28)
            .then(|| sent + seconds(&mut self.r, 60, 3 * 3600));
        for (event_type, at) in [
            ("notification_sent", Some(sent)),
            ("notification_opened", opened),
        ] {
            let Some(at) = at else { continue };
            let event_id = self.r.uuid();
            let loaded = at + seconds(&mut self.r, 30, 300);
            if self.world.window.wants(at, loaded) {
                self.sink.event(&Event {
                    event_id,
                    user_id: self.payer,
                    session_id: None,
                    event_type,
                    feature: None,
                    title_id: None,
                    occurred_at: at,
                    loaded_at: loaded,
                });
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

fn to_datetime(ts: Ts) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(ts)
        .unwrap_or_default()
        .naive_utc()
}

fn from_datetime(t: chrono::NaiveDateTime) -> Ts {
    t.and_utc().timestamp_micros()
}

/// The same time `months` later (the 31st becomes the month's last day).
pub fn add_months(ts: Ts, months: u32) -> Ts {
    to_datetime(ts)
        .checked_add_months(chrono::Months::new(months))
        .map(from_datetime)
        .unwrap_or(ts + months as i64 * 30 * MICROS_PER_DAY)
}

/// Midnight at the start of the month after the one holding `ts`.
pub fn next_month_start(ts: Ts) -> Ts {
    use chrono::Datelike;
    let d = to_datetime(ts).date();
    let first = d.with_day(1).unwrap_or(d);
    first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|m| m.and_hms_opt(0, 0, 0))
        .map(from_datetime)
        .unwrap_or(ts + 31 * MICROS_PER_DAY)
}

/// The channel a customer came through, and its partner (index into `partners()`).
fn acquisition(r: &mut Rng) -> (&'static ChannelDef, Option<usize>) {
    let channel = &CHANNELS[r.weighted(&CHANNELS.map(|c| c.weight))];
    let partner = (!channel.partners.is_empty()).then(|| {
        let weights: Vec<f64> = channel.partners.iter().map(|p| p.weight).collect();
        partner_index(channel.partners[r.weighted(&weights)].partner_id)
    });
    (channel, partner)
}

fn partner_id(partner: Option<usize>) -> Option<&'static str> {
    partner
        .and_then(|i| partners().nth(i))
        .map(|p| p.partner_id)
}

/// A user's row, when this load takes it.
fn sign_up(world: &World, sink: &mut impl Sink, user: &User) {
    if world.window.wants(user.signed_up_at, user.loaded_at) {
        sink.user(user);
    }
}

fn pick<T: Copy>(r: &mut Rng, items: &[(T, f64)]) -> T {
    let weights: Vec<f64> = items.iter().map(|i| i.1).collect();
    items[r.weighted(&weights)].0
}

/// A company (seed 002): acquired in the first month, a team or enterprise
/// subscription by size, sessions by seed 002's rule until a month without one.
fn simulate_company(world: &World, index: u64, sink: &mut impl Sink, spend: &mut Spend) {
    let params = world.params;
    let mut r = Rng::new(params.seed, stream::COMPANY, index);
    let small = r.chance(0.7);
    let created_at = start_of(params.start) + seconds(&mut r, 0, 28 * 86_400 - 1);
    let company_id = r.uuid();
    let industry = INDUSTRIES[r.range(0, INDUSTRIES.len() as i64 - 1) as usize];
    let country = pick(&mut r, &COUNTRIES);
    let loaded = created_at + seconds(&mut r, 1, 60);
    if world.window.wants(created_at, loaded) {
        sink.company(&Company {
            company_id,
            company_size: if small { "small" } else { "large" },
            industry,
            country_code: country,
            created_at,
            loaded_at: loaded,
        });
    }
    let (channel, partner) = acquisition(&mut r);
    let seat_count = if small { r.range(1, 4) } else { r.range(4, 12) };
    let mut seats = Vec::new();
    for k in 0..seat_count {
        let signup = if k == 0 {
            created_at + seconds(&mut r, 60, 300)
        } else {
            created_at + seconds(&mut r, 300, 5 * 86_400)
        };
        let user_id = r.uuid();
        let platform = if r.chance(0.7) {
            "web"
        } else {
            pick(&mut r, &PLATFORMS)
        };
        let user = User {
            user_id,
            company_id: Some(company_id),
            signed_up_at: signup,
            acquisition_channel: channel.channel,
            partner_id: partner_id(partner),
            country_code: country,
            platform,
            loaded_at: signup + seconds(&mut r, 1, 60),
        };
        sign_up(world, sink, &user);
        seats.push((user_id, signup));
    }
    let admin = seats[0];
    spend.on_signup(&mut r, partner, admin.1);
    let plan = if small {
        TEAM_MONTHLY
    } else {
        ENTERPRISE_MONTHLY
    };
    let subscribe_at = admin.1 + seconds(&mut r, 300, 3300);
    let mut life = Life {
        world,
        sink,
        spend,
        r,
        payer: admin.0,
        company: Some((
            company_id,
            Seats {
                users: seats,
                small,
            },
        )),
        partner,
        engagement: 1.0,
        capture_rate: 1.2,
        steps: Vec::new(),
        planned: 0,
        subs: Vec::new(),
        paid_before: false,
        alive_until: 0,
    };
    life.plan(created_at, Step::MonthStart);
    life.plan(
        subscribe_at,
        Step::Start {
            trial: false,
            plan,
            previous: None,
            change: "created",
        },
    );
    life.run_until(world.window.end);
    life.finish();
}

/// A self-serve user: signs up through a channel, uses the product while
/// interested (more while subscribed), may take a trial or pay directly.
fn simulate_self_serve(
    world: &World,
    signup_day: Day,
    index: u64,
    sink: &mut impl Sink,
    spend: &mut Spend,
) {
    let params = world.params;
    let mut r = Rng::new(params.seed, stream::USER, index);
    let signed_up_at = time_in_day(&mut r, signup_day);
    let user_id = r.uuid();
    let (channel, partner) = acquisition(&mut r);
    let country = pick(&mut r, &COUNTRIES);
    let platform = pick(&mut r, &PLATFORMS);
    let user = User {
        user_id,
        company_id: None,
        signed_up_at,
        acquisition_channel: channel.channel,
        partner_id: partner_id(partner),
        country_code: country,
        platform,
        loaded_at: signed_up_at + seconds(&mut r, 1, 60),
    };
    sign_up(world, sink, &user);
    spend.on_signup(&mut r, partner, signed_up_at);
    let engagement = r.lognormal(0.0, 0.6) * channel.engagement;
    let alive_until = signup_day + 7 + r.exponential(35.0 * engagement) as Day;
    let subscribes = r.chance(channel.subscribe * (0.7 + 0.3 * engagement).clamp(0.5, 1.5));
    let subscribe_after =
        (r.exponential(4.0 * 86_400.0) as i64).min(30 * 86_400) * MICROS_PER_SECOND;
    let trial = r.chance(0.8);
    let plan = r.weighted(&SELF_SERVE_PLAN_WEIGHTS);
    let mut life = Life {
        world,
        sink,
        spend,
        r,
        payer: user_id,
        company: None,
        partner,
        engagement,
        capture_rate: 0.4 + 0.6 * engagement.min(2.5),
        steps: Vec::new(),
        planned: 0,
        subs: Vec::new(),
        paid_before: false,
        alive_until,
    };
    if subscribes {
        life.plan(
            signed_up_at + subscribe_after,
            Step::Start {
                trial,
                plan,
                previous: None,
                change: if trial { "trial_started" } else { "created" },
            },
        );
    }
    // Most try the product right after signing up.
    if life.r.chance(0.7) {
        let first = signed_up_at + seconds(&mut life.r, 60, 1200);
        life.session(user_id, first, platform);
    }
    let end_day = params.end_day();
    let mut day = signup_day;
    while day < end_day {
        life.run_until(start_of(day + 1));
        if day > signup_day {
            let subscribed = life.subscribed();
            if day >= life.alive_until && !subscribed {
                // Nothing happens until the next planned step, if any.
                match life.next_step_at() {
                    Some(at) => {
                        day = day_of(at).max(day + 1);
                        continue;
                    }
                    None => break,
                }
            }
            let age = (day - signup_day) as f64;
            let p = (0.12
                * engagement
                * (0.35 + 0.65 * (-age / 45.0).exp())
                * WEEKDAY_SESSIONS[weekday(day) as usize]
                * if subscribed { 1.8 } else { 1.0 })
            .min(0.9);
            if life.r.chance(p) {
                let n = 1 + life.r.poisson(0.25);
                let mut times: Vec<Ts> = (0..n).map(|_| time_in_day(&mut life.r, day)).collect();
                times.sort_unstable();
                for t in times {
                    let platform = if life.r.chance(0.85) {
                        platform
                    } else {
                        pick(&mut life.r, &PLATFORMS)
                    };
                    life.session(user_id, t, platform);
                }
            }
            if life.r.chance(0.06) {
                life.notification(day);
            }
        }
        day += 1;
    }
    life.run_until(world.window.end);
    life.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

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
