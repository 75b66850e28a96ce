-- What the blob store needs, besides the key and the offset, to carry on an upload session
-- after a restart: for an object store, its multipart upload's id and the parts sent so far
-- (JSON written and read by the store). NULL for the local store, which needs nothing more.
ALTER TABLE uploads ADD COLUMN store_state TEXT;
