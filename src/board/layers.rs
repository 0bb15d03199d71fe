//! How a board file is resolved in layers: its family's `[board]` defaults, then the board it
//! `inherit`s (resolved the same way), then its own fields; `{id}` and `{chip}` in the result are
//! the board's own, and the family's `[fixed]` values must survive.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::database::RawBoard;
use super::{line_col, Family};
use crate::error::{Failure, Kind};

/// `over` laid on `base`: tables merge key by key, anything else is replaced.
pub(super) fn merge(mut base: toml::Table, over: toml::Table) -> toml::Table {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                let merged = merge(std::mem::take(b), o);
                *b = merged;
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
    base
}

/// Every string in `v` with `{id}` and `{chip}` filled in.
pub(super) fn expand(v: &mut toml::Value, id: &str, chip: &str) {
    match v {
        toml::Value::String(s) => *s = s.replace("{id}", id).replace("{chip}", chip),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| expand(v, id, chip)),
        toml::Value::Array(a) => a.iter_mut().for_each(|v| expand(v, id, chip)),
        _ => {}
    }
}

/// The fixed values of a family that `board` does not keep, as `(dotted key, wanted)`.
pub(super) fn broken_fixed(
    fixed: &toml::Table,
    board: &toml::Table,
    prefix: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, want) in fixed {
        let key = format!("{prefix}{k}");
        match (want, board.get(k)) {
            (toml::Value::Table(w), Some(toml::Value::Table(b))) => {
                out.extend(broken_fixed(w, b, &format!("{key}.")))
            }
            (w, got) if got != Some(w) => out.push((key, w.to_string())),
            _ => {}
        }
    }
    out
}

/// Where in a board file the value at `path` starts (its key, with `key`), as far as the file
/// has it.
pub(super) fn locate(text: &str, path: &[&str], key: bool) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut table = doc.as_table() as &dyn toml_edit::TableLike;
    let mut found = None;
    for (i, name) in path.iter().enumerate() {
        let Some((k, item)) = table.get_key_value(name) else {
            break;
        };
        let last = i + 1 == path.len();
        let span = if key && last {
            k.span().or(item.span())
        } else {
            item.span().or(k.span())
        };
        found = span.map(|s| s.start).or(found);
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    found
}

/// The board `id`'s own table laid on those of the boards it inherits (without `inherit`).
pub(super) fn chain(
    id: &str,
    raw: &BTreeMap<String, RawBoard>,
    seen: &mut Vec<String>,
) -> Result<toml::Table> {
    if seen.iter().any(|s| s == id) {
        seen.push(id.to_string());
        bail!(
            "boards inherit from each other in a circle: {}",
            seen.join(" → ")
        );
    }
    seen.push(id.to_string());
    let r = &raw[id];
    let mut own = r.table.clone();
    let Some(parent) = own.remove("inherit") else {
        return Ok(own);
    };
    // Aliases name one board: they are not inherited.
    let parent = parent
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{}: `inherit` must be a board id", r.origin))?;
    if !raw.contains_key(&parent) {
        let at = locate(&r.text, &["inherit"], false).map_or((1, 1), |o| line_col(&r.text, o));
        return Err(anyhow::Error::new(
            Failure::new(
                Kind::BoardFile,
                format!(
                    "{}:{}:{}: board `{id}` inherits `{parent}`, which is no board's id",
                    r.origin, at.0, at.1
                ),
            )
            .hint("`nixflash boards` lists the ids"),
        ));
    }
    let mut base = chain(&parent, raw, seen)?;
    base.remove("aliases");
    Ok(merge(base, own))
}

/// The boards `id` inherits, nearest first, each with its own `flash.board` (resolved on the
/// family's defaults, as that board's own).
pub(super) fn ancestors(
    id: &str,
    raw: &BTreeMap<String, RawBoard>,
    family: &Family,
) -> Vec<super::Ancestor> {
    let mut out: Vec<super::Ancestor> = Vec::new();
    let mut current = id;
    while let Some(parent) = raw[current].table.get("inherit").and_then(|v| v.as_str()) {
        if !raw.contains_key(parent) || parent == id || out.iter().any(|a| a.id == parent) {
            break;
        }
        let resolved = chain(parent, raw, &mut Vec::new()).ok().and_then(|t| {
            let mut v = toml::Value::Table(merge(family.board.clone(), t));
            let chip = v.get("chip")?.as_str()?.to_string();
            expand(&mut v, parent, &chip);
            let flash_board = v.get("flash")?.get("board")?.as_str().map(str::to_string);
            Some((chip, flash_board))
        });
        let (chip, flash_board) = resolved.unwrap_or_default();
        out.push(super::Ancestor {
            id: parent.to_string(),
            chip,
            flash_board,
        });
        current = parent;
    }
    out
}
