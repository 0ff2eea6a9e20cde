-- Sharing by decision (R17): approvals of weighings to share without consent are recorded by
-- the server, outside the CRDT, so nobody can approve their own weighing by editing `record`;
-- and open tasks such as "inform the resident" stay listed until done.

CREATE TABLE approvals (
    dossier     TEXT NOT NULL REFERENCES dossiers (id),
    weighing    TEXT NOT NULL,
    approver    TEXT NOT NULL,
    team        TEXT NOT NULL,
    approved_at TEXT NOT NULL,
    PRIMARY KEY (dossier, weighing)
);

CREATE TABLE tasks (
    id         INTEGER PRIMARY KEY,
    dossier    TEXT NOT NULL REFERENCES dossiers (id),
    kind       TEXT NOT NULL,
    about      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    done_at    TEXT,
    done_by    TEXT
);
CREATE INDEX tasks_by_dossier ON tasks (dossier);
