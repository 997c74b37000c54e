//! Subscriptions and money: starting, changing, renewing and ending a subscription, charging (with retries and dunning) and paying.

use crate::catalog::{
    PlanDef, BASIC_MONTHLY, CURRENCY, PLANS, PRO_MONTHLY, SELF_SERVE_PLAN_WEIGHTS,
};
use crate::rng::Uuid;
use crate::rows::{
    day_of, Payment, Subscription, SubscriptionChange, Ts, MICROS_PER_DAY, MICROS_PER_HOUR,
    MICROS_PER_MINUTE,
};
use crate::sim::calendar::seconds;
use crate::sim::{add_months, Life, Step, Sub};
use crate::Sink;

impl<S: Sink> Life<'_, '_, S> {
    pub(super) fn change(
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
                user_id: sub.row.user_id,
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
    pub(super) fn payment(
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

    pub(super) fn start(
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

    pub(super) fn renew(&mut self, at: Ts) {
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

    pub(super) fn charge(
        &mut self,
        at: Ts,
        attempt: i32,
        retry_of: Option<Uuid>,
        period_start: Ts,
    ) {
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
            self.charge_failed(at, attempt, retry_of, period_start, plan);
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
        self.after_capture(at, id, period_start, plan, company);
    }

    /// A charge the customer's bank refused: the payment fails, the
    /// subscription is past due, and the charge is tried again (four
    /// attempts in all) or the subscription ends.
    fn charge_failed(
        &mut self,
        at: Ts,
        attempt: i32,
        retry_of: Option<Uuid>,
        period_start: Ts,
        plan: &PlanDef,
    ) {
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
    }

    /// After a captured charge: the trial's conversion, the first
    /// payment's referral reward, a rare refund, then the renewal or the
    /// cancellation at the period's end.
    fn after_capture(&mut self, at: Ts, id: Uuid, period_start: Ts, plan: &PlanDef, company: bool) {
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

    pub(super) fn end(&mut self, at: Ts, status: &'static str, reason: &'static str) {
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
}
