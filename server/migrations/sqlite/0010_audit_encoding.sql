-- Which encoding each audit row's hash was computed over (see server/src/audit.rs). Rows
-- written before this column existed were hashed over serde_json (1); new rows are written
-- with length-prefixed fields behind a version tag (2). The encoding is part of what V2 hashes,
-- and a chain never goes back from 2 to 1, so this column cannot be used to downgrade a row.
ALTER TABLE audit ADD COLUMN encoding INTEGER NOT NULL DEFAULT 1;
