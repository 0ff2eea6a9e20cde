-- Resident rights (AVG art. 12-22; SPEC R19-R22): one register of requests, each with its
-- subject, dossier, the date it was received, its deadline (dates are ISO `YYYY-MM-DD` on the
-- Europe/Amsterdam calendar, instants RFC 3339 UTC; computed in Rust, never in SQL), an
-- extension with its reason and the day the resident was told, and the decision with its
-- reasons; and the escalations of a refusal (R22), one per level. No foreign key to `dossiers`:
-- the register outlives a dossier destroyed at the end of its retention (R23), as proof that
-- its requests were answered.

CREATE TABLE rights_requests (
    id                 TEXT PRIMARY KEY,
    dossier            TEXT NOT NULL,
    team               TEXT NOT NULL,
    subject            TEXT NOT NULL,
    kind               TEXT NOT NULL,
    details            TEXT NOT NULL,
    filed_by           TEXT NOT NULL,
    filed_role         TEXT NOT NULL,
    filed_at           TEXT NOT NULL,
    received_on        TEXT NOT NULL,
    deadline           TEXT NOT NULL,
    extension_months   INTEGER,
    extension_reason   TEXT,
    extension_told_on  TEXT,
    extended_by        TEXT,
    verdict            TEXT,
    verdict_reasons    TEXT,
    decided_by         TEXT,
    decided_on         TEXT
);
CREATE INDEX rights_requests_dossier ON rights_requests (dossier);
CREATE INDEX rights_requests_team ON rights_requests (team);

CREATE TABLE rights_escalations (
    request      TEXT NOT NULL REFERENCES rights_requests (id),
    level        TEXT NOT NULL,
    grounds      TEXT NOT NULL,
    escalated_by TEXT NOT NULL,
    escalated_on TEXT NOT NULL,
    deadline     TEXT NOT NULL,
    verdict      TEXT,
    reasons      TEXT,
    decided_by   TEXT,
    decided_on   TEXT,
    PRIMARY KEY (request, level)
);

-- The data-breach register (R24; AVG art. 33/34), kept by the privacy officer: what happened,
-- when it was discovered (the 72-hour clock to notify the authority runs from then), where it
-- was found (an audit-log row, a lost device, or otherwise), which dossiers and persons (ids,
-- JSON lists), the risk, the measures, and the notification and the decision on informing the
-- residents.
CREATE TABLE breaches (
    id                    TEXT PRIMARY KEY,
    what                  TEXT NOT NULL,
    discovered_at         TEXT NOT NULL,
    recorded_at           TEXT NOT NULL,
    recorded_by           TEXT NOT NULL,
    source                TEXT NOT NULL,
    audit_seq             INTEGER,
    device_user           TEXT,
    device                TEXT,
    dossiers              TEXT NOT NULL,
    persons               TEXT NOT NULL,
    risk                  TEXT NOT NULL,
    measures              TEXT NOT NULL,
    notify_by             TEXT NOT NULL,
    authority_notified_at TEXT,
    inform_residents      INTEGER,
    residents_reason      TEXT
);

-- Devices reported lost (R24, R29): a user's client storage that may never sync again.
CREATE TABLE revoked_devices (
    user_id    TEXT NOT NULL,
    storage_id TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    breach     TEXT NOT NULL REFERENCES breaches (id),
    PRIMARY KEY (user_id, storage_id)
);

-- Restrictions of processing (R21, AVG art. 18) granted on a request: while `lifted_at` is NULL
-- the policy refuses every share of the person's data.
CREATE TABLE restrictions (
    dossier   TEXT NOT NULL,
    person    TEXT NOT NULL,
    request   TEXT NOT NULL,
    since     TEXT NOT NULL,
    lifted_at TEXT,
    PRIMARY KEY (dossier, person)
);
