-- A cancel is asked in the run's row, so that any node can cancel the run another executes.
ALTER TABLE gc_runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;

-- Run items keep the order they were written in by an id of their own (not SQLite's hidden
-- rowid, which other databases do not have).
CREATE TABLE gc_run_items_new (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES gc_runs (id),
    kind        TEXT NOT NULL CHECK (kind IN ('manifest', 'blob', 'link', 'upload', 'orphan')),
    repository  TEXT,
    target      TEXT NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO gc_run_items_new (id, run_id, kind, repository, target, size)
    SELECT rowid, run_id, kind, repository, target, size FROM gc_run_items;
DROP TABLE gc_run_items;
ALTER TABLE gc_run_items_new RENAME TO gc_run_items;
CREATE INDEX gc_run_items_run ON gc_run_items (run_id, id);

CREATE TABLE policy_run_items_new (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES policy_runs (id),
    repository  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('tag', 'manifest')),
    target      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL
) STRICT;
INSERT INTO policy_run_items_new (id, run_id, repository, kind, target, digest, rule, reason)
    SELECT rowid, run_id, repository, kind, target, digest, rule, reason FROM policy_run_items;
DROP TABLE policy_run_items;
ALTER TABLE policy_run_items_new RENAME TO policy_run_items;
CREATE INDEX policy_run_items_run ON policy_run_items (run_id, id);

-- Counters of changes every node must notice: a node compiles the applied policies again when
-- their version moved (a tag protected on one node is protected on all).
CREATE TABLE catalogue_versions (
    name     TEXT PRIMARY KEY,
    version  INTEGER NOT NULL
) STRICT;
