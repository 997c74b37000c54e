//! The rows of the raw warehouse, one struct per table, and how each is
//! written field by field (to binary COPY or CSV; see `encode`).

use super::rng::Uuid;

/// Microseconds since 1970-01-01 00:00 UTC.
pub type Ts = i64;
/// Days since 1970-01-01.
pub type Day = i32;

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

pub fn day_of(ts: Ts) -> Day {
    ts.div_euclid(MICROS_PER_DAY) as Day
}

pub fn start_of(day: Day) -> Ts {
    day as i64 * MICROS_PER_DAY
}

/// The tables `pm generate` fills, in load order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Plans,
    Titles,
    Companies,
    Users,
    Sessions,
    Events,
    Subscriptions,
    SubscriptionChanges,
    Payments,
    PartnerCommissions,
}

impl Table {
    pub const ALL: [Table; 10] = [
        Table::Plans,
        Table::Titles,
        Table::Companies,
        Table::Users,
        Table::Sessions,
        Table::Events,
        Table::Subscriptions,
        Table::SubscriptionChanges,
        Table::Payments,
        Table::PartnerCommissions,
    ];

    /// The table's name in schema `raw`.
    pub fn name(self) -> &'static str {
        match self {
            Table::Plans => "plans",
            Table::Titles => "titles",
            Table::Companies => "companies",
            Table::Users => "users",
            Table::Sessions => "sessions",
            Table::Events => "events",
            Table::Subscriptions => "subscriptions",
            Table::SubscriptionChanges => "subscription_changes",
            Table::Payments => "payments",
            Table::PartnerCommissions => "partner_commissions",
        }
    }

    /// The columns the generator writes, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Plans => &[
                "plan_id",
                "plan_name",
                "billing_period",
                "price_cents",
                "currency",
                "trial_days",
                "is_company_plan",
                "_loaded_at",
            ],
            Table::Titles => &[
                "title_id",
                "title_name",
                "genre",
                "length_seconds",
                "released_on",
                "_loaded_at",
            ],
            Table::Companies => &[
                "company_id",
                "company_size",
                "industry",
                "country_code",
                "created_at",
                "_loaded_at",
            ],
            Table::Users => &[
                "user_id",
                "company_id",
                "signed_up_at",
                "acquisition_channel",
                "partner_id",
                "country_code",
                "platform",
                "_loaded_at",
            ],
            Table::Sessions => &[
                "session_id",
                "user_id",
                "started_at",
                "ended_at",
                "platform",
                "title_id",
                "watched_seconds",
                "_loaded_at",
            ],
            Table::Events => &[
                "event_id",
                "user_id",
                "session_id",
                "event_type",
                "feature",
                "title_id",
                "occurred_at",
                "_loaded_at",
            ],
            Table::Subscriptions => &[
                "subscription_id",
                "user_id",
                "company_id",
                "plan_id",
                "status",
                "started_at",
                "trial_ends_at",
                "cancelled_at",
                "ended_at",
                "cancel_reason",
                "previous_subscription_id",
                "_loaded_at",
            ],
            Table::SubscriptionChanges => &[
                "change_id",
                "subscription_id",
                "user_id",
                "change_type",
                "from_plan_id",
                "to_plan_id",
                "changed_at",
                "_loaded_at",
            ],
            Table::Payments => &[
                "payment_id",
                "subscription_id",
                "user_id",
                "payment_type",
                "status",
                "amount_cents",
                "currency",
                "attempt",
                "retry_of_payment_id",
                "refund_of_payment_id",
                "failure_reason",
                "created_at",
                "_loaded_at",
            ],
            Table::PartnerCommissions => &[
                "partner_id",
                "spend_date",
                "amount_cents",
                "currency",
                "_loaded_at",
            ],
        }
    }
}

/// Where a row's fields go: a binary COPY buffer or a CSV line.
pub trait FieldWriter {
    fn uuid(&mut self, v: &Uuid);
    fn text(&mut self, v: &str);
    fn int(&mut self, v: i32);
    fn bigint(&mut self, v: i64);
    fn boolean(&mut self, v: bool);
    fn timestamp(&mut self, v: Ts);
    fn date(&mut self, v: Day);
    fn null(&mut self);

    fn opt_uuid(&mut self, v: &Option<Uuid>) {
        match v {
            Some(v) => self.uuid(v),
            None => self.null(),
        }
    }
    fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }
    fn opt_int(&mut self, v: Option<i32>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }
    fn opt_timestamp(&mut self, v: Option<Ts>) {
        match v {
            Some(v) => self.timestamp(v),
            None => self.null(),
        }
    }
}

/// A row of one of the tables.
pub trait Row {
    const TABLE: Table;
    fn write(&self, w: &mut impl FieldWriter);
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub plan_id: &'static str,
    pub plan_name: &'static str,
    pub billing_period: &'static str,
    pub price_cents: i64,
    pub currency: &'static str,
    pub trial_days: i32,
    pub is_company_plan: bool,
    pub loaded_at: Ts,
}

impl Plan {
    /// The plan's price per month, in cents (annual plans: a twelfth).
    pub fn monthly_cents(&self) -> f64 {
        match self.billing_period {
            "annual" => self.price_cents as f64 / 12.0,
            _ => self.price_cents as f64,
        }
    }
}

impl Row for Plan {
    const TABLE: Table = Table::Plans;
    fn write(&self, w: &mut impl FieldWriter) {
        w.text(self.plan_id);
        w.text(self.plan_name);
        w.text(self.billing_period);
        w.bigint(self.price_cents);
        w.text(self.currency);
        w.int(self.trial_days);
        w.boolean(self.is_company_plan);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Title {
    pub title_id: i32,
    pub title_name: String,
    pub genre: &'static str,
    pub length_seconds: i32,
    pub released_on: Day,
    pub loaded_at: Ts,
}

impl Row for Title {
    const TABLE: Table = Table::Titles;
    fn write(&self, w: &mut impl FieldWriter) {
        w.int(self.title_id);
        w.text(&self.title_name);
        w.text(self.genre);
        w.int(self.length_seconds);
        w.date(self.released_on);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Company {
    pub company_id: Uuid,
    pub company_size: &'static str,
    pub industry: &'static str,
    pub country_code: &'static str,
    pub created_at: Ts,
    pub loaded_at: Ts,
}

impl Row for Company {
    const TABLE: Table = Table::Companies;
    fn write(&self, w: &mut impl FieldWriter) {
        w.uuid(&self.company_id);
        w.text(self.company_size);
        w.text(self.industry);
        w.text(self.country_code);
        w.timestamp(self.created_at);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: Uuid,
    pub company_id: Option<Uuid>,
    pub signed_up_at: Ts,
    pub acquisition_channel: &'static str,
    pub partner_id: Option<&'static str>,
    pub country_code: &'static str,
    pub platform: &'static str,
    pub loaded_at: Ts,
}

impl Row for User {
    const TABLE: Table = Table::Users;
    fn write(&self, w: &mut impl FieldWriter) {
        w.uuid(&self.user_id);
        w.opt_uuid(&self.company_id);
        w.timestamp(self.signed_up_at);
        w.text(self.acquisition_channel);
        w.opt_text(self.partner_id);
        w.text(self.country_code);
        w.text(self.platform);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub started_at: Ts,
    pub ended_at: Ts,
    pub platform: &'static str,
    pub title_id: Option<i32>,
    pub watched_seconds: i32,
    pub loaded_at: Ts,
}

impl Row for Session {
    const TABLE: Table = Table::Sessions;
    fn write(&self, w: &mut impl FieldWriter) {
        w.uuid(&self.session_id);
        w.uuid(&self.user_id);
        w.timestamp(self.started_at);
        w.timestamp(self.ended_at);
        w.text(self.platform);
        w.opt_int(self.title_id);
        w.int(self.watched_seconds);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub session_id: Option<Uuid>,
    pub event_type: &'static str,
    pub feature: Option<&'static str>,
    pub title_id: Option<i32>,
    pub occurred_at: Ts,
    pub loaded_at: Ts,
}

impl Row for Event {
    const TABLE: Table = Table::Events;
    fn write(&self, w: &mut impl FieldWriter) {
        w.uuid(&self.event_id);
        w.uuid(&self.user_id);
        w.opt_uuid(&self.session_id);
        w.text(self.event_type);
        w.opt_text(self.feature);
        w.opt_int(self.title_id);
        w.timestamp(self.occurred_at);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub company_id: Option<Uuid>,
    pub plan_id: &'static str,
    pub status: &'static str,
    pub started_at: Ts,
    pub trial_ends_at: Option<Ts>,
    pub cancelled_at: Option<Ts>,
    pub ended_at: Option<Ts>,
    pub cancel_reason: Option<&'static str>,
    pub previous_subscription_id: Option<Uuid>,
    pub loaded_at: Ts,
}

impl Row for Subscription {
    const TABLE: Table = Table::Subscriptions;
    fn write(&self, w: &mut impl FieldWriter) {
        w.uuid(&self.subscription_id);
        w.uuid(&self.user_id);
        w.opt_uuid(&self.company_id);
        w.text(self.plan_id);
        w.text(self.status);
        w.timestamp(self.started_at);
        w.opt_timestamp(self.trial_ends_at);
        w.opt_timestamp(self.cancelled_at);
        w.opt_timestamp(self.ended_at);
        w.opt_text(self.cancel_reason);
        w.opt_uuid(&self.previous_subscription_id);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionChange {
    pub change_id: Uuid,
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub change_type: &'static str,
    pub from_plan_id: Option<&'static str>,
    pub to_plan_id: Option<&'static str>,
    pub changed_at: Ts,
    pub loaded_at: Ts,
}

impl Row for SubscriptionChange {
    const TABLE: Table = Table::SubscriptionChanges;
    fn write(&self, w: &mut impl FieldWriter) {
        w.uuid(&self.change_id);
        w.uuid(&self.subscription_id);
        w.uuid(&self.user_id);
        w.text(self.change_type);
        w.opt_text(self.from_plan_id);
        w.opt_text(self.to_plan_id);
        w.timestamp(self.changed_at);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub payment_id: Uuid,
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub payment_type: &'static str,
    pub status: &'static str,
    pub amount_cents: i64,
    pub currency: &'static str,
    pub attempt: i32,
    pub retry_of_payment_id: Option<Uuid>,
    pub refund_of_payment_id: Option<Uuid>,
    pub failure_reason: Option<&'static str>,
    pub created_at: Ts,
    pub loaded_at: Ts,
}

impl Row for Payment {
    const TABLE: Table = Table::Payments;
    fn write(&self, w: &mut impl FieldWriter) {
        w.uuid(&self.payment_id);
        w.uuid(&self.subscription_id);
        w.uuid(&self.user_id);
        w.text(self.payment_type);
        w.text(self.status);
        w.bigint(self.amount_cents);
        w.text(self.currency);
        w.int(self.attempt);
        w.opt_uuid(&self.retry_of_payment_id);
        w.opt_uuid(&self.refund_of_payment_id);
        w.opt_text(self.failure_reason);
        w.timestamp(self.created_at);
        w.timestamp(self.loaded_at);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartnerCommission {
    pub partner_id: &'static str,
    pub spend_date: Day,
    pub amount_cents: i64,
    pub currency: &'static str,
    pub loaded_at: Ts,
}

impl Row for PartnerCommission {
    const TABLE: Table = Table::PartnerCommissions;
    fn write(&self, w: &mut impl FieldWriter) {
        w.text(self.partner_id);
        w.date(self.spend_date);
        w.bigint(self.amount_cents);
        w.text(self.currency);
        w.timestamp(self.loaded_at);
    }
}

/// What receives the generated rows.
pub trait Sink {
    fn plan(&mut self, r: &Plan);
    fn title(&mut self, r: &Title);
    fn company(&mut self, r: &Company);
    fn user(&mut self, r: &User);
    fn session(&mut self, r: &Session);
    fn event(&mut self, r: &Event);
    fn subscription(&mut self, r: &Subscription);
    fn subscription_change(&mut self, r: &SubscriptionChange);
    fn payment(&mut self, r: &Payment);
    fn partner_commission(&mut self, r: &PartnerCommission);
}

/// A sink that writes every row the same way, whatever its table.
pub trait RowWriter {
    fn row<R: Row>(&mut self, r: &R);
}

impl<W: RowWriter> Sink for W {
    fn plan(&mut self, r: &Plan) {
        self.row(r)
    }
    fn title(&mut self, r: &Title) {
        self.row(r)
    }
    fn company(&mut self, r: &Company) {
        self.row(r)
    }
    fn user(&mut self, r: &User) {
        self.row(r)
    }
    fn session(&mut self, r: &Session) {
        self.row(r)
    }
    fn event(&mut self, r: &Event) {
        self.row(r)
    }
    fn subscription(&mut self, r: &Subscription) {
        self.row(r)
    }
    fn subscription_change(&mut self, r: &SubscriptionChange) {
        self.row(r)
    }
    fn payment(&mut self, r: &Payment) {
        self.row(r)
    }
    fn partner_commission(&mut self, r: &PartnerCommission) {
        self.row(r)
    }
}

/// Every row in memory, by table (for tests and small datasets).
#[derive(Debug, Default, Clone)]
pub struct Dataset {
    pub plans: Vec<Plan>,
    pub titles: Vec<Title>,
    pub companies: Vec<Company>,
    pub users: Vec<User>,
    pub sessions: Vec<Session>,
    pub events: Vec<Event>,
    pub subscriptions: Vec<Subscription>,
    pub subscription_changes: Vec<SubscriptionChange>,
    pub payments: Vec<Payment>,
    pub partner_commissions: Vec<PartnerCommission>,
}

impl Sink for Dataset {
    fn plan(&mut self, r: &Plan) {
        self.plans.push(r.clone())
    }
    fn title(&mut self, r: &Title) {
        self.titles.push(r.clone())
    }
    fn company(&mut self, r: &Company) {
        self.companies.push(r.clone())
    }
    fn user(&mut self, r: &User) {
        self.users.push(r.clone())
    }
    fn session(&mut self, r: &Session) {
        self.sessions.push(r.clone())
    }
    fn event(&mut self, r: &Event) {
        self.events.push(r.clone())
    }
    fn subscription(&mut self, r: &Subscription) {
        self.subscriptions.push(r.clone())
    }
    fn subscription_change(&mut self, r: &SubscriptionChange) {
        self.subscription_changes.push(r.clone())
    }
    fn payment(&mut self, r: &Payment) {
        self.payments.push(r.clone())
    }
    fn partner_commission(&mut self, r: &PartnerCommission) {
        self.partner_commissions.push(r.clone())
    }
}

/// Rows per table.
#[derive(Debug, Default, Clone)]
pub struct Counts(pub std::collections::BTreeMap<Table, u64>);

impl RowWriter for Counts {
    fn row<R: Row>(&mut self, _: &R) {
        *self.0.entry(R::TABLE).or_default() += 1;
    }
}
