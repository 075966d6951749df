//! The admin HTTP API (`/admin/v1/...`), on its own listener, off unless
//! configured, every request carrying the bearer token from a file.
