-- One row that readiness rewrites to prove the database still takes writes.
CREATE TABLE write_probe (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    at BIGINT NOT NULL
);
