//! What an operator sees and runs: metrics, inventory commands, the admin
//! API, the audit log, the status page, and the deploy files and docs.

mod admin_api;
mod architecture;
mod audit;
mod db_copy;
mod deploy_files;
mod file_modes;
mod inventory;
mod metrics;
mod status_page;
