-- Certificates outlive the orders that made them: retention (see
-- src/store/retention.rs) deletes orders long past their end and keeps every
-- certificate, so certificates.order_id stops being a foreign key. It stays
-- UNIQUE: one certificate per order is what refuses a second signing.
--
-- SQLite cannot drop a constraint, so the table is rebuilt. Migrations run in
-- a transaction, where `foreign_keys` cannot be turned off; deferring the
-- checks to the commit instead lets orders.replaces point at a certificate
-- while its row is between the old table and the new one.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE certificates_before_0009 AS SELECT * FROM certificates;
DROP TABLE certificates;

CREATE TABLE certificates (
    id               TEXT PRIMARY KEY,
    -- The order that made it; the order may since have been pruned.
    order_id         TEXT NOT NULL UNIQUE,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    profile          TEXT NOT NULL,
    serial           TEXT NOT NULL UNIQUE,
    names            TEXT NOT NULL,
    -- Leaf then issuing chain, PEM, exactly as served for download.
    chain_pem        TEXT NOT NULL,
    not_before       INTEGER NOT NULL,
    not_after        INTEGER NOT NULL,
    revoked_at       INTEGER,
    revocation_reason INTEGER,
    created_at       INTEGER NOT NULL
);
INSERT INTO certificates (id, order_id, account_id, profile, serial, names, chain_pem,
                          not_before, not_after, revoked_at, revocation_reason, created_at)
    SELECT id, order_id, account_id, profile, serial, names, chain_pem,
           not_before, not_after, revoked_at, revocation_reason, created_at
    FROM certificates_before_0009;
DROP TABLE certificates_before_0009;
CREATE INDEX certificates_by_not_after ON certificates(not_after);

-- Retention finds orders past their end, and authorizations no order uses.
CREATE INDEX orders_by_expiry ON orders(expires_at);
CREATE INDEX authorizations_by_expiry ON authorizations(expires_at);
