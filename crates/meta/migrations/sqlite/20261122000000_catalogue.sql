-- The catalogue of the embedded default. Times are integer milliseconds from the injected clock.
-- References are foreign keys without cascade, so the database itself refuses to forget
-- anything that is still referenced.

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE blobs (
    digest       TEXT PRIMARY KEY,
    size         INTEGER NOT NULL CHECK (size >= 0),
    storage_key  TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
) STRICT;

-- Which repository may serve which blob.
CREATE TABLE repository_blobs (
    repository_id  INTEGER NOT NULL REFERENCES repositories (id),
    digest         TEXT NOT NULL REFERENCES blobs (digest),
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
) STRICT;
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    id              INTEGER PRIMARY KEY,
    repository_id   INTEGER NOT NULL REFERENCES repositories (id),
    digest          TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    artifact_type   TEXT,
    size            INTEGER NOT NULL,
    payload         BLOB NOT NULL,
    subject_digest  TEXT,
    annotations     TEXT,
    created_at      INTEGER NOT NULL,
    last_pulled_at  INTEGER,
    UNIQUE (repository_id, digest)
) STRICT;
CREATE INDEX manifests_subject ON manifests (repository_id, subject_digest)
    WHERE subject_digest IS NOT NULL;

-- manifest -> blob (config, layers)
CREATE TABLE manifest_blob_references (
    manifest_id  INTEGER NOT NULL REFERENCES manifests (id),
    blob_digest  TEXT NOT NULL REFERENCES blobs (digest),
    PRIMARY KEY (manifest_id, blob_digest)
) STRICT;
CREATE INDEX manifest_blob_references_blob ON manifest_blob_references (blob_digest);

-- manifest (index) -> child manifest, always within one repository
CREATE TABLE manifest_child_references (
    parent_id  INTEGER NOT NULL REFERENCES manifests (id),
    child_id   INTEGER NOT NULL REFERENCES manifests (id),
    PRIMARY KEY (parent_id, child_id)
) STRICT;
CREATE INDEX manifest_child_references_child ON manifest_child_references (child_id);

CREATE TABLE tags (
    repository_id   INTEGER NOT NULL REFERENCES repositories (id),
    name            TEXT NOT NULL,
    manifest_id     INTEGER NOT NULL REFERENCES manifests (id),
    pushed_at       INTEGER NOT NULL,
    last_pulled_at  INTEGER,
    PRIMARY KEY (repository_id, name)
) STRICT;
CREATE INDEX tags_manifest ON tags (manifest_id);

-- Every change of a tag: pushed, moved, deleted, restored.
CREATE TABLE tag_history (
    id             INTEGER PRIMARY KEY,
    repository_id  INTEGER NOT NULL REFERENCES repositories (id),
    tag            TEXT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('pushed', 'moved', 'deleted', 'restored')),
    from_digest    TEXT,
    to_digest      TEXT,
    actor          TEXT NOT NULL,
    at             INTEGER NOT NULL
) STRICT;
CREATE INDEX tag_history_tag ON tag_history (repository_id, tag, at);

CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,
    repository_id  INTEGER NOT NULL REFERENCES repositories (id),
    storage_key    TEXT NOT NULL UNIQUE,
    received       INTEGER NOT NULL DEFAULT 0,
    hash_alg       TEXT NOT NULL,
    hash_state     BLOB,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

-- The activity log.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    source      TEXT,
    action      TEXT NOT NULL,
    repository  TEXT,
    target      TEXT,
    digest      TEXT,
    reason      TEXT
) STRICT;
CREATE INDEX events_at ON events (at);
CREATE INDEX events_repository ON events (repository, at);
