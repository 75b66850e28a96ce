-- Which repository links of a queued blob to re-check: the repository of an upload or mount,
-- and the repository of a purged manifest. A blob that some manifest still references is
-- reviewed through these links only, so a base layer shared by thousands of repositories costs
-- the links an event named, not all of its links. An entry lives as long as its blob's review.
CREATE TABLE gc_link_reviews (
    digest         TEXT NOT NULL,
    repository_id  INTEGER NOT NULL,
    PRIMARY KEY (digest, repository_id)
) STRICT, WITHOUT ROWID;

-- Entries queued before this table existed re-check every link of their blob, as they did.
INSERT INTO gc_link_reviews (digest, repository_id)
SELECT rb.digest, rb.repository_id FROM gc_blob_reviews q JOIN repository_blobs rb ON rb.digest = q.digest;
