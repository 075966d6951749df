//! Reading request fields the way Vault's framework does: lists as a JSON array
//! or a comma-separated string, durations as `"72h"` or a number of seconds,
//! booleans as JSON booleans or their string spelling.

use serde_json::{Map, Value};

use super::envelope::VaultError;

/// A request body, already parsed as a JSON object.
pub struct Fields(pub Map<String, Value>);

impl Fields {
    /// Parses a body; an empty body is an empty object, as with Vault.
    pub fn parse(body: &[u8]) -> Result<Self, VaultError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(VaultError::bad_request(
                "failed to parse JSON input: body is not an object",
            )),
            Err(e) => Err(VaultError::bad_request(format!(
                "failed to parse JSON input: {e}"
            ))),
        }
    }

    /// A string field; numbers are accepted and printed.
    pub fn string(&self, key: &str) -> Result<String, VaultError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(field_error(key, other)),
        }
    }

    pub fn boolean(&self, key: &str, default: bool) -> Result<bool, VaultError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" || s == "1" => Ok(true),
            Some(Value::String(s)) if s == "false" || s == "0" || s.is_empty() => Ok(false),
            Some(other) => Err(field_error(key, other)),
        }
    }

    /// A list field: `["a","b"]` or `"a,b"`; blanks are dropped.
    pub fn list(&self, key: &str) -> Result<Vec<String>, VaultError> {
        let items: Vec<String> = match self.0.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(field_error(key, other)),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(field_error(key, other)),
        };
        Ok(items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// A duration field in seconds; absent or empty is zero.
    pub fn duration(&self, key: &str) -> Result<u64, VaultError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| field_error(key, &n.clone().into())),
            Some(Value::String(s)) => parse_duration(s).ok_or_else(|| {
                VaultError::bad_request(format!(
                    "error converting input {s} for field \"{key}\": time: invalid duration \"{s}\""
                ))
            }),
            Some(other) => Err(field_error(key, other)),
        }
    }
}

fn field_error(key: &str, value: &Value) -> VaultError {
    VaultError::bad_request(format!(
        "error converting input {value} for field \"{key}\""
    ))
}

/// Parses `"90"`, `"90s"`, `"1h30m"`, `"72h"` or `"7d"` into seconds, like
/// Vault's `parseutil.ParseDurationSecond`.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(secs);
    }
    let mut total = 0u64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let amount: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return None,
        };
        total = total.checked_add(amount.checked_mul(unit)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Prints seconds the way Go's `time.Duration.String` does (`"2160h0m0s"`,
/// `"1m30s"`, `"30s"`), because Vault's TTL warnings quote that text.
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}
