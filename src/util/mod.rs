//! Small pieces every layer uses and none owns: the clock, resource ids,
//! backoff between retries, secrets that never print, who may read a private
//! key file, the open-file limit, housekeeping's schedule, and certificate
//! fingerprints.

pub mod backoff;
pub mod clock;
pub mod data_dir;
pub mod fingerprint;
pub mod ids;
pub mod open_files;
pub mod owner;
pub mod periodic;
pub mod private_key;
pub mod secret;
pub mod serve_lock;
