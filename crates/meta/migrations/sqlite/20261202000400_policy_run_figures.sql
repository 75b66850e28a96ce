-- A policy run's deletions move bytes out of use: held for restore until the window ends, or
-- reclaimable at once when there is no window (`bytes_freed`). And how many repositories lost
-- something, beside how many were evaluated.
ALTER TABLE policy_runs ADD COLUMN bytes_held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE policy_runs ADD COLUMN repositories_affected INTEGER NOT NULL DEFAULT 0;
