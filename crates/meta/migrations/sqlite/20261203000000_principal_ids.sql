-- Who acted, by a stable id beside the display name kept as it was (`user:ID`, `robot:ID`,
-- `system:NAME`; NULL for an anonymous caller and for rows written before identities existed).
ALTER TABLE events ADD COLUMN actor_id TEXT;
ALTER TABLE tag_history ADD COLUMN actor_id TEXT;
ALTER TABLE batches ADD COLUMN actor_id TEXT;
ALTER TABLE gc_runs ADD COLUMN started_by_id TEXT;
ALTER TABLE policy_runs ADD COLUMN started_by_id TEXT;
ALTER TABLE policies ADD COLUMN updated_by_id TEXT;
