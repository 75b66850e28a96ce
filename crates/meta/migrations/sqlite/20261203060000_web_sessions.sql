-- The web UI's sessions of logged-in users, in the catalogue so that every node knows them (a
-- browser's requests may reach any node). `id_hash`: the SHA-256 of the cookie's id, so that
-- nothing in the catalogue can be presented as a session. `subject`: user:ID or robot:ID.
-- A visitor who has not logged in has no row: the cookie alone carries that session.
CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
) STRICT;

CREATE INDEX web_sessions_last_used ON web_sessions (last_used);
