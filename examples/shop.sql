-- Storefront segments over the synthetic shop's events:
--   product_viewed, add_to_cart {price, quantity, line_total, category},
--   purchase {amount, category, items, quantity, order_id}, page_view {url}.
-- Deploy with: segql deploy examples/shop.sql

CREATE SEGMENT browsed_not_bought
  COMMENT 'Viewed products 3+ times in the last 48 hours without buying'
AS  event_count('product_viewed', within => '48 hours') >= 3
AND NOT did('purchase', within => '48 hours');

CREATE SEGMENT premium_new_york
  COMMENT 'Premium plan users in New York'
AS plan = 'premium' AND city = 'New York';

CREATE SEGMENT high_order_value
  COMMENT 'Average order value above $100'
AS event_avg('purchase', 'amount') > 100;

CREATE SEGMENT carted_last_hour
  COMMENT 'Added items to the cart in the last hour (live Black Friday counter)'
AS did('add_to_cart', within => '1 hour');

-- Enters an hour after the last cart add, so a reminder never interrupts someone still shopping.
CREATE SEGMENT abandoned_cart
  COMMENT 'Added to cart in the last 24 hours, idle for an hour since, and no purchase after it'
AS  did('add_to_cart', within => '24 hours')
AND NOT did('add_to_cart', within => '1 hour')
AND (last_event_at('purchase') IS NULL OR last_event_at('purchase') < last_event_at('add_to_cart'));

CREATE SEGMENT broad_shoppers
  COMMENT 'Bought from 3+ categories'
AS distinct_count('purchase', 'category') >= 3;

-- The cart is what was added since the latest purchase; an add in the purchase's own second
-- was part of that purchase.
CREATE SEGMENT big_cart
  COMMENT 'Cart over $100'
AS event_sum('add_to_cart', 'line_total', after => 'purchase') > 100;
