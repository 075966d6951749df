//! What certgate keeps when things go wrong: a second `certgate serve`
//! started on a data dir that one already serves, a start that fails on a
//! taken port, a server killed with SIGKILL mid-signing. Each test runs the
//! built binary on a real SQLite file, with the Vault stand-in as the CA
//! where a signing must be in flight, and checks what the clients were told
//! against what is stored.

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/vault/mod.rs"]
mod vault;

mod serve_lock;
