//! Marketing spend by day and channel, drawn so that acquisition follows it.

use crate::catalog::{partners, weekday, Cost, CURRENCY};
use crate::rng::Rng;
use crate::rows::{day_of, start_of, Day, PartnerCommission, Ts, MICROS_PER_HOUR};

use crate::{Params, Sink, Window};
use std::collections::BTreeMap;

/// Acquisition spend in cents by day and partner (index into `partners()`).
#[derive(Default)]
pub(super) struct Spend(pub(super) BTreeMap<(Day, usize), i64>);

impl Spend {
    pub(super) fn add(&mut self, day: Day, partner: usize, cents: i64) {
        *self.0.entry((day, partner)).or_default() += cents;
    }

    /// A signup's cost, for partners paid per signup.
    pub(super) fn on_signup(&mut self, r: &mut Rng, partner: Option<usize>, at: Ts) {
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
    pub(super) fn on_first_payment(&mut self, partner: Option<usize>, at: Ts, amount: i64) {
        let Some(i) = partner else { return };
        if let Some(Cost::FirstPayment {
            percent,
            minimum_cents,
        }) = partners().nth(i).map(|p| p.cost)
        {
            self.add(day_of(at), i, (amount * percent / 100).max(minimum_cents));
        }
    }

    pub(super) fn add_sponsorships(&mut self, params: &Params) {
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

    pub(super) fn emit(&self, window: &Window, sink: &mut impl Sink) {
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
