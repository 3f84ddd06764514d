-- Was this customer active earlier in the range? Answers "new distinct customers today" without
-- recounting the whole range, which keeps live customer tiles cheap at 10 M order lines.
create index if not exists customer_hourly_customer on gold.customer_hourly (customer_id, hour);
