-- One device profile's store: the documents of the caseload (compacted snapshot plus
-- incremental saves), the sync state and last known server heads of each, the user's token and
-- claims, offline reads waiting for upload, and purge records. Times are RFC 3339 text in UTC by
-- the device clock. Dossier content lives only in `documents.snapshot` and `chunks.bytes`.

CREATE TABLE profile (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    -- This device's automerge-repo storage id; the server keys its sync states by it.
    storage_id   TEXT NOT NULL,
    server_url   TEXT,
    token        TEXT,
    -- The token's Regie claims as JSON (regie_core::principal::Claims).
    claims       TEXT,
    token_expires_at TEXT,
    last_sync_at TEXT
);

CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    dossier      TEXT NOT NULL,
    key          TEXT NOT NULL,
    -- What GET /api/v1/me/documents said: read|write, the basis, the dossier's district and team.
    access       TEXT NOT NULL,
    basis        TEXT NOT NULL,
    district     TEXT NOT NULL,
    team         TEXT NOT NULL,
    -- The compacted prefix (an Automerge save); NULL until the first compaction.
    snapshot     BLOB,
    -- The heads the server last told us it has, lower-case hex separated by commas.
    server_heads TEXT NOT NULL DEFAULT '',
    UNIQUE (dossier, key)
);

-- Incremental saves (Automerge `save_after`), appended in order and folded into the snapshot.
CREATE TABLE chunks (
    document TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    bytes    BLOB NOT NULL,
    PRIMARY KEY (document, seq)
);

-- The Automerge sync state with the server, per document (only what outlives a connection).
CREATE TABLE sync_states (
    document TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    state    BLOB NOT NULL
);

-- Local opens of documents (I3), uploaded at the next sync and deleted once the server has them.
CREATE TABLE audit_outbox (
    id          TEXT PRIMARY KEY,
    at          TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    dossier     TEXT NOT NULL,
    key         TEXT NOT NULL,
    document_id TEXT NOT NULL
);

-- Proof that a document was purged (R28), without any content.
CREATE TABLE purges (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    document_id TEXT NOT NULL,
    dossier     TEXT NOT NULL,
    key         TEXT NOT NULL,
    reason      TEXT NOT NULL
);

-- Batches the server rejected (I2) and what the rebase did with them, without content.
CREATE TABLE rejections (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    document_id TEXT NOT NULL,
    dossier     TEXT NOT NULL,
    key         TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT,
    changes     TEXT NOT NULL,
    replayed    INTEGER NOT NULL,
    dropped     TEXT NOT NULL
);
