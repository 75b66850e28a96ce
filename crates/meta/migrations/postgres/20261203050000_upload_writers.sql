-- The node appending to an upload session, and until when its claim holds (renewed while it
-- writes): with several nodes on one bucket, a second node given the same chunk must not write
-- the same multipart part over the first's. NULL when nobody writes.
ALTER TABLE uploads ADD COLUMN writer TEXT COLLATE "C";
ALTER TABLE uploads ADD COLUMN writer_until BIGINT;
