-- What a catalogue is bound to. `local_store`: with its blobs on a node's own disk, that node's
-- name (DATA_DIR/node-id), so that a second node started on the same catalogue, which would not
-- have those bytes, is refused instead of answering 404 for blobs the catalogue lists.
CREATE TABLE catalogue_bindings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
