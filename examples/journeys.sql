-- Journeys: the order of a user's events (sequences) and how often they come back (sessions),
-- over the synthetic shop's product_viewed, add_to_cart and purchase events.

CREATE SEGMENT viewed_then_carted
  COMMENT 'Viewed a product, then added to the cart within 10 minutes, in the last day'
AS sequence('product_viewed', 'add_to_cart', within => '10 minutes', since => '1 day');

CREATE SEGMENT carted_not_bought
  COMMENT 'Added to the cart in the last day with no purchase after it'
AS did('add_to_cart', within => '1 day')
AND NOT sequence('add_to_cart', 'purchase', since => '1 day');

-- Sessions: an app session is its session_id; web visits are split where 30 minutes pass
-- without an event.

CREATE SEGMENT frequent_visitors
  COMMENT '5 or more sessions in the last 7 days'
AS session_count(within => '7 days') >= 5;

CREATE SEGMENT engaged_browsers
  COMMENT 'Sessions averaging 5+ minutes this week, with 2+ of them viewing products'
AS avg_session_minutes(within => '7 days') >= 5
AND session_count('product_viewed', within => '7 days') >= 2;
