//! Known `nix build` failures and their fixes: a table of log patterns (`diagnoses.toml` at the
//! repository root, compiled in) matched against the log of a failed build.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use regex_lite::Regex;
use serde::Deserialize;

/// The table's text, as compiled into the binary.
pub const TABLE: &str = include_str!("../diagnoses.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    diagnosis: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    patterns: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    details: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    not_args: Vec<String>,
    problem: String,
    fix: Vec<String>,
}

/// One entry of the table, with its expressions compiled.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    patterns: Vec<Regex>,
    requires: Vec<Regex>,
    details: Vec<Regex>,
    /// Arguments the user must have given nix (after `--`) for the entry to apply.
    pub args: Vec<String>,
    /// Arguments the user must not have given.
    pub not_args: Vec<String>,
    pub problem: String,
    pub fix: Vec<String>,
}

/// A known failure found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub id: String,
    /// What went wrong, placeholders filled in.
    pub problem: String,
    /// What to do, one line each.
    pub fix: Vec<String>,
    /// The log line that matched.
    pub line: String,
    /// Placeholders that had no value (shown as `<name>`).
    pub missing: Vec<String>,
}

/// Parses and compiles a table.
pub fn parse(text: &str) -> Result<Vec<Entry>> {
    let file: File = toml::from_str(text).context("diagnoses.toml is invalid")?;
    file.diagnosis
        .into_iter()
        .map(|e| {
            let compile = |p: &String| {
                Regex::new(p).with_context(|| format!("diagnosis `{}`: bad pattern {p}", e.id))
            };
            Ok(Entry {
                patterns: e.patterns.iter().map(compile).collect::<Result<_>>()?,
                requires: e.requires.iter().map(compile).collect::<Result<_>>()?,
                details: e.details.iter().map(compile).collect::<Result<_>>()?,
                args: e.args,
                not_args: e.not_args,
                id: e.id,
                problem: e.problem,
                fix: e.fix,
            })
        })
        .collect()
}

/// The compiled-in table (compiled on first use: only failed builds need it).
pub fn table() -> &'static [Entry] {
    static TABLE_CELL: OnceLock<Vec<Entry>> = OnceLock::new();
    TABLE_CELL.get_or_init(|| parse(TABLE).expect("diagnoses.toml is checked by the unit tests"))
}

/// Every known failure in `log`, in table order, each once. `vars` fill placeholders that are
/// not captured from the log ({git_root}, {flake_dir}, {board}); `nix_args` among them, the
/// user's own nix arguments (words of a shell line), also decide the entries with `args`.
pub fn diagnose(log: &str, vars: &[(&str, &str)]) -> Vec<Diagnosis> {
    diagnose_with(table(), log, vars)
}

/// [`diagnose`] with a given table.
pub fn diagnose_with(table: &[Entry], log: &str, vars: &[(&str, &str)]) -> Vec<Diagnosis> {
    let given: Vec<&str> = vars
        .iter()
        .find(|(k, _)| *k == "nix_args")
        .map(|(_, v)| v.split_whitespace().collect())
        .unwrap_or_default();
    let mut found = Vec::new();
    for entry in table {
        if !entry.args.iter().all(|a| given.contains(&a.as_str()))
            || entry.not_args.iter().any(|a| given.contains(&a.as_str()))
        {
            continue;
        }
        let hit = log.lines().find_map(|line| {
            entry
                .patterns
                .iter()
                .find_map(|re| re.captures(line).map(|c| (line, c, re)))
        });
        let Some((line, caps, re)) = hit else {
            continue;
        };
        if !entry
            .requires
            .iter()
            .all(|r| log.lines().any(|l| r.is_match(l)))
        {
            continue;
        }
        let mut values: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        add_captures(&mut values, re, &caps);
        for d in &entry.details {
            if let Some(c) = log.lines().find_map(|l| d.captures(l)) {
                add_captures(&mut values, d, &c);
            }
        }
        let mut missing = Vec::new();
        let problem = fill(&entry.problem, &values, &mut missing);
        let fix = entry
            .fix
            .iter()
            .map(|f| fill(f, &values, &mut missing))
            .collect();
        missing.sort();
        missing.dedup();
        found.push(Diagnosis {
            id: entry.id.clone(),
            problem,
            fix,
            line: line.trim().to_string(),
            missing,
        });
    }
    found
}

fn add_captures(values: &mut BTreeMap<String, String>, re: &Regex, caps: &regex_lite::Captures) {
    for name in re.capture_names().flatten() {
        if let Some(m) = caps.name(name) {
            values.insert(name.to_string(), m.as_str().to_string());
        }
    }
}

/// Replaces `{name}` with its value; an unknown name is left as `<name>`.
fn fill(template: &str, values: &BTreeMap<String, String>, missing: &mut Vec<String>) -> String {
    static PLACEHOLDER: OnceLock<Regex> = OnceLock::new();
    let re = PLACEHOLDER.get_or_init(|| Regex::new(r"\{([a-z_]+)\}").expect("valid"));
    re.replace_all(template, |c: &regex_lite::Captures| {
        match values.get(&c[1]) {
            Some(v) => v.clone(),
            None => {
                missing.push(c[1].to_string());
                format!("<{}>", &c[1])
            }
        }
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_table_parses() {
        let t = parse(TABLE).unwrap();
        assert!(t.len() >= 6);
        let mut ids: Vec<&str> = t.iter().map(|e| e.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), t.len(), "ids must be unique");
    }

    #[test]
    fn placeholders_are_filled_from_captures_then_vars() {
        let log = "warning: x\n       error: path '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-source/src/led.rs' does not exist\n";
        let d = diagnose(log, &[("git_root", "/src/blinky")]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id, "untracked-file");
        assert!(d[0].problem.contains("`src/led.rs`"), "{}", d[0].problem);
        assert_eq!(
            d[0].fix[0],
            "git -C /src/blinky add --intent-to-add -- src/led.rs"
        );
        // Without the var, the placeholder says what belongs there.
        let d = diagnose(log, &[]);
        assert!(d[0].fix[0].starts_with("git -C <git_root> add"));
        assert_eq!(d[0].missing, vec!["git_root".to_string()]);
    }

    #[test]
    fn an_unrelated_log_has_no_diagnosis() {
        assert!(diagnose("error: something else entirely\n", &[]).is_empty());
    }

    #[test]
    fn braces_that_are_not_placeholders_stay() {
        let values = BTreeMap::new();
        let mut missing = Vec::new();
        assert_eq!(
            fill("a = { x = 1; }", &values, &mut missing),
            "a = { x = 1; }"
        );
        assert!(missing.is_empty());
    }
}
