-- One row per operation that removed tags (a repository deletion, a bulk delete, a policy
-- run's repository); each removal in the tag history names its batch, so the restore bin can
-- bring a whole operation back.
CREATE TABLE batches (
    id             INTEGER PRIMARY KEY,
    action         TEXT NOT NULL,
    repository_id  INTEGER NOT NULL REFERENCES repositories (id),
    actor          TEXT NOT NULL,
    at             INTEGER NOT NULL
) STRICT;
ALTER TABLE tag_history ADD COLUMN batch INTEGER REFERENCES batches (id);
CREATE INDEX tag_history_batch ON tag_history (batch) WHERE batch IS NOT NULL;
CREATE INDEX batches_repository ON batches (repository_id, action, id);
