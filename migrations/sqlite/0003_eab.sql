-- External account binding keys (RFC 8555 §7.3.4), made by `certgate eab
-- create`. The HMAC key is stored only encrypted (AES-256-GCM) under the
-- key-encryption key in <data-dir>/eab.key, with the kid and profile as
-- associated data, so a copy of this table alone yields no usable key.
CREATE TABLE eab_keys (
    -- Random, url-safe; what clients send as the binding's kid.
    kid              TEXT PRIMARY KEY,
    -- The profile whose newAccount accepts the key.
    profile          TEXT NOT NULL,
    key_ciphertext   BLOB NOT NULL,
    key_nonce        BLOB NOT NULL,
    -- JSON list of the name patterns the bound account may order, or NULL
    -- for no limit beyond the profile's own.
    names            TEXT,
    note             TEXT,
    created_at       INTEGER NOT NULL,
    -- After this a key can no longer bind an account.
    expires_at       INTEGER,
    revoked_at       INTEGER,
    -- The account the key is bound to: a key binds one account, ever.
    account_id       TEXT UNIQUE REFERENCES accounts(id),
    bound_at         INTEGER
);
CREATE INDEX eab_keys_by_created ON eab_keys(created_at);
