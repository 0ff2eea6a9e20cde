-- The change feed of several instances on one database (issue 17) exists on PostgreSQL only
-- (see postgres/0016_change_feed.sql): a SQLite file has one writer, one instance. This
-- migration keeps the two directories' numbering alike and changes nothing.
SELECT 1;
