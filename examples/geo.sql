-- Location segments: store proximity and delivery zones, from each user's last known location
-- (the lat/lon of their latest event that carries both, e.g. an app_open, else their profile's).
-- Deploy with: segql deploy examples/geo.sql

-- Polygons list corners as lon lat; circles are (lat, lon, radius_km).
CREATE ZONE manhattan_delivery AS POLYGON ((
    -74.0200 40.7000, -73.9700 40.7000, -73.9300 40.7950, -73.9500 40.8100, -74.0150 40.7550
));
CREATE ZONE store_soho AS CIRCLE (40.7233, -74.0030, 0.5);

CREATE SEGMENT near_a_store
  COMMENT 'Within 2 km of one of our stores (SoHo, Oxford Street, Le Marais)'
AS distance_km(40.7233, -74.0030) <= 2
OR distance_km(51.5154, -0.1419) <= 2
OR distance_km(48.8590, 2.3620) <= 2;

CREATE SEGMENT in_delivery_zone
  COMMENT 'Their last known location is in the Manhattan delivery zone'
AS in_zone('manhattan_delivery');

-- Inside a FILTER the zone is tested against each event's own location, not the last one.
CREATE SEGMENT visited_soho_store
  COMMENT 'Opened the app at the SoHo store in the last 30 days'
AS did('app_open', within => '30 days') FILTER (WHERE in_zone('store_soho'));

CREATE SEGMENT deliverable_carts
  COMMENT 'In the delivery zone with a cart add in the last 24 hours and no purchase since'
AS  in_zone('manhattan_delivery')
AND did('add_to_cart', within => '24 hours')
AND (last_event_at('purchase') IS NULL OR last_event_at('purchase') < last_event_at('add_to_cart'));
