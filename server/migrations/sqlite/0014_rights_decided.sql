-- What a decided rights request did (R20, R21) and case-conference contributions (R15).
-- `refusal_ground` is the legal reason of a refusal (`retention_duty`, `others_interest`, ...),
-- `outcome` a code with counts and never content (`erased_items entries=2 documents=3`,
-- `dossier_destroyed`, `rectified entries=1 documents=2`), `weighing` the recorded weighing of an
-- objection (AVG art. 21: the resident's situation against the compelling grounds), and
-- `carried_out` what was done once a refusal was overturned on escalation (R22), as `outcome`.
ALTER TABLE rights_requests ADD COLUMN refusal_ground TEXT;
ALTER TABLE rights_requests ADD COLUMN outcome TEXT;
ALTER TABLE rights_requests ADD COLUMN weighing TEXT;
ALTER TABLE rights_requests ADD COLUMN carried_out TEXT;

-- R15: a record entry brought into a case conference, with who brought it in; sharing it
-- onward needs that contributor's agreement for that recipient, which the policy reads from
-- `contribution_agreements` (in SQL, never in a document a worker could edit).
CREATE TABLE contributions (
    dossier       TEXT NOT NULL REFERENCES dossiers (id),
    entry         TEXT NOT NULL,
    contributor   TEXT NOT NULL,
    conference_on TEXT NOT NULL,
    recorded_by   TEXT NOT NULL,
    recorded_at   TEXT NOT NULL,
    PRIMARY KEY (dossier, entry)
);

CREATE TABLE contribution_agreements (
    dossier     TEXT NOT NULL REFERENCES dossiers (id),
    entry       TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    agreed_on   TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    PRIMARY KEY (dossier, entry, recipient)
);
