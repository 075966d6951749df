//! What certgate keeps when things go wrong: clients that hang up mid-request,
//! a full disk, a read-only database, SIGKILL. Each test runs the built
//! binary on a real SQLite file and checks what the clients were told
//! against what is stored.

mod common;
mod disk_faults;
mod sigkill;
mod storm;
