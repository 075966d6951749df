//! Small pieces every layer uses and none owns: the clock, resource ids,
//! backoff between retries, and secrets that never print.

pub mod backoff;
pub mod clock;
pub mod data_dir;
pub mod ids;
pub mod secret;
pub mod serve_lock;
