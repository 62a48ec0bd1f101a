-- The classic RFM map over the synthetic shop's purchases, as one CREATE TIERS: every buyer is
-- in exactly one tier, the first whose condition holds, and moves between tiers in the
-- transaction of an order, or at the exact instant the time since their last order reaches a
-- recency cutpoint. Scores are 1..5 against the population's 20th/40th/60th/80th percentiles,
-- recomputed by `segql refresh` (the worker runs it daily); `segql rfm` shows them.
-- Deploy with: segql deploy examples/rfm.sql

CREATE TIERS rfm COMMENT 'The classic RFM map: recency, and frequency and spend over a year' AS
  champions
    WHEN rfm_recency('purchase') >= 4
     AND rfm_frequency('purchase', within => '365 days') >= 4
     AND rfm_monetary('purchase', 'amount', within => '365 days') >= 4,
  loyal
    WHEN rfm_recency('purchase') >= 3
     AND rfm_frequency('purchase', within => '365 days') >= 4,
  cant_lose_them
    WHEN rfm_recency('purchase') <= 2
     AND rfm_frequency('purchase', within => '365 days') >= 4
     AND rfm_monetary('purchase', 'amount', within => '365 days') >= 4,
  at_risk
    WHEN rfm_recency('purchase') <= 2
     AND rfm_frequency('purchase', within => '365 days') >= 3,
  potential_loyalists
    WHEN rfm_recency('purchase') >= 4
     AND rfm_frequency('purchase', within => '365 days') BETWEEN 2 AND 3,
  new_customers
    WHEN rfm_recency('purchase') = 5 AND rfm_frequency('purchase', within => '365 days') = 1,
  promising
    WHEN rfm_recency('purchase') = 4 AND rfm_frequency('purchase', within => '365 days') = 1,
  need_attention
    WHEN rfm_recency('purchase') = 3 AND rfm_frequency('purchase', within => '365 days') = 3,
  about_to_sleep
    WHEN rfm_recency('purchase') = 3 AND rfm_frequency('purchase', within => '365 days') <= 2,
  lost
    WHEN rfm_recency('purchase') = 1 AND rfm_frequency('purchase', within => '365 days') <= 2,
  hibernating
    WHEN rfm_recency('purchase') <= 2 AND rfm_frequency('purchase', within => '365 days') <= 2;
