-- Whether the server listed the dossier as closed (R18): the device then refuses edits itself.
ALTER TABLE documents ADD COLUMN closed INTEGER NOT NULL DEFAULT 0;
