-- Plans: the billing system's prices with the analytics team's tiers. The
-- monthly price is what a subscription adds to MRR (annual plans: a twelfth,
-- rounded to the cent).
select
    p.plan_id,
    p.plan_name,
    t.tier,
    t.tier_rank,
    t.customer_type,
    p.billing_period,
    p.price,
    case p.billing_period
        when 'annual' then round(p.price / 12, 2)
        else p.price
    end::numeric(14, 2) as monthly_price,
    p.currency,
    p.trial_days,
    p.is_company_plan
from {{ ref('stg_plans') }} as p
left join {{ ref('plan_tiers') }} as t on t.plan_id = p.plan_id
