-- When certgate last asked its CA to sign an order's CSR and has not yet
-- heard the outcome. Set before the request goes out and cleared when the
-- CA answers "not signed"; an order still marked after a crash or a lost
-- answer may have a certificate at the CA, so it is never sent again.
ALTER TABLE orders ADD COLUMN sign_attempted_at INTEGER;
