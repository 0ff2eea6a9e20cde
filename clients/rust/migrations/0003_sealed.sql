-- Encryption at rest (R29): dossier content is sealed with the device key the server releases
-- after each login (AES-256-GCM, the row's identity as associated data; src/seal.rs). The token
-- is no longer kept: it is what fetches the key, so a stored token would unlock a lost tablet.
-- A store from before this migration is sealed at its first unlock (store.rs, `seal_legacy`),
-- which then drops the legacy tables and empties the plaintext `server_heads` column.

-- The id of the device key that sealed the content; NULL until the first unlock (legacy rows
-- are then plaintext and get sealed).
ALTER TABLE profile ADD COLUMN sealed_by TEXT;
-- secure_delete (set on every connection) zeroes the token's old bytes in the page.
UPDATE profile SET token = NULL;
ALTER TABLE profile DROP COLUMN token;

-- The server's last known heads, sealed (replaces the plaintext `server_heads`).
ALTER TABLE documents ADD COLUMN heads BLOB;

ALTER TABLE audit_outbox RENAME TO legacy_audit_outbox;
ALTER TABLE rejections RENAME TO legacy_rejections;

-- Local opens of documents (I3) waiting for upload: the event sealed, by its random id.
CREATE TABLE reads (
    seq    INTEGER PRIMARY KEY,
    id     TEXT NOT NULL UNIQUE,
    sealed BLOB NOT NULL
);

-- Batches the server rejected (I2) and what the rebase did with them, sealed, by a random id.
CREATE TABLE rejection_reports (
    seq    INTEGER PRIMARY KEY,
    id     TEXT NOT NULL UNIQUE,
    sealed BLOB NOT NULL
);
