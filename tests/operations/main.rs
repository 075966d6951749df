//! What an operator sees and runs: metrics, inventory commands, the admin
//! API, the audit log, the status page, the deploy files and docs, and the
//! load client of docs/performance.md.

mod admin_api;
mod architecture;
mod audit;
mod bench;
mod ca_health;
mod db_copy;
mod deploy_files;
mod file_modes;
mod first_contact;
mod inventory;
mod metrics;
mod status_page;
