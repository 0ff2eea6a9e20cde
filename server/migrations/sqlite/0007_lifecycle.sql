-- A dossier's life after its first share (R5, R6, R16, R18). Each partner share keeps the ground
-- it rests on, so that a withdrawn consent ends the partner's access at once, and ends rather
-- than disappears; each maatwerk extract has one applicant, the only resident who reads it; a
-- closed dossier keeps when it closed. Ids and purposes only, never content.

ALTER TABLE partners ADD COLUMN ground TEXT NOT NULL DEFAULT 'consent';
ALTER TABLE partners ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
ALTER TABLE partners ADD COLUMN items TEXT NOT NULL DEFAULT '[]';
ALTER TABLE partners ADD COLUMN subjects TEXT NOT NULL DEFAULT '[]';
ALTER TABLE partners ADD COLUMN ended_at TEXT;
ALTER TABLE partners ADD COLUMN ended_because TEXT;

CREATE TABLE maatwerk_applicants (
    dossier TEXT NOT NULL REFERENCES dossiers (id),
    n       INTEGER NOT NULL,
    person  TEXT NOT NULL,
    PRIMARY KEY (dossier, n)
);

ALTER TABLE dossiers ADD COLUMN closed_at TEXT;

-- A server-written document rebuilt without history (a view that lost an entry) gets a new id;
-- the old id is refused forever, and a device asking for it is pointed to its replacement.
CREATE TABLE retired_documents (
    id          TEXT PRIMARY KEY,
    replaced_by TEXT NOT NULL,
    retired_at  TEXT NOT NULL
);

-- End of retention (R23, I6): the destroy-by date fixed at closing, and the proof that a
-- dossier was destroyed — ids, counts and when, never content.
ALTER TABLE dossiers ADD COLUMN destroy_by TEXT;

CREATE TABLE destructions (
    dossier      TEXT PRIMARY KEY,
    destroyed_at TEXT NOT NULL,
    reason       TEXT NOT NULL,
    documents    INTEGER NOT NULL,
    changes      INTEGER NOT NULL,
    bytes        INTEGER NOT NULL
);
