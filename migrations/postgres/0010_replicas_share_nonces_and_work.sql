-- Several `certgate serve` processes on one database serve one ACME
-- service: a nonce one of them issued is good on every other, and the
-- background work one started is picked up by another when it dies.

-- Nonces (RFC 8555 §6.5) issued and not yet used. Kept here only with
-- PostgreSQL, where replicas share them; one SQLite database has one
-- server, which keeps its nonces in memory (the table exists to keep the
-- two sets of migrations in step). A nonce is deleted when it is used,
-- and expired ones are purged in batches by every replica.
CREATE TABLE nonces (
    nonce            TEXT PRIMARY KEY,
    issued_at        BIGINT NOT NULL
);
CREATE INDEX nonces_by_issued_at ON nonces(issued_at);

-- Who runs a `processing` challenge's validation or order's issuance, and
-- until when (unix seconds). Taken in the statement that makes the row
-- `processing`, renewed while the work runs, cleared with the transition
-- out of `processing`; a lease that ran out is claimed by another process.
-- NULL: nobody holds it (work from before leases existed is claimed at once).
ALTER TABLE challenges ADD COLUMN lease_owner TEXT;
ALTER TABLE challenges ADD COLUMN lease_until BIGINT;
ALTER TABLE orders ADD COLUMN lease_owner TEXT;
ALTER TABLE orders ADD COLUMN lease_until BIGINT;
