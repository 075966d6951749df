-- External account binding keys (RFC 8555 §7.3.4), made by `certgate eab
-- create`; see migrations/sqlite/0003_eab.sql. The HMAC key is stored only
-- encrypted under the key-encryption key in <data-dir>/eab.key.
CREATE TABLE eab_keys (
    kid              TEXT PRIMARY KEY,
    profile          TEXT NOT NULL,
    key_ciphertext   BYTEA NOT NULL,
    key_nonce        BYTEA NOT NULL,
    names            TEXT,
    note             TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    revoked_at       BIGINT,
    -- The account the key is bound to: a key binds one account, ever.
    account_id       TEXT UNIQUE REFERENCES accounts(id),
    bound_at         BIGINT
);
CREATE INDEX eab_keys_by_created ON eab_keys(created_at);
