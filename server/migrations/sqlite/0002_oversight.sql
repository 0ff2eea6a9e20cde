-- Oversight (R2, R10). Break-glass requests that were answered with the warning and await the
-- confirmation, kept by the SHA-256 of their one-time token; recorded access reviews per team.

CREATE TABLE break_glass_requests (
    token_hash TEXT PRIMARY KEY,
    dossier    TEXT NOT NULL REFERENCES dossiers (id),
    user_id    TEXT NOT NULL,
    category   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    warned_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE access_reviews (
    id          INTEGER PRIMARY KEY,
    team        TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    reviewed_at TEXT NOT NULL,
    dossiers    INTEGER NOT NULL,
    lines       INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    note        TEXT
);
CREATE INDEX access_reviews_by_team ON access_reviews (team, id);

-- Reports read the log by time window.
CREATE INDEX audit_by_at ON audit (at);
