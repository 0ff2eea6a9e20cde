-- Signals (R11): a first contact recorded without a name, owned by one team in one district. A
-- signal stays `open` until it is `closed` without a dossier (with the reason) or becomes a
-- `dossier` on the resident's agreement to registration by name (`agreed_on`). `closed_at` and
-- `closed_by` say when and by whom it was settled either way. The summary describes the signal
-- without the person's name. `dossier` has no foreign key: erasing a dossier (I6) must not be
-- blocked by the trace of the signal it came from.

CREATE TABLE signals (
    id            TEXT PRIMARY KEY,
    district      TEXT NOT NULL,
    team          TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    summary       TEXT NOT NULL,
    source        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'dossier')),
    reason        TEXT,
    closed_at     TEXT,
    closed_by     TEXT,
    dossier       TEXT,
    agreed_on     TEXT,
    CHECK ((status = 'open') = (closed_at IS NULL)),
    CHECK ((status = 'dossier') = (dossier IS NOT NULL AND agreed_on IS NOT NULL))
);
CREATE INDEX signals_by_team ON signals (team, status, registered_at);
