-- Identities and what they may do. Passwords and robot secrets are kept only as argon2id
-- hashes. A binding gives a subject a role on a repository glob; `anonymous` is the subject of
-- requests without credentials (anonymous pull on a pattern).
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    admin          INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    created_at     INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    last_login_at  INTEGER
) STRICT;

CREATE TABLE robots (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    secret_hash   TEXT NOT NULL,
    description   TEXT,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER
) STRICT;

CREATE TABLE role_bindings (
    id          INTEGER PRIMARY KEY,
    subject     TEXT NOT NULL,
    pattern     TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (subject, pattern)
) STRICT;

