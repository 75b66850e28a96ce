-- A blob whose bytes were found missing or damaged (`shipshape check --repair`) answers as
-- unknown, so clients upload it again; the upload replaces the stored copy.
ALTER TABLE blobs ADD COLUMN state TEXT NOT NULL DEFAULT 'present'
    CHECK (state IN ('present', 'missing'));
