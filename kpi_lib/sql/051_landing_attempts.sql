-- A landing whose move fails on a database error the validation did not foresee (issue 17): how often
-- it failed and why. The mover then moves it alone; after KPI_MOVE_MAX_ATTEMPTS failures it moves its
-- events one by one, and the ones that still fail go to bronze.rejects with the error as the reason,
-- so one poison event neither stops the landings after it nor is lost.
alter table bronze.landings add column if not exists attempts integer not null default 0;
alter table bronze.landings add column if not exists last_error text;
