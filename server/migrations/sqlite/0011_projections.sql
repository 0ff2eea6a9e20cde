-- Which state of `record` each resident view reflects (I8). A record batch commits before the
-- views derived from it are written; a view whose record moved on since (the server stopped in
-- between) is projected again when the server starts. A view without a row reflects nothing yet.
CREATE TABLE view_projections (
    view TEXT PRIMARY KEY,
    record_seq INTEGER NOT NULL
);
