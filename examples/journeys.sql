-- Journeys: the order of a user's events (sequences) over the synthetic shop's sessions
-- (product_viewed, add_to_cart, purchase).

CREATE SEGMENT viewed_then_carted
  COMMENT 'Viewed a product, then added to the cart within 10 minutes, in the last day'
AS sequence('product_viewed', 'add_to_cart', within => '10 minutes', since => '1 day');

CREATE SEGMENT carted_not_bought
  COMMENT 'Added to the cart in the last day with no purchase after it'
AS did('add_to_cart', within => '1 day')
AND NOT sequence('add_to_cart', 'purchase', since => '1 day');
