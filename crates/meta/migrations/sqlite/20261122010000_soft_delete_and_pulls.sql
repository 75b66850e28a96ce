-- Deletion is soft for the restore window: a deleted manifest or repository disappears for
-- clients at once but keeps its rows (and so its references) until the collector purges it.
ALTER TABLE repositories ADD COLUMN deleted_at INTEGER;
ALTER TABLE manifests ADD COLUMN deleted_at INTEGER;
CREATE INDEX manifests_deleted ON manifests (deleted_at) WHERE deleted_at IS NOT NULL;

-- Pull tracking, written in batches.
ALTER TABLE manifests ADD COLUMN pull_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tags ADD COLUMN pull_count INTEGER NOT NULL DEFAULT 0;

CREATE INDEX tag_history_repository ON tag_history (repository_id, at);
CREATE INDEX events_action ON events (action, at);
