{{
    config(
        materialized='incremental',
        unique_key='date',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        grants={'select': ['finance']},
        tags=['revenue', 'daily'],
        full_refresh=keeps_history(),
        pre_hook="{{ remember_computed_days(daily_metrics_bounds()) }}",
        post_hook=[
            "{{ secure_daily_metrics() }}",
            "{{ prune_history('date') }}",
            "{{ log_computed_days() }}"
        ]
    )
}}
{#
  One row per day: every daily metric of PulseMetrics. Incremental, by day
  (macros/daily_metrics_bounds.sql):
  - `--vars '{from: 2024-03-01, to: 2024-03-07}'` recomputes exactly those days
    (`to` defaults to the last day with data);
  - otherwise the days after the last one in the table, plus `lookback_days`
    before it (late sessions, 7-day activation and trial conversion settle
    within it);
  - on the first run, every day. Not with --full-refresh: its captures come
    from raw events, which are dropped after their retention period, so the
    table keeps what it computed (macros/history.sql says how to rebuild it
    on purpose), and prunes days older than `metrics_retention_days`.
  Each run logs the days it computed in analytics.metrics_job_log.
  Each day's rows are replaced whole (delete+insert), so re-running a day
  changes nothing.
#}
{#- A backfill does not compute again days whose events are gone (fct_events keeps them past raw retention, unless rebuilt on purpose). -#}
{%- set from_day = date_var('from') %}
{%- if from_day is not none and execute and is_incremental() and not var('rebuild_history', false) %}
    {%- set kept = run_query(
        "select (select min(event_date)::text from " ~ ref('fct_events') ~ "), (select min(date)::text from " ~ ref('dim_date') ~ ")"
    ) %}
    {%- set first_event = kept.columns[0].values()[0] %}
    {%- set first_day = kept.columns[1].values()[0] %}
    {%- if first_event is not none and first_event > first_day and from_day < first_event %}
        {{ exceptions.raise_compiler_error(
            "var `from` is " ~ from_day ~ ", but fct_events holds events from " ~ first_event
            ~ " only (it was rebuilt after raw.events' older months were dropped): the days before it would be computed again without their events;"
            ~ " backfill from " ~ first_event ~ " or later, or rebuild on purpose with --vars '{rebuild_history: true}'"
        ) }}
    {%- endif %}
{%- endif %}
with bounds as (
    {{ daily_metrics_bounds() }}
),

-- Month-to-date totals need the month's earlier days, rolling windows the 29 before.
ranges as (
    select
        first_day,
        last_day,
        least(date_trunc('month', first_day)::date, first_day - 30) as read_from
    from bounds
),

days as (
    select day::date as date
    from ranges, generate_series(ranges.read_from, ranges.last_day, interval '1 day') as day
),

signups as (
    select
        u.signup_date as date,
        count(*)::integer as signups,
        (count(*) filter (where u.is_activated))::integer as activated_signups
    from {{ ref('dim_users') }} as u, ranges
    where u.signup_date between ranges.read_from and ranges.last_day
    group by 1
),

-- Active users by day, week and month without a join per window: a user
-- active on day s, next active on day n, counts on the days from s until
-- (not including) n or s + window, whichever comes first. Adding +1 at the
-- start and -1 at the end of each such stretch and summing over the days
-- gives the distinct users of the trailing window (for a window of one day,
-- the users whose stretch starts on it).
activity as (
    select
        a.user_id,
        a.activity_date,
        a.sessions,
        a.viewing_sessions,
        lead(a.activity_date) over (partition by a.user_id order by a.activity_date) as next_date
    from {{ ref('int_user_activity_days') }} as a, ranges
    where a.activity_date between ranges.read_from and ranges.last_day
),

viewing as (
    select
        user_id,
        activity_date,
        lead(activity_date) over (partition by user_id order by activity_date) as next_date,
        lag(activity_date) over (partition by user_id order by activity_date) as previous_date
    from activity
    where viewing_sessions > 0
),

-- Each edge counted by its day: the stretches start on an active day and
-- end on the next one or when the window has passed, whichever comes first.
stretch_starts as (
    select activity_date as date, count(*) as users
    from activity
    group by 1
),

week_stretch_ends as (
    select least(coalesce(next_date, activity_date + 7), activity_date + 7) as date, count(*) as users
    from activity
    group by 1
),

month_stretch_ends as (
    select least(coalesce(next_date, activity_date + 30), activity_date + 30) as date, count(*) as users
    from activity
    group by 1
),

-- A viewer with a viewing day within the 6 days before this one has
-- watched on 2+ days of the trailing week until that earlier day is 7 days old.
repeat_viewing as (
    select activity_date, least(coalesce(next_date, previous_date + 7), previous_date + 7) as until_date
    from viewing
    where previous_date >= activity_date - 6
),

repeat_starts as (
    select activity_date as date, count(*) as users from repeat_viewing group by 1
),

repeat_ends as (
    select until_date as date, count(*) as users from repeat_viewing group by 1
),

active_users as (
    select
        d.date,
        coalesce(s.users, 0)::integer as daily_active_users,
        sum(coalesce(s.users, 0) - coalesce(we.users, 0)) over running_total::integer as weekly_active_users,
        sum(coalesce(s.users, 0) - coalesce(me.users, 0)) over running_total::integer as monthly_active_users,
        sum(coalesce(rs.users, 0) - coalesce(re.users, 0)) over running_total::integer as repeat_viewers_7d
    from days as d
    left join stretch_starts as s on s.date = d.date
    left join week_stretch_ends as we on we.date = d.date
    left join month_stretch_ends as me on me.date = d.date
    left join repeat_starts as rs on rs.date = d.date
    left join repeat_ends as re on re.date = d.date
    window running_total as (order by d.date)
),

sessions as (
    select
        s.session_date as date,
        count(*)::integer as sessions,
        (count(distinct s.user_id) filter (where s.title_id is not null))::integer as unique_viewers,
        round(avg(s.duration_seconds), 1) as avg_session_duration_seconds,
        round(avg(s.completion_rate), 4) as avg_completion_rate
    from {{ ref('fct_sessions') }} as s, ranges
    -- The days computed, and the 6 before them for sessions_7d.
    where s.session_date between ranges.first_day - 6 and ranges.last_day
    group by 1
),

captures as (
    select
        e.event_date as date,
        e.user_id,
        count(*)::integer as captures
    from {{ ref('fct_events') }} as e, ranges
    where e.event_type = 'capture' and e.event_date between ranges.first_day and ranges.last_day
    group by 1, 2
),

-- Capturing users, and whether each had an active subscription that day.
capturing_users as (
    select
        c.date,
        c.user_id,
        c.captures,
        bool_or(l.subscription_id is not null) as is_subscriber
    from captures as c
    left join {{ ref('int_subscription_lifetimes') }} as l
        on l.user_id = c.user_id
        and l.start_date <= c.date
        and (l.end_date is null or l.end_date > c.date)
    group by 1, 2, 3
),

capturing as (
    select
        date,
        sum(captures)::integer as captures,
        count(*)::integer as capturing_users,
        (count(*) filter (where is_subscriber))::integer as capturing_subscribers
    from capturing_users
    group by 1
),

trials as (
    select
        s.start_date as date,
        count(*)::integer as trials_started,
        (count(*) filter (where s.is_converted))::integer as trials_converted
    from {{ ref('fct_subscriptions') }} as s, ranges
    where s.is_trial and s.start_date between ranges.first_day and ranges.last_day
    group by 1
),

-- Trials by the day their trial period ended (converted or not): the day's
-- trial → paid conversion is how many of them became paying.
trial_ends as (
    select
        s.trial_end_date as date,
        count(*)::integer as trials_ended,
        (count(*) filter (where s.is_converted))::integer as trials_ended_converted
    from {{ ref('fct_subscriptions') }} as s, ranges
    where s.is_trial and s.trial_end_date between ranges.first_day and ranges.last_day
    group by 1
),

subscription_starts as (
    select start_date as date, count(*)::integer as subscriptions_created
    from {{ ref('int_subscription_lifetimes') }}, ranges
    where start_date between ranges.read_from and ranges.last_day
    group by 1
),

subscription_cancels as (
    select cancel_date as date, count(*)::integer as subscriptions_cancelled
    from {{ ref('int_subscription_lifetimes') }}, ranges
    where cancel_date between ranges.first_day and ranges.last_day
    group by 1
),

subscription_ends as (
    select end_date as date, count(*)::integer as subscriptions_ended
    from {{ ref('int_subscription_lifetimes') }}, ranges
    where end_date between ranges.first_day and ranges.last_day
    group by 1
),

subscriptions_on_day as (
    select
        d.date,
        count(l.subscription_id)::integer as active_subscriptions,
        (count(l.subscription_id) filter (where l.paying_from <= d.date))::integer as paying_subscriptions
    from days as d
    cross join ranges
    left join {{ ref('int_subscription_lifetimes') }} as l
        on l.start_date <= d.date and (l.end_date is null or l.end_date > d.date)
    where d.date >= ranges.first_day
    group by d.date
),

mrr as (
    select
        d.date,
        coalesce(sum(p.monthly_value), 0)::numeric(14, 2) as mrr
    from days as d
    cross join ranges
    left join {{ ref('int_subscription_plan_periods') }} as p
        on p.paying_from <= d.date and (p.paying_until is null or p.paying_until > d.date)
    where d.date >= ranges.first_day
    group by d.date
),

payments as (
    select
        payment_date as date,
        (count(*) filter (where payment_type = 'trial' and status = 'captured'))::integer as trial_payments,
        (count(*) filter (where payment_type = 'regular' and status = 'captured'))::integer as regular_payments,
        (count(*) filter (where status in ('captured', 'failed')))::integer as payment_attempts,
        (count(*) filter (where status = 'captured'))::integer as payments_captured,
        (count(*) filter (where status = 'failed'))::integer as payments_failed,
        (count(*) filter (where status = 'refunded'))::integer as refunds,
        coalesce(sum(amount) filter (where status = 'captured'), 0)::numeric(14, 2) as gross_cash_in,
        coalesce(sum(amount) filter (where status = 'refunded'), 0)::numeric(14, 2) as refunded_amount
    from {{ ref('fct_payments') }}, ranges
    where payment_date between ranges.read_from and ranges.last_day
    group by 1
),

-- Acquisition (seed 000's CAC): what partners were paid on the day, and the
-- customers whose first captured regular payment fell on it.
acquisition as (
    select spend_date as date, sum(amount)::numeric(14, 2) as acquisition_spend
    from {{ ref('stg_partner_commissions') }}, ranges
    where spend_date between ranges.read_from and ranges.last_day
    group by 1
),

new_customers as (
    select first_paid_date as date, count(*)::integer as new_paying_customers
    from (
        select user_id, min(payment_date) as first_paid_date
        from {{ ref('fct_payments') }}
        where payment_type = 'regular' and status = 'captured'
        group by 1
    ) as firsts, ranges
    where first_paid_date between ranges.read_from and ranges.last_day
    group by 1
),

daily as (
    select
        d.date,
        coalesce(su.signups, 0) as signups,
        coalesce(su.activated_signups, 0) as activated_signups,
        coalesce(se.sessions, 0) as sessions,
        coalesce(ss.subscriptions_created, 0) as subscriptions_created,
        coalesce(p.gross_cash_in, 0) as gross_cash_in,
        coalesce(p.gross_cash_in, 0) - coalesce(p.refunded_amount, 0) as net_cash_in,
        coalesce(acq.acquisition_spend, 0) as acquisition_spend,
        coalesce(nc.new_paying_customers, 0) as new_paying_customers
    from days as d
    left join signups as su on su.date = d.date
    left join sessions as se on se.date = d.date
    left join subscription_starts as ss on ss.date = d.date
    left join payments as p on p.date = d.date
    left join acquisition as acq on acq.date = d.date
    left join new_customers as nc on nc.date = d.date
),

running as (
    select
        date,
        sum(signups) over month_to_date as signups_mtd,
        sum(subscriptions_created) over month_to_date as subscriptions_created_mtd,
        sum(gross_cash_in) over month_to_date as gross_cash_in_mtd,
        sum(net_cash_in) over month_to_date as net_cash_in_mtd,
        sum(acquisition_spend) over month_to_date as acquisition_spend_mtd,
        sum(new_paying_customers) over month_to_date as new_paying_customers_mtd,
        sum(sessions) over trailing_week as sessions_7d
    from daily
    window
        month_to_date as (partition by date_trunc('month', date) order by date),
        trailing_week as (order by date rows between 6 preceding and current row)
)

select
    d.date,
    d.signups,
    r.signups_mtd::integer as signups_mtd,
    d.activated_signups,
    {{ safe_ratio('d.activated_signups', 'd.signups') }} as activation_rate,
    a.daily_active_users,
    a.weekly_active_users,
    a.monthly_active_users,
    d.sessions,
    se.avg_session_duration_seconds,
    se.avg_completion_rate,
    coalesce(se.unique_viewers, 0) as unique_viewers,
    a.repeat_viewers_7d,
    {{ safe_ratio('r.sessions_7d', 'a.weekly_active_users', 2) }} as sessions_per_user_7d,
    coalesce(c.captures, 0) as captures,
    coalesce(c.capturing_users, 0) as capturing_users,
    coalesce(c.capturing_subscribers, 0) as capturing_subscribers,
    coalesce(t.trials_started, 0) as trials_started,
    coalesce(t.trials_converted, 0) as trials_converted,
    {{ safe_ratio('t.trials_converted', 't.trials_started') }} as trial_conversion_rate,
    coalesce(te.trials_ended, 0) as trials_ended,
    coalesce(te.trials_ended_converted, 0) as trials_ended_converted,
    {{ safe_ratio('te.trials_ended_converted', 'te.trials_ended') }} as trial_end_conversion_rate,
    d.subscriptions_created,
    r.subscriptions_created_mtd::integer as subscriptions_created_mtd,
    coalesce(sc.subscriptions_cancelled, 0) as subscriptions_cancelled,
    coalesce(ends.subscriptions_ended, 0) as subscriptions_ended,
    sd.active_subscriptions,
    sd.paying_subscriptions,
    coalesce(p.trial_payments, 0) as trial_payments,
    coalesce(p.regular_payments, 0) as regular_payments,
    coalesce(p.payment_attempts, 0) as payment_attempts,
    coalesce(p.payments_captured, 0) as payments_captured,
    coalesce(p.payments_failed, 0) as payments_failed,
    coalesce(p.refunds, 0) as refunds,
    d.gross_cash_in::numeric(14, 2) as gross_cash_in,
    coalesce(p.refunded_amount, 0)::numeric(14, 2) as refunded_amount,
    d.net_cash_in::numeric(14, 2) as net_cash_in,
    r.gross_cash_in_mtd::numeric(14, 2) as gross_cash_in_mtd,
    r.net_cash_in_mtd::numeric(14, 2) as net_cash_in_mtd,
    d.acquisition_spend::numeric(14, 2) as acquisition_spend,
    d.new_paying_customers,
    r.acquisition_spend_mtd::numeric(14, 2) as acquisition_spend_mtd,
    r.new_paying_customers_mtd::integer as new_paying_customers_mtd,
    round(r.acquisition_spend_mtd / nullif(r.new_paying_customers_mtd, 0), 2) as cac_mtd,
    {{ safe_ratio('p.payments_captured', 'p.payment_attempts') }} as payment_success_rate,
    {{ safe_ratio('p.refunds', 'p.payments_captured') }} as refund_rate,
    m.mrr,
    (m.mrr * 12)::numeric(14, 2) as arr
from daily as d
cross join ranges
join active_users as a on a.date = d.date
join running as r on r.date = d.date
join subscriptions_on_day as sd on sd.date = d.date
join mrr as m on m.date = d.date
left join sessions as se on se.date = d.date
left join capturing as c on c.date = d.date
left join trials as t on t.date = d.date
left join trial_ends as te on te.date = d.date
left join subscription_cancels as sc on sc.date = d.date
left join subscription_ends as ends on ends.date = d.date
left join payments as p on p.date = d.date
where d.date between ranges.first_day and ranges.last_day
