-- High-intent moments: several signals, often across channels, in one window.
-- Event names follow the synthetic shop: page_view {url, channel}, loan_calculator_viewed,
-- rates_compared, competitor_site_visited, app_open; every event carries a channel prop
-- ('web', 'app' or 'email').

CREATE SEGMENT pricing_page_regulars
  COMMENT 'Viewed the pricing page 3+ times'
AS event_count('page_view') FILTER (WHERE url LIKE '%/pricing%') >= 3;

CREATE SEGMENT loan_high_intent
  COMMENT 'Viewed a loan calculator 3+ times, compared rates and visited a competitor, all in 30 days'
AS  event_count('loan_calculator_viewed', within => '30 days') >= 3
AND did('rates_compared', within => '30 days')
AND did('competitor_site_visited', within => '30 days');

CREATE SEGMENT web_and_app
  COMMENT 'Active on the web and in the app in the last 7 days'
AS  did('*', within => '7 days') FILTER (WHERE channel = 'web')
AND did('*', within => '7 days') FILTER (WHERE channel = 'app');

CREATE SEGMENT comparison_shoppers
  COMMENT 'Viewed products 3+ times and searched in 30 days, with no purchase in 30 days'
AS  event_count('product_viewed', within => '30 days') >= 3
AND did('page_view', within => '30 days') FILTER (WHERE url = '/search')
AND NOT did('purchase', within => '30 days');
