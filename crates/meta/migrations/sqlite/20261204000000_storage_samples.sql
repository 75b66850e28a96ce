-- The registry's storage figures over time, for the overview's chart: the total as the storage
-- bar classifies it (stored = live + held for restore + in grace + reclaimable), sampled by a
-- node when the newest sample is older than its interval, and by the node that executed a
-- garbage collection run as the run ended (`gc_run_id`), so the chart shows what it freed.
-- `slot`: the interval a scheduled sample stands for (its time divided by the interval),
-- unique, so that two nodes sampling the same interval record one sample; NULL for a run's.
CREATE TABLE storage_samples (
    id                 INTEGER PRIMARY KEY,
    at                 INTEGER NOT NULL,
    slot               INTEGER UNIQUE,
    gc_run_id          INTEGER,
    stored_bytes       INTEGER NOT NULL,
    live_bytes         INTEGER NOT NULL,
    held_bytes         INTEGER NOT NULL,
    grace_bytes        INTEGER NOT NULL,
    reclaimable_bytes  INTEGER NOT NULL,
    blobs              INTEGER NOT NULL,
    manifests          INTEGER NOT NULL,
    CHECK (stored_bytes = live_bytes + held_bytes + grace_bytes + reclaimable_bytes),
    CHECK ((slot IS NULL) <> (gc_run_id IS NULL))
) STRICT;
CREATE INDEX storage_samples_at ON storage_samples (at);
-- The chart adds up what the runs that ended between its first sample and each point freed.
CREATE INDEX gc_runs_finished ON gc_runs (finished_at);
