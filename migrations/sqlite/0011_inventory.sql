-- The whole PKI's inventory, not only what certgate issued through ACME.

-- Certificates found at a Vault PKI mount the inventory sync lists
-- (LIST <mount>/certs): those Vault Agent templates and operators made
-- there directly, and the mount's own CA certificates. Keyed by mount and
-- serial, so each is read from Vault once; the sync leaves out the
-- certificates certgate issued itself, which are in `certificates`.
CREATE TABLE vault_certificates (
    mount            TEXT NOT NULL,
    -- Lower-case hex without separators or DER's leading zero byte, as
    -- certificates.serial.
    serial           TEXT NOT NULL,
    -- The role that signed it, when known (Vault does not say it for
    -- every certificate).
    role             TEXT,
    -- JSON array: the DNS names and IP addresses, common name first.
    names            TEXT NOT NULL,
    -- The certificate, PEM.
    chain_pem        TEXT NOT NULL,
    not_before       INTEGER NOT NULL,
    not_after        INTEGER NOT NULL,
    revoked_at       INTEGER,
    -- SHA-256 of the SubjectPublicKeyInfo, hex: what links a certificate
    -- to the order whose answer from Vault was lost.
    public_key_sha256 TEXT NOT NULL,
    -- 1 for a CA certificate, which the inventory does not list.
    is_ca            INTEGER NOT NULL DEFAULT 0,
    -- Set when this is the certificate of an ACME order whose answer was
    -- lost: the order, its account and profile.
    order_id         TEXT,
    account_id       TEXT,
    profile          TEXT,
    -- The serial of a newer certificate of this mount for the same names.
    superseded_by    TEXT,
    synced_at        INTEGER NOT NULL,
    PRIMARY KEY (mount, serial)
);
CREATE INDEX vault_certificates_by_not_after ON vault_certificates(not_after);
CREATE INDEX vault_certificates_by_names ON vault_certificates(names);

-- The id of a newer certificate of the same account for the same names,
-- or of the one whose order said it replaces this (RFC 9773): a
-- superseded certificate is not overdue and not counted as expiring.
ALTER TABLE certificates ADD COLUMN superseded_by TEXT;
CREATE INDEX certificates_by_names ON certificates(names);

-- The certificates issued before this migration: a newer one of the same
-- account for the same names, or the one an order replaced.
UPDATE certificates SET superseded_by = (
    SELECT n.id FROM certificates n
    WHERE n.account_id = certificates.account_id AND n.names = certificates.names
      AND n.not_before > certificates.not_before
    ORDER BY n.not_before DESC LIMIT 1)
WHERE EXISTS (SELECT 1 FROM certificates n
              WHERE n.account_id = certificates.account_id AND n.names = certificates.names
                AND n.not_before > certificates.not_before);
UPDATE certificates SET superseded_by = (
    SELECT n.id FROM orders o JOIN certificates n ON n.order_id = o.id
    WHERE o.replaces = certificates.id LIMIT 1)
WHERE superseded_by IS NULL
  AND EXISTS (SELECT 1 FROM orders o JOIN certificates n ON n.order_id = o.id
              WHERE o.replaces = certificates.id);
