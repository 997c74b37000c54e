-- PulseMetrics raw warehouse, part 2: the tables the generator (or a real
-- product) loads. No personal data: users are UUIDs, countries ISO-2 codes.
-- Money is in cents, as payment processors report it. Every table has
-- `_loaded_at`, when the row reached the warehouse, for source freshness.

-- The billing system's plan catalogue.
create table if not exists raw.plans (
    plan_id         text primary key,
    plan_name       text not null,
    billing_period  text not null check (billing_period in ('monthly', 'annual')),
    price_cents     bigint not null check (price_cents >= 0),
    currency        char(3) not null,
    trial_days      integer not null check (trial_days >= 0),
    is_company_plan boolean not null,
    _loaded_at      timestamptz not null
);

-- The content catalogue.
create table if not exists raw.titles (
    title_id       integer primary key,
    title_name     text not null,
    genre          text not null,
    length_seconds integer not null check (length_seconds > 0),
    released_on    date not null,
    _loaded_at     timestamptz not null
);

-- Business customers (seed 002): all acquired in the first month.
create table if not exists raw.companies (
    company_id   uuid primary key,
    company_size text not null check (company_size in ('small', 'large')),
    industry     text not null,
    country_code char(2) not null,
    created_at   timestamptz not null,
    _loaded_at   timestamptz not null
);

create table if not exists raw.users (
    user_id             uuid primary key,
    company_id          uuid,
    signed_up_at        timestamptz not null,
    acquisition_channel text not null,
    partner_id          text,
    country_code        char(2) not null,
    platform            text not null,
    _loaded_at          timestamptz not null
);

create table if not exists raw.sessions (
    session_id      uuid primary key,
    user_id         uuid not null,
    started_at      timestamptz not null,
    ended_at        timestamptz not null,
    platform        text not null,
    title_id        integer,
    watched_seconds integer not null,
    _loaded_at      timestamptz not null
);
-- The nightly build reads the recent days' sessions (and the last one's start).
create index if not exists sessions_started_at on raw.sessions (started_at);

-- Product events, partitioned by month (seed 004): raw.create_events_partition
-- adds a month, raw.drop_events_partitions_before removes old ones.
create table if not exists raw.events (
    event_id    uuid not null,
    user_id     uuid not null,
    session_id  uuid,
    event_type  text not null,
    feature     text,
    title_id    integer,
    occurred_at timestamptz not null,
    _loaded_at  timestamptz not null
) partition by range (occurred_at);

-- One row per subscription, updated as it changes (status, plan, end).
create table if not exists raw.subscriptions (
    subscription_id          uuid primary key,
    user_id                  uuid not null,
    company_id               uuid,
    plan_id                  text not null,
    status                   text not null,
    started_at               timestamptz not null,
    trial_ends_at            timestamptz,
    cancelled_at             timestamptz,
    ended_at                 timestamptz,
    cancel_reason            text,
    previous_subscription_id uuid,
    _loaded_at               timestamptz not null
);

-- Every change of a subscription: trial_started, created (paid from the
-- start), reactivated, converted, upgraded, downgraded, cancelled (asked to
-- stop), expired (trial ended unpaid), ended.
create table if not exists raw.subscription_changes (
    change_id       uuid primary key,
    subscription_id uuid not null,
    user_id         uuid not null,
    change_type     text not null,
    from_plan_id    text,
    to_plan_id      text,
    changed_at      timestamptz not null,
    _loaded_at      timestamptz not null
);
-- The subscription's user, as billing systems send it with every event (and
-- Citus needs it to keep a change on its user's node). Warehouses created
-- before it was added get it here; `pm generate` fills it.
alter table raw.subscription_changes add column if not exists user_id uuid;

-- Every payment attempt (captured or failed; retries point at the attempt
-- they repeat) and every refund (status refunded, pointing at the payment).
create table if not exists raw.payments (
    payment_id           uuid primary key,
    subscription_id      uuid not null,
    user_id              uuid not null,
    payment_type         text not null,
    status               text not null,
    amount_cents         bigint not null,
    currency             char(3) not null,
    attempt              integer not null,
    retry_of_payment_id  uuid,
    refund_of_payment_id uuid,
    failure_reason       text,
    created_at           timestamptz not null,
    _loaded_at           timestamptz not null
);

-- Acquisition spend: what each partner was paid (ads, commissions,
-- sponsorships) per day.
create table if not exists raw.partner_commissions (
    partner_id   text not null,
    spend_date   date not null,
    amount_cents bigint not null,
    currency     char(3) not null,
    _loaded_at   timestamptz not null,
    primary key (partner_id, spend_date)
);

-- What `pm generate` made, for `pm generate --append-days`.
create table if not exists raw.generator_state (
    id           boolean primary key default true check (id),
    seed         bigint not null,
    scale        double precision not null,
    start_date   date not null,
    end_date     date not null,
    generated_at timestamptz not null
);
