-- What a tag had when it left a manifest (deleted, moved by a push, or overwritten by a forced
-- restore), so that restoring it brings back its push time and pull figures, not the time of
-- the restore.
ALTER TABLE tag_history ADD COLUMN from_pushed_at INTEGER;
ALTER TABLE tag_history ADD COLUMN from_last_pulled_at INTEGER;
ALTER TABLE tag_history ADD COLUMN from_pull_count INTEGER;
-- Tag history is pruned by age, oldest first.
CREATE INDEX tag_history_at ON tag_history (at);
