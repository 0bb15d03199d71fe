//! Reading a project's flake.lock: which revision each input is pinned to, and what an update
//! moved.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// One of the flake's own inputs as flake.lock locks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The commit, for git and GitHub inputs.
    pub rev: Option<String>,
    /// Seconds since 1970 of that commit (or of the tree, for path inputs).
    pub last_modified: Option<u64>,
    /// What it is when it has no commit: `path:/src/nixpkgs`, or its narHash.
    pub other: String,
    /// The whole `locked` attribute set, keys sorted, for comparisons.
    pub json: String,
}

impl fmt::Display for Locked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rev {
            Some(rev) => f.write_str(&rev[..rev.len().min(7)])?,
            None => f.write_str(&self.other)?,
        }
        if let Some(t) = self.last_modified.filter(|t| *t > 0) {
            write!(f, " ({})", utc_date(t))?;
        }
        Ok(())
    }
}

/// The inputs the flake itself names (the root node's), each as locked; an input that follows
/// another is left out.
pub fn parse(text: &str) -> Result<BTreeMap<String, Locked>> {
    let v: Value = serde_json::from_str(text).context("flake.lock is not valid JSON")?;
    let nodes = v.get("nodes").context("flake.lock has no `nodes`")?;
    let root = v.get("root").and_then(Value::as_str).unwrap_or("root");
    let inputs = nodes
        .get(root)
        .and_then(|r| r.get("inputs"))
        .and_then(Value::as_object)
        .context("flake.lock's root node has no inputs")?;
    let mut out = BTreeMap::new();
    for (name, target) in inputs {
        let Some(node) = target.as_str().and_then(|n| nodes.get(n)) else {
            continue;
        };
        let Some(locked) = node.get("locked") else {
            continue;
        };
        let text_of = |k: &str| locked.get(k).and_then(Value::as_str).map(str::to_string);
        let other = match (text_of("type").as_deref(), text_of("path")) {
            (Some(t), Some(p)) => format!("{t}:{p}"),
            _ => text_of("narHash").unwrap_or_else(|| "?".into()),
        };
        out.insert(
            name.clone(),
            Locked {
                rev: text_of("rev"),
                last_modified: locked.get("lastModified").and_then(Value::as_u64),
                other,
                json: serde_json::to_string(locked).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// The inputs of the flake.lock in `flake_dir`; none when there is no flake.lock.
pub fn read(flake_dir: &Path) -> Result<BTreeMap<String, Locked>> {
    let path = flake_dir.join("flake.lock");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).with_context(|| format!("cannot read {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// What happened to one input between two locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String, Locked),
    Moved(String, Locked, Locked),
    Unchanged(String, Locked),
    Removed(String, Locked),
}

/// Every input of `before` and `after`, by name.
pub fn changes(before: &BTreeMap<String, Locked>, after: &BTreeMap<String, Locked>) -> Vec<Change> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| match (before.get(n), after.get(n)) {
            (Some(b), Some(a)) if a.json == b.json => Change::Unchanged(n.clone(), a.clone()),
            (Some(b), Some(a)) => Change::Moved(n.clone(), b.clone(), a.clone()),
            (None, Some(a)) => Change::Added(n.clone(), a.clone()),
            (Some(b), None) => Change::Removed(n.clone(), b.clone()),
            (None, None) => unreachable!("the name comes from one of the maps"),
        })
        .collect()
}

/// `YYYY-MM-DD` (UTC) of a time in seconds since 1970.
pub fn utc_date(secs: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1785747939), "2026-08-03");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
    }

    #[test]
    fn the_generated_lock_reads_back_and_changes_are_named() {
        let lock = crate::render::flake_lock(&crate::render::pins().unwrap());
        let before = parse(&lock).unwrap();
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            ["crane", "nixpkgs", "rust-overlay"]
        );
        assert_eq!(before["nixpkgs"].to_string(), "104240a (2026-08-03)");
        let moved = lock.replace(
            "104240a772428cc2e20d8fd86c9ddbb886bbaff2",
            "5d3a2b1772428cc2e20d8fd86c9ddbb886bbaff2",
        );
        let after = parse(&moved).unwrap();
        let c = changes(&before, &after);
        assert_eq!(c.len(), 3);
        assert!(matches!(&c[0], Change::Unchanged(n, _) if n == "crane"));
        match &c[1] {
            Change::Moved(n, b, a) => {
                assert_eq!(n, "nixpkgs");
                assert_eq!(b.rev.as_deref().map(|r| &r[..7]), Some("104240a"));
                assert_eq!(a.to_string(), "5d3a2b1 (2026-08-03)");
            }
            other => panic!("{other:?}"),
        }
    }
}
