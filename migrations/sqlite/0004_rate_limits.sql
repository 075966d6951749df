-- Token buckets of the rate limits (newOrder per account and per registered
-- domain). A bucket holds `tokens` as of `updated_at` (unix seconds) and
-- refills with time; `full_at` is when it will be full again, after which
-- the row says no more than its absence would and may be deleted. Kept in
-- the database so that limits hold across restarts and across replicas
-- sharing it.
CREATE TABLE rate_limit_buckets (
    -- `account:<account id>` or `domain:<registered domain or IP address>`
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    full_at    INTEGER NOT NULL
);
CREATE INDEX rate_limit_buckets_by_full_at ON rate_limit_buckets(full_at);
