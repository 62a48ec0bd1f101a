-- Lifecycle and RFM-style tiers: profile dates (trial_ends_at, signed_up_at) and purchase
-- recency, frequency and spend. These change with time alone, so they rely on exact timers:
-- a user enters lapsing_buyers at the very instant their last purchase turns 60 days old.

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

-- Value tiers on fixed thresholds (examples/rfm.sql has the RFM map, relative to the
-- population). A customer is in at most one of top_customers, repeat_buyers, lapsing_buyers
-- and dormant_buyers.

CREATE SEGMENT top_customers
  COMMENT 'Bought in the last 30 days, with 5+ orders and $500+ spent in the last 365 days'
AS  did('purchase', within => '30 days')
AND event_count('purchase', within => '365 days') >= 5
AND event_sum('purchase', 'amount', within => '365 days') >= 500;

CREATE SEGMENT repeat_buyers
  COMMENT '3+ orders in the last 90 days, neither a top customer nor lapsing'
AS  event_count('purchase', within => '90 days') >= 3
AND NOT in_segment('top_customers')
AND NOT in_segment('lapsing_buyers');

CREATE SEGMENT dormant_buyers
  COMMENT 'Last purchase 180 days ago or more'
AS last_event_at('purchase') <= now() - interval '180 days';

CREATE SEGMENT lapsing_buyers
  COMMENT 'Bought before, but not in the last 60 days (and not yet dormant)'
AS  did('purchase')
AND NOT did('purchase', within => '60 days')
AND NOT in_segment('dormant_buyers');

CREATE SEGMENT lapsing_big_spenders
  COMMENT 'At risk after spending $500+ in total: worth a retention offer'
AS  in_segment('lapsing_buyers')
AND event_sum('purchase', 'amount') >= 500;
