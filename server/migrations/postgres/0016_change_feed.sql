-- Several instances on one database (issue 17): the change feed. Every commit of document
-- changes writes one row per batch (`change`, with its dossier and document), every state
-- change around a dossier (relationships, closing, a document created or replaced, a
-- destruction) one row for the dossier (`dossier`), and a device reported lost one row
-- (`devices`), in the same transaction, after taking the audit chain's advisory lock, so `seq`
-- grows in commit order. After commit `pg_notify('regie_feed', <origin>)` wakes the other
-- instances, which read the rows after the last `seq` they applied (also after their listener
-- reconnects: notifications sent while it was away are lost). The sweep deletes rows older than
-- a day; an instance that finds rows it never read deleted loads everything again. Ids only, never content; no
-- foreign keys, since a destroyed dossier's entry must outlive its rows.

CREATE TABLE change_feed (
    seq      BIGSERIAL PRIMARY KEY,
    kind     TEXT COLLATE "C" NOT NULL CHECK (kind IN ('change', 'dossier', 'devices')),
    dossier  TEXT COLLATE "C",
    document TEXT COLLATE "C",
    origin   TEXT COLLATE "C" NOT NULL,
    at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX change_feed_dossier ON change_feed (dossier, seq) WHERE kind = 'dossier';
