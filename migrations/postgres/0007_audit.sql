-- The audit log (see src/audit.rs): one row per event, `record` holding the
-- same JSON line that goes to the audit file. Append-only: the triggers
-- refuse every UPDATE, DELETE and TRUNCATE, so a row once written stays as
-- written (only dropping the table, which no code of certgate does, removes
-- rows).
CREATE TABLE audit_events (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unix seconds (UTC), the line's `time`.
    at     BIGINT NOT NULL,
    -- The line's `event`, e.g. `certificate_issued`.
    event  TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX audit_events_by_event ON audit_events(event, at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
