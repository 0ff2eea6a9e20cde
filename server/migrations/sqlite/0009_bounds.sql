-- Bounded cost (I7). Reports read the audit log by time in bounded pages: an index on the
-- instant as SQLite compares it (julianday, to the millisecond) finds a month's rows and orders
-- them without reading the whole log. The text of `at` cannot serve: RFC 3339 with a varying
-- number of fraction digits does not sort by time within a second.
CREATE INDEX audit_by_time ON audit (julianday(at));
-- The same per action (a report asks for refusals, break-glass events, reads on a grant) and per
-- dossier (a resident's access log), so a page is a seek in either and a month's count reads
-- the index alone. The per-dossier one serves every lookup of the old index on `dossier`.
CREATE INDEX audit_by_action_time ON audit (action, julianday(at));
CREATE INDEX audit_by_dossier_time ON audit (dossier, julianday(at));
DROP INDEX audit_by_dossier;

-- Quarantine is bounded per device and per dossier: beyond the cap a rejection is still
-- recorded (reason, path, hashes, time, size) but its bytes are not kept (`kept` = 0, `changes`
-- empty). `size` is the size of the batch as received; `dossier` is kept with the row because a
-- replaced or destroyed document no longer says which dossier it belonged to.
ALTER TABLE quarantine ADD COLUMN dossier TEXT;
ALTER TABLE quarantine ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE quarantine ADD COLUMN kept INTEGER NOT NULL DEFAULT 1;
UPDATE quarantine
SET size = length(changes),
    dossier = (SELECT documents.dossier FROM documents WHERE documents.id = quarantine.document);
CREATE INDEX quarantine_kept_by_device ON quarantine (user_id, device) WHERE kept = 1;
CREATE INDEX quarantine_kept_by_dossier ON quarantine (dossier) WHERE kept = 1;
