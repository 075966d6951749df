-- What every newOrder reads: how many authorizations of the account are
-- pending and not expired. The index on the account's identifiers found
-- them only by reading each of the account's authorizations, a cost that
-- grew with everything the account ever ordered.
CREATE INDEX authorizations_pending_by_account
    ON authorizations(account_id, expires_at) WHERE status = 'pending';
