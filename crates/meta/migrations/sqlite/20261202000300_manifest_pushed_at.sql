-- The last time a client pushed the manifest (a re-push renews it): an untagged manifest a
-- client just pushed (an index's child, an artifact before its tag) is leased like a blob.
ALTER TABLE manifests ADD COLUMN pushed_at INTEGER NOT NULL DEFAULT 0;
UPDATE manifests SET pushed_at = created_at;
