//! Project options (`[options.<name>]` in boards/families/*.toml): what a project asks for (`-o
//! wifi`, `-o log=defmt`, the choices its Cargo.toml records) resolved against what its board
//! offers: the chip's options only, each choice's requirements turned on (and said), a
//! contradiction refused naming both sides. The resolved choices decide the lock data's name and
//! which of the family's optional template files a project gets.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::board::{Board, Family, TemplateOption};
use crate::error::{Failure, Kind};

/// Where a wish for a choice comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `-o name=choice` on the command line.
    Flag,
    /// The project's `[package.metadata.nixflash]`.
    Recorded,
}

/// One choice asked for: `choice` is None for a bare `-o wifi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wish {
    pub name: String,
    pub choice: Option<String>,
    pub origin: Origin,
}

impl Wish {
    /// A `-o` argument: `name=choice`, or `name` alone.
    pub fn flag(arg: &str) -> Wish {
        let (name, choice) = match arg.split_once('=') {
            Some((n, c)) => (n.trim(), Some(c.trim().to_string())),
            None => (arg.trim(), None),
        };
        Wish {
            name: name.to_string(),
            choice,
            origin: Origin::Flag,
        }
    }

    /// A choice the project records.
    pub fn recorded(name: &str, choice: &str) -> Wish {
        Wish {
            name: name.to_string(),
            choice: Some(choice.to_string()),
            origin: Origin::Recorded,
        }
    }

    /// How the user wrote it, for messages.
    fn shown(&self) -> String {
        match (&self.choice, self.origin) {
            (Some(c), Origin::Flag) => format!("`-o {}={c}`", self.name),
            (None, _) => format!("`-o {}`", self.name),
            (Some(c), Origin::Recorded) => {
                format!("the project's `{} = \"{c}\"` (in Cargo.toml)", self.name)
            }
        }
    }
}

/// The options of a board: every option of its family with its choice (the default where the
/// board does not offer the option), and what was turned on to meet requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub choices: BTreeMap<String, String>,
    /// One sentence per choice that needed others: "wifi=on needs async=embassy and alloc=on:
    /// turned on".
    pub notes: Vec<String>,
}

/// The options the board offers (its family's that its chip has), by name.
pub fn offered(board: &Board) -> impl Iterator<Item = (&String, &TemplateOption)> {
    board
        .family()
        .options
        .iter()
        .filter(|(_, o)| o.offered_on(&board.chip))
}

/// The boards of the built-in database that offer `name`.
pub fn boards_offering(name: &str) -> Vec<String> {
    crate::board::Database::builtin()
        .map(|db| {
            db.boards()
                .filter(|b| offered(b).any(|(n, _)| n == name))
                .map(|b| b.id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Why `board` does not offer option `name` (its family has none, or not for its chip), or None
/// when it does.
pub fn why_not_offered(board: &Board, name: &str) -> Option<String> {
    let family = board.family();
    match family.options.get(name) {
        _ if family.options.is_empty() => Some(format!(
            "the {} (family `{}`) has no options",
            board.name, family.id
        )),
        None => Some(format!(
            "the {} has no option `{name}`; its options are {}",
            board.name,
            offered(board)
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(o) if !o.offered_on(&board.chip) => Some(format!(
            "the {} (chip {}) has no {name} ({}): only {} chips do",
            board.name,
            board.chip,
            o.about,
            o.chips.as_deref().unwrap_or_default().join(", ")
        )),
        Some(_) => None,
    }
}

fn refused(message: String) -> anyhow::Error {
    Failure::new(Kind::Option, message).into()
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The choices a wish names, checked against what the board offers.
fn checked_choice(board: &Board, wish: &Wish) -> Result<String> {
    if let Some(why) = why_not_offered(board, &wish.name) {
        let offering = boards_offering(&wish.name);
        let mut msg = format!("{}: {why}", wish.shown());
        if board.family().options.is_empty() {
            msg.push_str(": drop -o");
        } else if !offering.is_empty() {
            msg.push_str(&format!(
                "; the boards that have it: {}",
                offering.join(", ")
            ));
        }
        return Err(refused(msg));
    }
    let option = &board.family().options[&wish.name];
    let list = option.choices.keys().cloned().collect::<Vec<_>>();
    let choice = match &wish.choice {
        Some(c) => c.clone(),
        None if option.is_on_off() => "on".to_string(),
        None => {
            return Err(refused(format!(
                "{} needs a choice: {}",
                wish.shown(),
                list.iter()
                    .map(|c| format!("-o {}={c}", wish.name))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    };
    if !option.choices.contains_key(&choice) {
        return Err(refused(format!(
            "{} is not a choice for the {}: {} ({}) is one of {} (default {})",
            wish.shown(),
            board.name,
            wish.name,
            option.about,
            list.join(", "),
            option.default
        )));
    }
    Ok(choice)
}

/// Resolves the wishes for `board`: a flag wins over a recorded choice of the same option; the
/// requirements of every choice made are turned on; anything the board does not offer, an
/// unknown choice or a contradiction is refused (one line).
pub fn resolve(board: &Board, wishes: &[Wish]) -> Result<Resolved> {
    let family = board.family();
    // The choice of each option asked for, and who asked (the last flag for an option wins over
    // a recorded one; two flags that differ contradict each other).
    let mut asked: BTreeMap<String, (String, &Wish)> = BTreeMap::new();
    for w in wishes {
        let choice = checked_choice(board, w)?;
        match asked.get(&w.name) {
            Some((c, prev)) if prev.origin == w.origin && *c != choice => {
                return Err(refused(format!(
                    "{} and {} contradict each other: choose one",
                    prev.shown(),
                    w.shown()
                )));
            }
            Some((_, prev)) if prev.origin == Origin::Flag && w.origin == Origin::Recorded => {}
            _ => {
                asked.insert(w.name.clone(), (choice, w));
            }
        }
    }
    let mut choices: BTreeMap<String, String> = family
        .options
        .iter()
        .map(|(n, o)| (n.clone(), o.default.clone()))
        .collect();
    for (n, (c, _)) in &asked {
        choices.insert(n.clone(), c.clone());
    }
    // Requirements, until nothing more is turned on: who set each one, for contradictions.
    let mut set_by: BTreeMap<String, String> = BTreeMap::new();
    let mut notes = Vec::new();
    loop {
        let mut turned_on: Vec<(String, String, String)> = Vec::new();
        for (name, chosen) in &choices {
            let choice = &family.options[name].choices[chosen];
            let mut needs = Vec::new();
            for (req, want) in &choice.requires {
                needs.push(format!("{req}={want}"));
                if choices[req] == *want {
                    continue;
                }
                let by = format!("{name}={chosen}");
                if let Some((have, w)) = asked.get(req) {
                    return Err(refused(format!(
                        "{} contradicts {}: {by} needs {req}={want}, not {req}={have}",
                        w.shown(),
                        asked.get(name).map_or(by.clone(), |(_, w)| w.shown()),
                    )));
                }
                if let Some(other) = set_by.get(req) {
                    return Err(refused(format!(
                        "{by} needs {req}={want} and {other} needs {req}={}: they contradict \
                         each other",
                        choices[req]
                    )));
                }
                if let Some(why) = why_not_offered(board, req) {
                    return Err(refused(format!("{by} needs {req}={want}, but {why}")));
                }
                turned_on.push((req.clone(), want.clone(), by.clone()));
            }
            if turned_on
                .iter()
                .any(|(_, _, by)| *by == format!("{name}={chosen}"))
            {
                notes.push(format!(
                    "{name}={chosen} needs {}: turned on",
                    and_list(&needs)
                ));
            }
        }
        if turned_on.is_empty() {
            break;
        }
        for (req, want, by) in turned_on {
            choices.insert(req.clone(), want);
            set_by.insert(req, by);
        }
    }
    Ok(Resolved { choices, notes })
}

/// The resolved choices that are not their option's default: what a project records.
pub fn non_default<'a>(
    family: &Family,
    choices: &'a BTreeMap<String, String>,
) -> BTreeMap<&'a str, &'a str> {
    choices
        .iter()
        .filter(|(name, chosen)| {
            family
                .options
                .get(*name)
                .is_some_and(|o| o.default != **chosen)
        })
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect()
}

/// The name of the lock data a project needs: the family's `files.lock` filled in with the
/// board's fields, then `-<lock>` for each chosen choice that has one, by option name
/// (`esp32c3`, `esp32c3-defmt`, `esp32c3-alloc-embassy-defmt-wifi`).
pub fn lock_name(board: &Board, choices: &BTreeMap<String, String>) -> Result<String> {
    let family = board.family();
    let mut name = board.fill(&family.files.lock, &[])?;
    for (option, chosen) in choices {
        let lock = family
            .options
            .get(option)
            .and_then(|o| o.choices.get(chosen))
            .and_then(|c| c.lock.as_deref());
        if let Some(lock) = lock {
            name.push('-');
            name.push_str(lock);
        }
    }
    Ok(name)
}

/// Whether a template file (its path in the project) is rendered with these choices: a file
/// some choice lists in `files` only when one such choice is chosen.
pub fn renders(family: &Family, choices: &BTreeMap<String, String>, path: &str) -> bool {
    let mut listed = false;
    for (name, o) in &family.options {
        for (c, choice) in &o.choices {
            if choice.files.iter().any(|f| f == path) {
                if choices.get(name) == Some(c) {
                    return true;
                }
                listed = true;
            }
        }
    }
    !listed
}

/// Every combination of choices the data allows for `board`: each option it offers at each of
/// its choices, where every choice's requirements hold (options it does not offer at their
/// defaults).
pub fn combinations(board: &Board) -> Vec<BTreeMap<String, String>> {
    let family = board.family();
    let mut all: Vec<BTreeMap<String, String>> = vec![family
        .options
        .iter()
        .map(|(n, o)| (n.clone(), o.default.clone()))
        .collect()];
    for (name, o) in offered(board) {
        all = all
            .into_iter()
            .flat_map(|base| {
                o.choices.keys().map(move |c| {
                    let mut next = base.clone();
                    next.insert(name.clone(), c.clone());
                    next
                })
            })
            .collect();
    }
    all.retain(|combo| {
        combo.iter().all(|(n, c)| {
            family.options[n].choices[c]
                .requires
                .iter()
                .all(|(req, want)| combo.get(req) == Some(want))
        })
    });
    all
}

/// An option in one line: "a heap: off (default), on; on needs async=embassy; only on esp32c2,
/// esp32c3 chips".
pub fn describe(o: &TemplateOption) -> String {
    let choices: Vec<String> = o
        .choices
        .keys()
        .map(|c| match *c == o.default {
            true => format!("{c} (default)"),
            false => c.clone(),
        })
        .collect();
    let mut s = format!("{}: {}", o.about, choices.join(", "));
    for (c, choice) in &o.choices {
        if !choice.requires.is_empty() {
            let needs: Vec<String> = choice
                .requires
                .iter()
                .map(|(n, w)| format!("{n}={w}"))
                .collect();
            s.push_str(&format!("; {c} needs {}", and_list(&needs)));
        }
    }
    if let Some(chips) = &o.chips {
        s.push_str(&format!("; only on {} chips", chips.join(", ")));
    }
    s
}

/// The `-o` values of every built-in family's options (`wifi=on`, `log=defmt`), for shell
/// completion.
pub fn completions() -> Vec<String> {
    let mut all = Vec::new();
    if let Ok(db) = crate::board::Database::builtin() {
        for f in db.families() {
            for (name, o) in &f.options {
                for c in o.choices.keys() {
                    all.push(format!("{name}={c}"));
                }
            }
        }
    }
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
