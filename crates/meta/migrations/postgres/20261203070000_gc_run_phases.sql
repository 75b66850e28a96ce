-- What a GC run is doing (`reviewing`, `uploads`, `sweeping`, `draining`; `starting` before
-- its first step, and for runs older than this column), and how many review entries were
-- queued when it began: the denominator of its progress, read by any node's run page.
ALTER TABLE gc_runs ADD COLUMN phase TEXT NOT NULL DEFAULT 'starting';
ALTER TABLE gc_runs ADD COLUMN queued_at_start BIGINT;
