//! certgate command line (being built).
fn main() {}
