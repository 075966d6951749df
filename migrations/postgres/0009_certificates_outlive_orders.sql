-- Certificates outlive the orders that made them: retention (see
-- src/store/retention.rs) deletes orders long past their end and keeps every
-- certificate, so certificates.order_id stops being a foreign key. It stays
-- UNIQUE: one certificate per order is what refuses a second signing.
-- (SQLite rebuilds the table; PostgreSQL drops the constraint.)
ALTER TABLE certificates DROP CONSTRAINT certificates_order_id_fkey;

-- Retention finds orders past their end, and authorizations no order uses.
CREATE INDEX orders_by_expiry ON orders(expires_at);
CREATE INDEX authorizations_by_expiry ON authorizations(expires_at);
