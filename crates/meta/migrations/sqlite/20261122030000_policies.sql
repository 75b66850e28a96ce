-- Retention policies, stored as the document the operator applied (JSON), with when each runs next.
CREATE TABLE policies (
    name         TEXT PRIMARY KEY,
    document     TEXT NOT NULL,
    schedule     TEXT,
    next_run_at  INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    updated_by   TEXT NOT NULL
) STRICT;
CREATE INDEX policies_due ON policies (next_run_at) WHERE next_run_at IS NOT NULL;

-- Runs of a policy, by schedule or by hand. The policy's document is copied in, so the history
-- says what was applied even after the policy changed or was removed.
CREATE TABLE policy_runs (
    id                 INTEGER PRIMARY KEY,
    policy             TEXT NOT NULL,
    document           TEXT NOT NULL,
    trigger            TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    state              TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'cancelled', 'failed')),
    started_by         TEXT NOT NULL,
    started_at         INTEGER NOT NULL,
    evaluated_at       INTEGER NOT NULL,
    finished_at        INTEGER,
    repositories       INTEGER NOT NULL DEFAULT 0,
    tags_evaluated     INTEGER NOT NULL DEFAULT 0,
    tags_deleted       INTEGER NOT NULL DEFAULT 0,
    manifests_deleted  INTEGER NOT NULL DEFAULT 0,
    bytes_freed        INTEGER NOT NULL DEFAULT 0,
    cancel_requested   INTEGER NOT NULL DEFAULT 0,
    errors             TEXT NOT NULL DEFAULT '[]'
) STRICT;
-- One active run per policy, enforced by the database.
CREATE UNIQUE INDEX policy_runs_one_active ON policy_runs (policy) WHERE state = 'running';
CREATE INDEX policy_runs_policy ON policy_runs (policy, id);

-- What a run deleted: a tag or an untagged manifest, with the rule that decided.
CREATE TABLE policy_run_items (
    run_id      INTEGER NOT NULL REFERENCES policy_runs (id),
    repository  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('tag', 'manifest')),
    target      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL
) STRICT;
CREATE INDEX policy_run_items_run ON policy_run_items (run_id);
