-- A worker claims the blob reviews whose time has come (`not_before` passed) in that order, so
-- a claim walks only due entries: with an index on `queued_at` alone it walked every entry
-- deferred behind a lease, a day of uploads with the default review delay, at every poll.
CREATE INDEX gc_blob_reviews_next ON gc_blob_reviews (not_before, queued_at);
