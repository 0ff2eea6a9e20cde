-- Regie's store. Times are RFC 3339 text in UTC. Dossier content lives only in the Automerge
-- changes and snapshots; these tables hold ids and relationships, never names or notes.

CREATE TABLE server_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE dossiers (
    id         TEXT PRIMARY KEY,
    district   TEXT NOT NULL,
    team       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'open',
    created_at TEXT NOT NULL
);

CREATE TABLE dossier_persons (
    dossier TEXT NOT NULL REFERENCES dossiers (id),
    person  TEXT NOT NULL,
    PRIMARY KEY (dossier, person)
);

CREATE TABLE assignments (
    dossier     TEXT NOT NULL REFERENCES dossiers (id),
    user_id     TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (dossier, user_id)
);

CREATE TABLE grants (
    id         INTEGER PRIMARY KEY,
    dossier    TEXT NOT NULL REFERENCES dossiers (id),
    user_id    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX grants_by_dossier ON grants (dossier);

CREATE TABLE resident_links (
    dossier   TEXT NOT NULL REFERENCES dossiers (id),
    person    TEXT NOT NULL,
    linked_at TEXT NOT NULL,
    PRIMARY KEY (dossier, person)
);

CREATE TABLE partners (
    dossier TEXT NOT NULL REFERENCES dossiers (id),
    org     TEXT NOT NULL,
    PRIMARY KEY (dossier, org)
);

CREATE TABLE documents (
    id         TEXT PRIMARY KEY,
    dossier    TEXT NOT NULL REFERENCES dossiers (id),
    key        TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (dossier, key)
);

-- Changes are appended per document; compaction folds a prefix into the snapshot.
CREATE TABLE changes (
    document TEXT NOT NULL REFERENCES documents (id),
    seq      INTEGER NOT NULL,
    bytes    BLOB NOT NULL,
    PRIMARY KEY (document, seq)
);

CREATE TABLE snapshots (
    document TEXT PRIMARY KEY REFERENCES documents (id),
    bytes    BLOB NOT NULL,
    upto_seq INTEGER NOT NULL
);

-- Automerge sync state per user and client storage id, so a reconnecting device sends only
-- what changed. Keyed by the authenticated user: a device can never pick up another user's state.
CREATE TABLE sync_states (
    user_id    TEXT NOT NULL,
    storage_id TEXT NOT NULL,
    document   TEXT NOT NULL REFERENCES documents (id),
    state      BLOB NOT NULL,
    PRIMARY KEY (user_id, storage_id, document)
);

-- Append-only, hash-chained audit log with NEN 7513 fields.
CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    on_behalf_of TEXT,
    dossier      TEXT,
    document     TEXT,
    persons      TEXT,
    action       TEXT NOT NULL,
    basis        TEXT,
    outcome      TEXT NOT NULL,
    device       TEXT,
    detail       TEXT,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL
);
CREATE INDEX audit_by_dossier ON audit (dossier);

CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Rejected write batches, kept whole for a privacy officer's review (I2). Never re-injected.
CREATE TABLE quarantine (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    device   TEXT,
    document TEXT NOT NULL,
    reason   TEXT NOT NULL,
    path     TEXT,
    detail   TEXT NOT NULL,
    hashes   TEXT NOT NULL,
    changes  BLOB NOT NULL
);
