-- Encryption at rest (I6): SQLite's 0013_encryption.sql (the proof of a destruction names the
-- data key destroyed with the dossier), and the key store. On PostgreSQL the key store is the
-- schema `regie_keys`, apart from the data in `public`: a backup of the data leaves it out
-- (`pg_dump --exclude-schema=regie_keys`) and the keys are backed up on their own rule
-- (DEPLOYMENT.md). Each row is one dossier's data key, wrapped (AES-256-GCM) by the
-- key-encryption key `kek_id` names, which is never stored; a destroyed key keeps its id and
-- time, its wrapped bytes are gone.
ALTER TABLE destructions ADD COLUMN key_id TEXT COLLATE "C";

CREATE SCHEMA regie_keys;

CREATE TABLE regie_keys.data_keys (
    dossier      TEXT COLLATE "C" PRIMARY KEY,
    key_id       TEXT COLLATE "C" NOT NULL UNIQUE,
    wrapped      BYTEA,
    kek_id       TEXT COLLATE "C" NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    destroyed_at TEXT COLLATE "C"
);

-- Device keys (R29): one per user and device (client storage id), released to the device after
-- authentication and kept here wrapped; destroyed when the device is reported lost, and never
-- released again.
CREATE TABLE regie_keys.device_keys (
    user_id      TEXT COLLATE "C" NOT NULL,
    storage_id   TEXT COLLATE "C" NOT NULL,
    key_id       TEXT COLLATE "C" NOT NULL UNIQUE,
    wrapped      BYTEA,
    kek_id       TEXT COLLATE "C" NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    destroyed_at TEXT COLLATE "C",
    PRIMARY KEY (user_id, storage_id)
);
