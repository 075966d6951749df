//! Machine-readable output shared by the listing commands (`certs list`,
//! `accounts list`, `eab list`), so each `--json` is printed the same way.

use anyhow::Context;

/// Prints `value` as pretty JSON on stdout, one document per command.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("encoding JSON")?;
    println!("{text}");
    Ok(())
}
