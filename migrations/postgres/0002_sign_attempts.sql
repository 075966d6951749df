-- When certgate last asked its CA to sign an order's CSR and has not yet
-- heard the outcome (see migrations/sqlite/0002_sign_attempts.sql).
ALTER TABLE orders ADD COLUMN sign_attempted_at BIGINT;
