-- The audit log (see src/audit.rs): one row per event, `record` holding the
-- same JSON line that goes to the audit file. Append-only: the triggers
-- refuse every UPDATE and DELETE, so a row once written stays as written
-- (only dropping the table, which no code of certgate does, removes rows).
CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Unix seconds (UTC), the line's `time`.
    at     INTEGER NOT NULL,
    -- The line's `event`, e.g. `certificate_issued`.
    event  TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX audit_events_by_event ON audit_events(event, at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
