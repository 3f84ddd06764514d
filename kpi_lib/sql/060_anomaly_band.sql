-- The expected value and usual range of each period an incident's chart shows, as the scan judged
-- them: {"t": [times], "expected": [...], "lower": [...], "upper": [...]} (kpi_lib.anomaly.scan.band).
-- Null for threshold-rule incidents and for incidents stored before this column.
alter table ops.anomalies add column if not exists band jsonb;
