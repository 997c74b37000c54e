//! What customers do between bills: sessions with their events, a company seats month, notifications.

use crate::catalog::FEATURES;
use crate::rng::{Rng, Uuid};
use crate::rows::{start_of, Day, Event, Session, Ts, MICROS_PER_HOUR, MICROS_PER_SECOND};
use crate::sim::calendar::seconds;
use crate::sim::{next_month_start, Life, Step};
use crate::Sink;

impl<S: Sink> Life<'_, '_, S> {
    /// A company's month: seed 002's rule draws its sessions (small: 5 ± U(0..5),
    /// large: 10 ± U(0..10)) at random times in the month.
    pub(super) fn company_month(&mut self, at: Ts) {
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
        // No session before the company's first user exists (it may be
        // created in the month's last minutes).
        let count = if from < month_end - 1 { count } else { 0 };
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
            (month_end - MICROS_PER_HOUR).max(at),
            Step::MonthEnd { sessions: count },
        );
    }

    /// A session and its events, arriving together (late, now and then).
    pub(super) fn session(&mut self, user_id: Uuid, started_at: Ts, platform: &'static str) {
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

    /// A push notification (seed 004's notification domain): sent, most of
    /// them delivered, some of those opened, and now and then the customer
    /// turns notifications off, after which none is sent.
    pub(super) fn notification(&mut self, day: Day) {
        if self.opted_out {
            return;
        }
        let r = &mut self.r;
        let sent = start_of(day) + seconds(r, 9 * 3600, 21 * 3600);
        let delivered = r.chance(0.94).then(|| sent + seconds(r, 1, 120));
        let opened = delivered.and_then(|d| r.chance(0.3).then(|| d + seconds(r, 60, 3 * 3600)));
        let opt_out = delivered.and_then(|d| r.chance(0.004).then(|| d + seconds(r, 30, 600)));
        self.opted_out = opt_out.is_some();
        for (event_type, at) in [
            ("notification_sent", Some(sent)),
            ("notification_delivered", delivered),
            ("notification_opened", opened),
            ("notification_opt_out", opt_out),
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
}
