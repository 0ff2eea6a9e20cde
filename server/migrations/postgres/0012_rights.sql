-- The rights registers on PostgreSQL: SQLite's 0012_rights.sql (where each table is explained)
-- in the types of 0011_schema.sql (TEXT in the "C" collation, BIGINT, BYTEA).

-- Resident rights (AVG art. 12-22; SPEC R19-R22): one register of requests, each with its
-- subject, dossier, the date it was received, its deadline (dates are ISO `YYYY-MM-DD` on the
-- Europe/Amsterdam calendar, instants RFC 3339 UTC; computed in Rust, never in SQL), an
-- extension with its reason and the day the resident was told, and the decision with its
-- reasons; and the escalations of a refusal (R22), one per level. No foreign key to `dossiers`:
-- the register outlives a dossier destroyed at the end of its retention (R23), as proof that
-- its requests were answered.

CREATE TABLE rights_requests (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    dossier            TEXT COLLATE "C" NOT NULL,
    team               TEXT COLLATE "C" NOT NULL,
    subject            TEXT COLLATE "C" NOT NULL,
    kind               TEXT COLLATE "C" NOT NULL,
    details            TEXT COLLATE "C" NOT NULL,
    filed_by           TEXT COLLATE "C" NOT NULL,
    filed_role         TEXT COLLATE "C" NOT NULL,
    filed_at           TEXT COLLATE "C" NOT NULL,
    received_on        TEXT COLLATE "C" NOT NULL,
    deadline           TEXT COLLATE "C" NOT NULL,
    extension_months   BIGINT,
    extension_reason   TEXT COLLATE "C",
    extension_told_on  TEXT COLLATE "C",
    extended_by        TEXT COLLATE "C",
    verdict            TEXT COLLATE "C",
    verdict_reasons    TEXT COLLATE "C",
    decided_by         TEXT COLLATE "C",
    decided_on         TEXT COLLATE "C"
);
CREATE INDEX rights_requests_dossier ON rights_requests (dossier);
CREATE INDEX rights_requests_team ON rights_requests (team);

CREATE TABLE rights_escalations (
    request      TEXT COLLATE "C" NOT NULL REFERENCES rights_requests (id),
    level        TEXT COLLATE "C" NOT NULL,
    grounds      TEXT COLLATE "C" NOT NULL,
    escalated_by TEXT COLLATE "C" NOT NULL,
    escalated_on TEXT COLLATE "C" NOT NULL,
    deadline     TEXT COLLATE "C" NOT NULL,
    verdict      TEXT COLLATE "C",
    reasons      TEXT COLLATE "C",
    decided_by   TEXT COLLATE "C",
    decided_on   TEXT COLLATE "C",
    PRIMARY KEY (request, level)
);

-- The data-breach register (R24; AVG art. 33/34), kept by the privacy officer: what happened,
-- when it was discovered (the 72-hour clock to notify the authority runs from then), where it
-- was found (an audit-log row, a lost device, or otherwise), which dossiers and persons (ids,
-- JSON lists), the risk, the measures, and the notification and the decision on informing the
-- residents.
CREATE TABLE breaches (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    what                  TEXT COLLATE "C" NOT NULL,
    discovered_at         TEXT COLLATE "C" NOT NULL,
    recorded_at           TEXT COLLATE "C" NOT NULL,
    recorded_by           TEXT COLLATE "C" NOT NULL,
    source                TEXT COLLATE "C" NOT NULL,
    audit_seq             BIGINT,
    device_user           TEXT COLLATE "C",
    device                TEXT COLLATE "C",
    dossiers              TEXT COLLATE "C" NOT NULL,
    persons               TEXT COLLATE "C" NOT NULL,
    risk                  TEXT COLLATE "C" NOT NULL,
    measures              TEXT COLLATE "C" NOT NULL,
    notify_by             TEXT COLLATE "C" NOT NULL,
    authority_notified_at TEXT COLLATE "C",
    inform_residents      BIGINT,
    residents_reason      TEXT COLLATE "C"
);

-- Devices reported lost (R24, R29): a user's client storage that may never sync again.
CREATE TABLE revoked_devices (
    user_id    TEXT COLLATE "C" NOT NULL,
    storage_id TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C" NOT NULL,
    breach     TEXT COLLATE "C" NOT NULL REFERENCES breaches (id),
    PRIMARY KEY (user_id, storage_id)
);

-- Restrictions of processing (R21, AVG art. 18) granted on a request: while `lifted_at` is NULL
-- the policy refuses every share of the person's data.
CREATE TABLE restrictions (
    dossier   TEXT COLLATE "C" NOT NULL,
    person    TEXT COLLATE "C" NOT NULL,
    request   TEXT COLLATE "C" NOT NULL,
    since     TEXT COLLATE "C" NOT NULL,
    lifted_at TEXT COLLATE "C",
    PRIMARY KEY (dossier, person)
);
