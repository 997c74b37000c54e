-- Each month's MRR is the previous month's plus its movements, and its
-- starting MRR is the previous month's end: rows returned are months that
-- do not reconcile.
select
    month_start,
    starting_mrr,
    new_mrr,
    expansion_mrr,
    contraction_mrr,
    churned_mrr,
    reactivation_mrr,
    mrr
from {{ ref('mrr_monthly') }}
where starting_mrr + new_mrr + expansion_mrr - contraction_mrr - churned_mrr + reactivation_mrr <> mrr
   or starting_mrr <> coalesce(
        (select prev.mrr from {{ ref('mrr_monthly') }} as prev
         where prev.month_start = ({{ ref('mrr_monthly') }}.month_start - interval '1 month')::date),
        0)
