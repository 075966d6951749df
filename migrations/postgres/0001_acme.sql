-- The ACME resources of RFC 8555, as migrations/sqlite/0001_acme.sql has
-- them. Kept in step with the SQLite migrations, version for version:
-- every integer is BIGINT (so one Rust type reads both), every blob BYTEA,
-- booleans are 0 or 1 as SQLite stores them. Times are unix seconds (UTC);
-- ids are random url-safe strings; JSON columns hold what the wire format
-- already defines (JWK, contact list, identifiers, problem documents).

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    -- RFC 7638 thumbprint of the account key: the lookup for newAccount and
    -- the guarantee that one key belongs to one account.
    key_thumbprint   TEXT NOT NULL UNIQUE,
    jwk              TEXT NOT NULL,
    contact          TEXT NOT NULL DEFAULT '[]',
    tos_agreed       BIGINT,
    status           TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    created_at       BIGINT NOT NULL
);

CREATE TABLE orders (
    -- SQLite's implicit rowid, made explicit: the order orders were
    -- created in, which an account's order list follows.
    rowid            BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    profile          TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    identifiers      TEXT NOT NULL,
    expires_at       BIGINT NOT NULL,
    -- The CSR (DER) accepted at finalize; kept so an interrupted issuance can resume.
    csr              BYTEA,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX orders_by_account ON orders(account_id, created_at);
CREATE INDEX orders_by_status ON orders(status);

CREATE TABLE authorizations (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    identifier_type  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    wildcard         BIGINT NOT NULL DEFAULT 0,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);

-- An order needs one authorization per identifier; an authorization may later
-- serve several orders (reuse), hence the link table.
CREATE TABLE order_authorizations (
    order_id         TEXT NOT NULL REFERENCES orders(id),
    authorization_id TEXT NOT NULL REFERENCES authorizations(id),
    position         BIGINT NOT NULL,
    PRIMARY KEY (order_id, authorization_id)
);
CREATE INDEX order_authorizations_by_authz ON order_authorizations(authorization_id);

CREATE TABLE challenges (
    id               TEXT PRIMARY KEY,
    authorization_id TEXT NOT NULL REFERENCES authorizations(id),
    type             TEXT NOT NULL,
    token            TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at     BIGINT,
    error            TEXT,
    position         BIGINT NOT NULL
);
CREATE INDEX challenges_by_authz ON challenges(authorization_id);
CREATE INDEX challenges_by_status ON challenges(status);

CREATE TABLE certificates (
    id               TEXT PRIMARY KEY,
    -- One certificate per order: the database refuses a second issuance.
    order_id         TEXT NOT NULL UNIQUE REFERENCES orders(id),
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    profile          TEXT NOT NULL,
    serial           TEXT NOT NULL UNIQUE,
    names            TEXT NOT NULL,
    -- Leaf then issuing chain, PEM, exactly as served for download.
    chain_pem        TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    revoked_at       BIGINT,
    revocation_reason BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX certificates_by_not_after ON certificates(not_after);
