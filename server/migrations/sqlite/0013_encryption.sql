-- Encryption at rest (I6): the proof of a destruction names the data key destroyed with the
-- dossier. The keys themselves are not in this file: SQLite's key store is its own file,
-- regie-keys.sqlite3 beside this one (server/src/storage/keys.rs), so that a copy of this file
-- is a backup without keys.
ALTER TABLE destructions ADD COLUMN key_id TEXT;
