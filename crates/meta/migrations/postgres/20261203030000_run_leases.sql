-- Which node executes a running GC or policy run, and until when it holds it: the node renews
-- the lease while the run goes on; a run whose lease ran out (its node died) is failed by any
-- other node, and a node starting again fails the runs it left.
ALTER TABLE gc_runs ADD COLUMN node TEXT;
ALTER TABLE gc_runs ADD COLUMN lease_until BIGINT;
ALTER TABLE policy_runs ADD COLUMN node TEXT;
ALTER TABLE policy_runs ADD COLUMN lease_until BIGINT;
