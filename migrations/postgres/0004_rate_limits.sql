-- Token buckets of the rate limits; see migrations/sqlite/0004_rate_limits.sql.
-- Shared by every replica on this database, so a limit holds across them.
CREATE TABLE rate_limit_buckets (
    -- `account:<account id>` or `domain:<registered domain or IP address>`
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    full_at    BIGINT NOT NULL
);
CREATE INDEX rate_limit_buckets_by_full_at ON rate_limit_buckets(full_at);
