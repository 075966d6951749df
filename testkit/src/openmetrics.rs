//! A strict reader of the OpenMetrics text format (what `/metrics` serves
//! and Prometheus scrapes): it refuses any line, name, label, value or
//! family layout the specification does not allow, so a test that parses a
//! scrape also proves it well-formed, and then answers questions about the
//! samples.

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A metric family: its metadata and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: String,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

/// A whole exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition {
    pub families: Vec<Family>,
}

const KINDS: [&str; 8] = [
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "stateset",
    "info",
    "summary",
    "unknown",
];

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The suffixes a sample of a family of `kind` may add to the family name.
fn sample_suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" | "gaugehistogram" => {
            &["_bucket", "_count", "_sum", "_created", "_gcount", "_gsum"]
        }
        "summary" => &["", "_count", "_sum", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

/// A number as OpenMetrics writes it, infinities and NaN included.
fn parse_number(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if text
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) =>
        {
            text.parse().map_err(|e| format!("value {text:?}: {e}"))
        }
        _ => Err(format!("value {text:?} is not a number")),
    }
}

/// `{a="1",b="x\"y"}` → the labels, and what follows the closing brace.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("labels must start with {")?;
    if let Some(after) = rest.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape in label {name}: {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err(format!("raw newline in label {name}")),
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated value of label {name}")),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} given twice"));
        }
        rest = &after[end + 1..];
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        rest = rest
            .strip_prefix(',')
            .ok_or_else(|| format!("expected , or }} after label {name}"))?;
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("sample without value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let rest = rest
        .strip_prefix(' ')
        .ok_or("expected one space before the value")?;
    let mut parts = rest.split(' ');
    let value = parse_number(parts.next().ok_or("no value")?)?;
    if let Some(timestamp) = parts.next() {
        parse_number(timestamp)?;
    }
    if parts.next().is_some() {
        return Err("text after the timestamp (exemplars are not expected here)".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Checks what the format demands of one family's samples beyond syntax:
/// names by kind, no repeated series, non-negative counters, cumulative
/// histogram buckets ending at `+Inf` equal to `_count`.
fn check_family(family: &Family) -> Result<(), String> {
    let mut series = HashSet::new();
    for sample in &family.samples {
        let suffix = sample
            .name
            .strip_prefix(family.name.as_str())
            .filter(|s| sample_suffixes(&family.kind).contains(s))
            .ok_or_else(|| {
                format!(
                    "sample {} does not belong to {} family {}",
                    sample.name, family.kind, family.name
                )
            })?;
        if !series.insert((sample.name.clone(), format!("{:?}", sample.labels))) {
            return Err(format!(
                "series {} {:?} repeated",
                sample.name, sample.labels
            ));
        }
        if family.kind == "counter" && (sample.value < 0.0 || sample.value.is_nan()) {
            return Err(format!("counter {} is {}", sample.name, sample.value));
        }
        if suffix == "_bucket" && !sample.labels.contains_key("le") {
            return Err(format!("bucket of {} without le", family.name));
        }
    }
    if family.kind == "histogram" {
        let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for sample in family
            .samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
        {
            let mut labels = sample.labels.clone();
            let le = parse_number(&labels.remove("le").unwrap_or_default())?;
            buckets
                .entry(format!("{labels:?}"))
                .or_default()
                .push((le, sample.value));
        }
        for (labels, series) in buckets {
            if !series
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            {
                return Err(format!(
                    "buckets of {} {labels} are not cumulative",
                    family.name
                ));
            }
            let (last_le, total) = *series.last().expect("a series has a bucket");
            let count = family
                .samples
                .iter()
                .find(|s| s.name.ends_with("_count") && format!("{:?}", s.labels) == labels)
                .map(|s| s.value);
            if last_le != f64::INFINITY || count != Some(total) {
                return Err(format!(
                    "{} {labels}: +Inf bucket and _count disagree",
                    family.name
                ));
            }
        }
    }
    Ok(())
}

/// Parses `text` strictly; the error names the offending line.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("the exposition must end with \"# EOF\\n\"")?;
    let mut families: Vec<Family> = Vec::new();
    let mut seen = BTreeSet::new();
    for (number, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", number + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let value = parts.next().unwrap_or("");
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let current = families
                .last_mut()
                .filter(|f| f.name == name && f.samples.is_empty());
            let family = match current {
                Some(family) => family,
                None if seen.insert(name.to_owned()) => {
                    families.push(Family {
                        name: name.to_owned(),
                        kind: "unknown".to_owned(),
                        unit: None,
                        samples: Vec::new(),
                    });
                    families.last_mut().expect("just pushed")
                }
                None => return Err(at("family interleaved or described twice".into())),
            };
            match keyword {
                "HELP" => {}
                "TYPE" if KINDS.contains(&value) => family.kind = value.to_owned(),
                "UNIT" if name.ends_with(&format!("_{value}")) => {
                    family.unit = Some(value.to_owned())
                }
                _ => return Err(at(format!("bad metadata line {keyword} {value:?}"))),
            }
        } else {
            let sample = parse_sample(line).map_err(at)?;
            let family = families
                .last_mut()
                .filter(|f| sample.name.starts_with(f.name.as_str()))
                .ok_or_else(|| at("sample outside its family".into()))?;
            family.samples.push(sample);
        }
    }
    for family in &families {
        check_family(family)?;
    }
    Ok(Exposition { families })
}

impl Exposition {
    /// Every sample of every family.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.iter().flat_map(|f| f.samples.iter())
    }

    /// The samples named `name` whose labels include all of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The value of the one sample named `name` with exactly `labels`;
    /// panics when there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels)
            .find(|s| s.labels.len() == labels.len())
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
            .value
    }

    /// The sum over the samples named `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// The names of every sample (`certgate_http_requests_total`,
    /// `certgate_issuance_duration_seconds_bucket`, …).
    pub fn sample_names(&self) -> BTreeSet<&str> {
        self.samples().map(|s| s.name.as_str()).collect()
    }

    /// The label names used anywhere.
    pub fn label_names(&self) -> BTreeSet<&str> {
        self.samples()
            .flat_map(|s| s.labels.keys().map(String::as_str))
            .collect()
    }
}

/// Scrapes `url` until a strictly parsed scrape has a sample named `name`
/// with `labels` (a background task's first result), for at most 10 s.
pub async fn scrape_until_present(
    https: &reqwest::Client,
    url: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> Exposition {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = https.get(url).send().await.unwrap().text().await.unwrap();
        let scrape = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        if scrape.matching(name, labels).next().is_some() {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {name} {labels:?} in {url} after 10 s:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
