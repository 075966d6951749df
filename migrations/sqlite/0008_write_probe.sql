-- One row that readiness rewrites to prove the database still takes writes
-- (a full disk or a read-only file answers reads but refuses every write).
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
