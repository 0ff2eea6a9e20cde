-- SQLite's 0014_rights_decided.sql (where each column is explained) in PostgreSQL's types.
ALTER TABLE rights_requests ADD COLUMN refusal_ground TEXT COLLATE "C";
ALTER TABLE rights_requests ADD COLUMN outcome TEXT COLLATE "C";
ALTER TABLE rights_requests ADD COLUMN weighing TEXT COLLATE "C";
ALTER TABLE rights_requests ADD COLUMN carried_out TEXT COLLATE "C";

CREATE TABLE contributions (
    dossier       TEXT COLLATE "C" NOT NULL REFERENCES dossiers (id),
    entry         TEXT COLLATE "C" NOT NULL,
    contributor   TEXT COLLATE "C" NOT NULL,
    conference_on TEXT COLLATE "C" NOT NULL,
    recorded_by   TEXT COLLATE "C" NOT NULL,
    recorded_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (dossier, entry)
);

CREATE TABLE contribution_agreements (
    dossier     TEXT COLLATE "C" NOT NULL REFERENCES dossiers (id),
    entry       TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NOT NULL,
    agreed_on   TEXT COLLATE "C" NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (dossier, entry, recipient)
);
