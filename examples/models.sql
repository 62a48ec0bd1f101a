-- Predictive scores, learned from the shop's own history with `segql train buy_90d`.
-- Until the model is trained, score('buy_90d') is NULL and likely_buyers is empty.

CREATE MODEL buy_90d COMMENT 'Will purchase in the next 90 days'
  PREDICT did('purchase') WITHIN '90 days';

CREATE SEGMENT likely_buyers COMMENT 'At least a 50 % chance of buying in the next 90 days'
AS score('buy_90d') >= 0.5;
