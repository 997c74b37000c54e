-- The acquisition channels, with their partners and how many users each brought.
with partner_counts as (
    select channel, count(*)::integer as partners
    from {{ ref('partners') }}
    group by 1
),

user_counts as (
    select acquisition_channel as channel, count(*)::integer as users
    from {{ ref('stg_users') }}
    group by 1
)

select
    c.channel,
    c.channel_type,
    c.description,
    coalesce(p.partners, 0) as partners,
    coalesce(u.users, 0) as users
from {{ ref('channels') }} as c
left join partner_counts as p on p.channel = c.channel
left join user_counts as u on u.channel = c.channel
