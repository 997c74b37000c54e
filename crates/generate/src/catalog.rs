//! The business's fixed facts: plans, channels and partners, countries,
//! features, the content catalogue, and the generator's tuning constants.
//! Partners and channels are also the project's seeds (project/seeds/):
//! keep the two in step.

use super::rng::Rng;
use super::rows::{Day, Title, Ts};

pub struct PlanDef {
    pub plan_id: &'static str,
    pub plan_name: &'static str,
    pub billing_period: &'static str,
    pub price_cents: i64,
    pub trial_days: i32,
    pub is_company_plan: bool,
    /// Months between charges.
    pub months: u32,
}

pub const PLANS: [PlanDef; 6] = [
    PlanDef {
        plan_id: "basic_monthly",
        plan_name: "Basic (monthly)",
        billing_period: "monthly",
        price_cents: 999,
        trial_days: 14,
        is_company_plan: false,
        months: 1,
    },
    PlanDef {
        plan_id: "pro_monthly",
        plan_name: "Pro (monthly)",
        billing_period: "monthly",
        price_cents: 2999,
        trial_days: 14,
        is_company_plan: false,
        months: 1,
    },
    PlanDef {
        plan_id: "basic_annual",
        plan_name: "Basic (annual)",
        billing_period: "annual",
        price_cents: 9900,
        trial_days: 14,
        is_company_plan: false,
        months: 12,
    },
    PlanDef {
        plan_id: "pro_annual",
        plan_name: "Pro (annual)",
        billing_period: "annual",
        price_cents: 29900,
        trial_days: 14,
        is_company_plan: false,
        months: 12,
    },
    PlanDef {
        plan_id: "team_monthly",
        plan_name: "Team (monthly)",
        billing_period: "monthly",
        price_cents: 4900,
        trial_days: 0,
        is_company_plan: true,
        months: 1,
    },
    PlanDef {
        plan_id: "enterprise_monthly",
        plan_name: "Enterprise (monthly)",
        billing_period: "monthly",
        price_cents: 19900,
        trial_days: 0,
        is_company_plan: true,
        months: 1,
    },
];

pub const BASIC_MONTHLY: usize = 0;
pub const PRO_MONTHLY: usize = 1;
pub const TEAM_MONTHLY: usize = 4;
pub const ENTERPRISE_MONTHLY: usize = 5;
/// What self-serve subscribers choose: basic/pro, monthly/annual.
pub const SELF_SERVE_PLAN_WEIGHTS: [f64; 4] = [0.50, 0.34, 0.10, 0.06];

pub const CURRENCY: &str = "USD";

/// How partners are paid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cost {
    /// Ad spend: a cost per signup drawn from this range, in cents.
    PerSignup(i64, i64),
    /// An affiliate commission: a share of the first regular payment, at least the minimum.
    FirstPayment { percent: i64, minimum_cents: i64 },
    /// Sponsorship: a fee per signup plus a flat fee on some weekdays.
    Sponsorship {
        per_signup_cents: i64,
        flat_cents: i64,
        /// Weekdays (0 = Monday) the flat fee is paid.
        weekdays: &'static [u32],
    },
}

pub struct PartnerDef {
    pub partner_id: &'static str,
    pub weight: f64,
    pub cost: Cost,
}

pub struct ChannelDef {
    pub channel: &'static str,
    /// Share of self-serve signups.
    pub weight: f64,
    /// Multiplies a user's engagement.
    pub engagement: f64,
    /// Chance that a user subscribes at some point.
    pub subscribe: f64,
    pub partners: &'static [PartnerDef],
}

pub const CHANNELS: [ChannelDef; 4] = [
    ChannelDef {
        channel: "Organic",
        weight: 0.40,
        engagement: 1.10,
        subscribe: 0.48,
        partners: &[],
    },
    ChannelDef {
        channel: "Paid",
        weight: 0.30,
        engagement: 0.85,
        subscribe: 0.40,
        partners: &[
            PartnerDef {
                partner_id: "google_ads",
                weight: 0.55,
                cost: Cost::PerSignup(2800, 4200),
            },
            PartnerDef {
                partner_id: "meta_ads",
                weight: 0.35,
                cost: Cost::PerSignup(2200, 3400),
            },
            PartnerDef {
                partner_id: "tiktok_ads",
                weight: 0.10,
                cost: Cost::PerSignup(1500, 2600),
            },
        ],
    },
    ChannelDef {
        channel: "Referral",
        weight: 0.15,
        engagement: 1.20,
        subscribe: 0.55,
        partners: &[
            PartnerDef {
                partner_id: "partnerstack",
                weight: 0.60,
                cost: Cost::FirstPayment {
                    percent: 25,
                    minimum_cents: 500,
                },
            },
            PartnerDef {
                partner_id: "impact",
                weight: 0.40,
                cost: Cost::FirstPayment {
                    percent: 30,
                    minimum_cents: 500,
                },
            },
        ],
    },
    ChannelDef {
        channel: "Content",
        weight: 0.15,
        engagement: 0.95,
        subscribe: 0.36,
        partners: &[
            PartnerDef {
                partner_id: "youtube_creators",
                weight: 0.60,
                cost: Cost::Sponsorship {
                    per_signup_cents: 300,
                    flat_cents: 4000,
                    weekdays: &[0, 1, 2, 3, 4],
                },
            },
            PartnerDef {
                partner_id: "podcast_network",
                weight: 0.40,
                cost: Cost::Sponsorship {
                    per_signup_cents: 300,
                    flat_cents: 25000,
                    weekdays: &[0],
                },
            },
        ],
    },
];

/// Every partner, in a fixed order (index = position in this list).
pub fn partners() -> impl Iterator<Item = &'static PartnerDef> {
    CHANNELS.iter().flat_map(|c| c.partners.iter())
}

pub fn partner_index(partner_id: &str) -> usize {
    partners()
        .position(|p| p.partner_id == partner_id)
        .unwrap_or(0)
}

pub const COUNTRIES: [(&str, f64); 16] = [
    ("US", 0.30),
    ("IN", 0.13),
    ("GB", 0.08),
    ("DE", 0.07),
    ("BR", 0.07),
    ("FR", 0.05),
    ("CA", 0.05),
    ("ES", 0.04),
    ("MX", 0.04),
    ("JP", 0.04),
    ("AU", 0.03),
    ("NL", 0.03),
    ("PL", 0.02),
    ("IT", 0.03),
    ("SE", 0.01),
    ("SG", 0.01),
];

pub const PLATFORMS: [(&str, f64); 3] = [("web", 0.45), ("ios", 0.30), ("android", 0.25)];

pub const FEATURES: [(&str, f64); 6] = [
    ("search", 0.30),
    ("share", 0.15),
    ("export", 0.10),
    ("annotate", 0.15),
    ("playlist", 0.20),
    ("download", 0.10),
];

pub const INDUSTRIES: [&str; 8] = [
    "software",
    "education",
    "media",
    "retail",
    "healthcare",
    "finance",
    "manufacturing",
    "nonprofit",
];

const GENRES: [(&str, f64); 6] = [
    ("tutorial", 0.30),
    ("documentary", 0.15),
    ("webinar", 0.20),
    ("interview", 0.15),
    ("case_study", 0.10),
    ("news", 0.10),
];
const WORDS_A: [&str; 12] = [
    "Quiet",
    "Rapid",
    "Hidden",
    "Bright",
    "Open",
    "Deep",
    "Modern",
    "Practical",
    "Simple",
    "Bold",
    "Clear",
    "Lasting",
];
const WORDS_B: [&str; 12] = [
    "Patterns", "Signals", "Systems", "Habits", "Stories", "Metrics", "Teams", "Markets", "Voices",
    "Tools", "Ideas", "Journeys",
];

/// Relative traffic per hour of the day (UTC), for session start times.
pub const HOURS: [f64; 24] = [
    0.6, 0.4, 0.3, 0.25, 0.25, 0.3, 0.5, 0.8, 1.0, 1.1, 1.1, 1.2, 1.3, 1.2, 1.1, 1.1, 1.2, 1.4,
    1.7, 2.0, 2.1, 1.9, 1.5, 1.0,
];

/// Signups by weekday (0 = Monday).
pub const WEEKDAY_SIGNUPS: [f64; 7] = [1.10, 1.12, 1.10, 1.05, 0.98, 0.80, 0.85];
/// Sessions by weekday.
pub const WEEKDAY_SESSIONS: [f64; 7] = [1.05, 1.05, 1.05, 1.0, 0.95, 0.9, 0.95];

/// Self-serve signups a day at the start, at scale 1 (about 8,000 in the first year).
pub const SIGNUPS_PER_DAY: f64 = 13.6;
/// Signups grow by this factor a year.
pub const YEARLY_GROWTH: f64 = 2.5;
/// Business customers at scale 1 (seed 002).
pub const COMPANIES: f64 = 500.0;
pub const TITLES: i32 = 240;

/// The weekday of a day (0 = Monday; 1970-01-01 was a Thursday).
pub fn weekday(day: Day) -> u32 {
    (day + 3).rem_euclid(7) as u32
}

/// The content catalogue and how often each title is picked.
pub struct Catalog {
    pub titles: Vec<Title>,
    cumulative: Vec<f64>,
}

impl Catalog {
    pub fn new(seed: u64, start: Day, loaded_at: Ts) -> Catalog {
        let mut titles = Vec::with_capacity(TITLES as usize);
        let mut cumulative = Vec::with_capacity(TITLES as usize);
        let mut total = 0.0;
        for id in 1..=TITLES {
            let mut r = Rng::new(seed, super::sim::stream::TITLE, id as u64);
            let genre = GENRES[r.weighted(&GENRES.map(|g| g.1))].0;
            let name = format!(
                "{} {} {}",
                WORDS_A[r.range(0, 11) as usize],
                WORDS_B[r.range(0, 11) as usize],
                id
            );
            let length = r.lognormal((1500f64).ln(), 0.5).clamp(300.0, 7200.0) as i32;
            titles.push(Title {
                title_id: id,
                title_name: name,
                genre,
                length_seconds: length,
                released_on: start - r.range(30, 2000) as Day,
                loaded_at,
            });
            // Popularity falls with rank (Zipf-like).
            total += 1.0 / (id as f64).powf(0.9);
            cumulative.push(total);
        }
        Catalog { titles, cumulative }
    }

    /// A title, the popular ones more often.
    pub fn pick(&self, r: &mut Rng) -> &Title {
        let x = r.f64() * self.cumulative.last().copied().unwrap_or(1.0);
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.titles[i.min(self.titles.len() - 1)]
    }
}
