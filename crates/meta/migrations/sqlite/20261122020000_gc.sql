-- Online garbage collection. Review queues are keyed by what they review and filled by upsert,
-- so events merge and none is lost. `queued_at` is the time of the latest event that queued
-- the entry: the entry is due once `queued_at + review_delay` has passed (a run may use a
-- shorter delay) and `not_before` (a claim lease, a back-off, or a hold) has passed too.

-- A link's lease: a HEAD, mount or re-upload renews it, and the collector leaves the link (and so
-- the blob) alone until `renewed_at + review_delay`.
ALTER TABLE repository_blobs ADD COLUMN renewed_at INTEGER NOT NULL DEFAULT 0;
UPDATE repository_blobs SET renewed_at = created_at;

CREATE TABLE gc_blob_reviews (
    digest      TEXT PRIMARY KEY,
    queued_at   INTEGER NOT NULL,
    not_before  INTEGER NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX gc_blob_reviews_due ON gc_blob_reviews (queued_at, digest);

-- No foreign key: the manifest may be gone when the entry is reviewed.
CREATE TABLE gc_manifest_reviews (
    manifest_id  INTEGER PRIMARY KEY,
    queued_at    INTEGER NOT NULL,
    not_before   INTEGER NOT NULL DEFAULT 0,
    reason       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX gc_manifest_reviews_due ON gc_manifest_reviews (queued_at);

-- Storage keys the catalogue has forgotten, waiting for the drainer to delete the objects.
CREATE TABLE storage_deletions (
    storage_key  TEXT PRIMARY KEY,
    queued_at    INTEGER NOT NULL,
    not_before   INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX uploads_updated ON uploads (updated_at);
CREATE INDEX tag_history_from ON tag_history (repository_id, from_digest, at) WHERE from_digest IS NOT NULL;

CREATE TABLE gc_runs (
    id                  INTEGER PRIMARY KEY,
    state               TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'cancelled', 'failed')),
    dry_run             INTEGER NOT NULL,
    include_untagged    INTEGER NOT NULL,
    sweep               INTEGER NOT NULL,
    grace_ms            INTEGER,
    started_by          TEXT NOT NULL,
    started_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    manifests_deleted   INTEGER NOT NULL DEFAULT 0,
    blobs_deleted       INTEGER NOT NULL DEFAULT 0,
    bytes_deleted       INTEGER NOT NULL DEFAULT 0,
    links_deleted       INTEGER NOT NULL DEFAULT 0,
    uploads_deleted     INTEGER NOT NULL DEFAULT 0,
    orphans_deleted     INTEGER NOT NULL DEFAULT 0,
    reviewed            INTEGER NOT NULL DEFAULT 0,
    errors              TEXT NOT NULL DEFAULT '[]'
) STRICT;
-- One active run at a time, enforced by the database.
CREATE UNIQUE INDEX gc_runs_one_active ON gc_runs (state) WHERE state = 'running';

-- What a run deleted, or would delete in a dry run.
CREATE TABLE gc_run_items (
    run_id      INTEGER NOT NULL REFERENCES gc_runs (id),
    kind        TEXT NOT NULL CHECK (kind IN ('manifest', 'blob', 'link', 'upload', 'orphan')),
    repository  TEXT,
    target      TEXT NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX gc_run_items_run ON gc_run_items (run_id);

-- Everything that existed before the collector did is reviewed once.
INSERT INTO gc_blob_reviews (digest, queued_at, reason) SELECT digest, created_at, 'initial' FROM blobs;
INSERT INTO gc_manifest_reviews (manifest_id, queued_at, reason)
    SELECT id, coalesce(deleted_at, created_at), 'initial' FROM manifests;
