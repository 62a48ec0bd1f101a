-- Lifecycle and RFM-style tiers: profile dates (trial_ends_at, signed_up_at) and purchase
-- recency, frequency and spend. These change with time alone, so they rely on exact timers:
-- a user enters at_risk at the very instant their last purchase turns 60 days old.

CREATE SEGMENT trial_ending_soon
  COMMENT 'Trial ends within the next 3 days'
AS  trial_ends_at > now()
AND trial_ends_at <= now() + interval '3 days';

CREATE SEGMENT new_signups
  COMMENT 'Signed up in the last 7 days'
AS signed_up_at > now() - interval '7 days';

CREATE SEGMENT lapsed
  COMMENT 'No activity of any kind for more than 14 days'
AS last_event_at('*') < now() - interval '14 days';

-- RFM-style tiers. A customer is in at most one of champions, loyal, at_risk and hibernating.

CREATE SEGMENT champions
  COMMENT 'Bought in the last 30 days, with 5+ orders and $500+ spent in the last 365 days'
AS  did('purchase', within => '30 days')
AND event_count('purchase', within => '365 days') >= 5
AND event_sum('purchase', 'amount', within => '365 days') >= 500;

CREATE SEGMENT loyal
  COMMENT '3+ orders in the last 90 days, neither champions nor at risk'
AS  event_count('purchase', within => '90 days') >= 3
AND NOT in_segment('champions')
AND NOT in_segment('at_risk');

CREATE SEGMENT hibernating
  COMMENT 'Last purchase 180 days ago or more'
AS last_event_at('purchase') <= now() - interval '180 days';

CREATE SEGMENT at_risk
  COMMENT 'Bought before, but not in the last 60 days (and not yet hibernating)'
AS  did('purchase')
AND NOT did('purchase', within => '60 days')
AND NOT in_segment('hibernating');

CREATE SEGMENT at_risk_big_spenders
  COMMENT 'At risk after spending $500+ in total: worth a retention offer'
AS  in_segment('at_risk')
AND event_sum('purchase', 'amount') >= 500;
