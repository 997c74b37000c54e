//! Where customers come from (channels, partners) and the life of a company and of a self-serve user, from sign-up on.

use crate::catalog::{
    partner_index, partners, weekday, ChannelDef, CHANNELS, COUNTRIES, ENTERPRISE_MONTHLY,
    INDUSTRIES, PLATFORMS, SELF_SERVE_PLAN_WEIGHTS, TEAM_MONTHLY, WEEKDAY_SESSIONS,
};
use crate::rng::Rng;
use crate::rows::{day_of, start_of, Company, Day, Ts, User, MICROS_PER_SECOND};
use crate::sim::calendar::{seconds, time_in_day};
use crate::sim::spend::Spend;
use crate::sim::{stream, Life, Seats, Step, World};
use crate::Sink;

/// The channel a customer came through, and its partner (index into `partners()`).
pub(super) fn acquisition(r: &mut Rng) -> (&'static ChannelDef, Option<usize>) {
    let channel = &CHANNELS[r.weighted(&CHANNELS.map(|c| c.weight))];
    let partner = (!channel.partners.is_empty()).then(|| {
        let weights: Vec<f64> = channel.partners.iter().map(|p| p.weight).collect();
        partner_index(channel.partners[r.weighted(&weights)].partner_id)
    });
    (channel, partner)
}

pub(super) fn partner_id(partner: Option<usize>) -> Option<&'static str> {
    partner
        .and_then(|i| partners().nth(i))
        .map(|p| p.partner_id)
}

/// A user's row, when this load takes it.
pub(super) fn sign_up(world: &World, sink: &mut impl Sink, user: &User) {
    if world.window.wants(user.signed_up_at, user.loaded_at) {
        sink.user(user);
    }
}

pub(super) fn pick<T: Copy>(r: &mut Rng, items: &[(T, f64)]) -> T {
    let weights: Vec<f64> = items.iter().map(|i| i.1).collect();
    items[r.weighted(&weights)].0
}

/// A company (seed 002): acquired in the first month, a team or enterprise
/// subscription by size, sessions by seed 002's rule until a month without one.
pub(super) fn simulate_company(world: &World, index: u64, sink: &mut impl Sink, spend: &mut Spend) {
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
        opted_out: false,
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
pub(super) fn simulate_self_serve(
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
        opted_out: false,
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
