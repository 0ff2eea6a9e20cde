-- Offline reads already logged, per user, device and read id (I3): a device whose upload's
-- answer was lost sends the same reads again, and each is logged once.
CREATE TABLE offline_reads_logged (
    user_id TEXT NOT NULL,
    device  TEXT NOT NULL,
    id      TEXT NOT NULL,
    PRIMARY KEY (user_id, device, id)
);
