//! What certgate keeps when things go wrong: clients that hang up
//! mid-request, a full disk, a read-only database, SIGKILL, a second server
//! on the same data dir, a Vault that is sealed or unreachable, connections
//! held open by one client. Each test
//! checks what clients were told against what is stored: nothing lost,
//! nothing signed twice, and work that resumes on its own when the fault
//! clears.

mod common;
mod connections;
mod disk_faults;
mod postgres;
mod replicas;
mod retention;
mod serve_lock;
mod sigkill;
mod storm;
mod validation_flood;
mod vault_outage;
