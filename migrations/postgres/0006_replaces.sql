-- RFC 9773: the certificate (by id) an order says it replaces.
ALTER TABLE orders ADD COLUMN replaces TEXT REFERENCES certificates(id);
CREATE INDEX orders_by_replaces ON orders(replaces);
-- Finding an account's valid authorizations for reuse.
CREATE INDEX authorizations_by_account_identifier
    ON authorizations(account_id, identifier_type, identifier_value);
