//! What `init` changes in a package's Cargo.toml, formatting and comments kept (toml_edit): the
//! board in `[package.metadata.nixflash]`, the dependencies the board's template has (the HAL
//! set to the board's, others added when missing, the previous board's removed), and the profile
//! settings the board needs.

use anyhow::{Context, Result};
use toml_edit::{DocumentMut, Item, Table};

use crate::board::Board;

/// Applies the board's template Cargo.toml (`template`) to `doc`; `previous` is the template of
/// the board the package was for, when `init` switches boards. Returns what changed, one short
/// phrase each.
pub fn apply(
    doc: &mut DocumentMut,
    board: &Board,
    template: &str,
    previous: Option<&str>,
) -> Result<Vec<String>> {
    let template: DocumentMut = template.parse().context("the template's Cargo.toml")?;
    let previous: Option<DocumentMut> = previous
        .map(str::parse)
        .transpose()
        .context("the previous board's Cargo.toml")?;
    let mut changes = Vec::new();

    apply_board(doc, board, &template, &previous, &mut changes)?;
    apply_dependencies(doc, board, &template, &previous, &mut changes)?;
    apply_profiles(doc, &template, &previous, &mut changes)?;
    Ok(changes)
}

/// The board in `[package.metadata.nixflash]`, and the template options it records (`log =
/// "defmt"`).
fn apply_board(
    doc: &mut DocumentMut,
    board: &Board,
    template: &DocumentMut,
    previous: &Option<DocumentMut>,
    changes: &mut Vec<String>,
) -> Result<()> {
    // The board.
    let package = doc["package"]
        .as_table_mut()
        .context("[package] in Cargo.toml is not a table")?;
    let metadata = package
        .entry("metadata")
        .or_insert_with(implicit_table)
        .as_table_mut()
        .context("package.metadata in Cargo.toml is not a table")?;
    let nf = metadata
        .entry("nixflash")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .context("package.metadata.nixflash in Cargo.toml is not a table")?;
    if nf.get("board").and_then(Item::as_str) != Some(board.id.as_str()) {
        nf["board"] = toml_edit::value(board.id.as_str());
        changes.push(format!("board = \"{}\"", board.id));
    }
    // The template options chosen (`log = "defmt"`): as the template records them; one the
    // previous template recorded and this one does not goes.
    let recorded = |d: &DocumentMut| -> Vec<(String, String)> {
        d.get("package")
            .and_then(|p| p.get("metadata")?.get("nixflash")?.as_table_like())
            .map(|t| {
                t.iter()
                    .filter(|(k, _)| *k != "board")
                    .filter_map(|(k, v)| Some((k.to_string(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let chosen = recorded(template);
    for (key, value) in &chosen {
        if nf.get(key).and_then(Item::as_str) != Some(value.as_str()) {
            nf[key.as_str()] = toml_edit::value(value.as_str());
            changes.push(format!("{key} = \"{value}\""));
        }
    }
    for (key, value) in previous.as_ref().map(recorded).unwrap_or_default() {
        if !chosen.iter().any(|(k, _)| *k == key) && nf.remove(&key).is_some() {
            changes.push(format!("removed {key} = \"{value}\""));
        }
    }
    Ok(())
}

/// The dependencies: the board's template's added, the HAL set to the board's, the previous
/// board's template's updated or removed where the user left them as they were.
fn apply_dependencies(
    doc: &mut DocumentMut,
    board: &Board,
    template: &DocumentMut,
    previous: &Option<DocumentMut>,
    changes: &mut Vec<String>,
) -> Result<()> {
    // Dependencies: the board's, the HAL as the template has it; other ones are the user's.
    let wanted = template
        .get("dependencies")
        .and_then(Item::as_table_like)
        .context("the template has no [dependencies]")?;
    let deps = doc
        .entry("dependencies")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_like_mut()
        .context("[dependencies] in Cargo.toml is not a table")?;
    let had = |name: &str| {
        previous
            .as_ref()
            .and_then(|p| p.get("dependencies")?.get(name))
    };
    let (mut added, mut updated) = (Vec::new(), Vec::new());
    for (name, item) in wanted.iter() {
        match deps.get(name) {
            None => {
                deps.insert(name, item.clone());
                added.push(name.to_string());
            }
            Some(have) if name == board.hal.krate && !same(have, item) => {
                deps.insert(name, item.clone());
                changes.push(format!("{name} set to feature `{}`", board.hal.feature));
            }
            // As the previous template had it (the old chip's features, say): the new one's.
            Some(have) if !same(have, item) && had(name).is_some_and(|h| same(have, h)) => {
                deps.insert(name, item.clone());
                updated.push(name.to_string());
            }
            Some(_) => {}
        }
    }
    if !added.is_empty() {
        changes.push(format!("added {}", added.join(", ")));
    }
    if !updated.is_empty() {
        changes.push(format!("{} as the board needs them", updated.join(", ")));
    }
    if let Some(prev) = previous
        .as_ref()
        .and_then(|p| p.get("dependencies"))
        .and_then(Item::as_table_like)
    {
        // Only as the previous template had them: a dependency the user changed is theirs.
        let gone: Vec<String> = prev
            .iter()
            .filter(|(n, item)| {
                wanted.get(n).is_none() && deps.get(n).is_some_and(|have| same(have, item))
            })
            .map(|(n, _)| n.to_string())
            .collect();
        for n in &gone {
            deps.remove(n);
        }
        if !gone.is_empty() {
            changes.push(format!(
                "removed {} (the previous board's)",
                gone.join(", ")
            ));
        }
    }
    Ok(())
}

/// The profile settings the board needs, and the previous board's that the new one has not
/// removed, where the user left them as they were.
fn apply_profiles(
    doc: &mut DocumentMut,
    template: &DocumentMut,
    previous: &Option<DocumentMut>,
    changes: &mut Vec<String>,
) -> Result<()> {
    // Profiles: settings the board needs (panic = "abort", ...), unless the package has its own;
    // when switching, the previous board's settings give way to the new board's.
    let mut set = Vec::new();
    if let Some(profiles) = template.get("profile").and_then(Item::as_table_like) {
        for (profile, settings) in profiles.iter() {
            let Some(settings) = settings.as_table_like() else {
                continue;
            };
            let had = previous
                .as_ref()
                .and_then(|p| p.get("profile")?.get(profile)?.as_table_like());
            let have = doc
                .entry("profile")
                .or_insert_with(implicit_table)
                .as_table_like_mut()
                .context("[profile] in Cargo.toml is not a table")?
                .entry(profile)
                .or_insert_with(|| Item::Table(Table::new()))
                .as_table_like_mut()
                .with_context(|| format!("[profile.{profile}] in Cargo.toml is not a table"))?;
            for (key, value) in settings.iter() {
                let theirs = have.get(key);
                let was_template = match (theirs, had.and_then(|h| h.get(key))) {
                    (Some(t), Some(p)) => same(t, p),
                    _ => false,
                };
                if theirs.is_none() || (was_template && !same(theirs.unwrap(), value)) {
                    have.insert(key, value.clone());
                    set.push(format!("{profile}.{key}"));
                }
            }
        }
    }
    if !set.is_empty() {
        changes.push(format!("profile settings {}", set.join(", ")));
    }
    // The previous board's settings that the new board does not have, unless the user changed
    // them.
    let mut unset = Vec::new();
    if let (Some(had), Some(have)) = (
        previous
            .as_ref()
            .and_then(|p| p.get("profile"))
            .and_then(Item::as_table_like),
        doc.get_mut("profile").and_then(Item::as_table_like_mut),
    ) {
        for (profile, settings) in had.iter() {
            let (Some(settings), Some(ours)) = (
                settings.as_table_like(),
                have.get_mut(profile).and_then(Item::as_table_like_mut),
            ) else {
                continue;
            };
            let wanted = template.get("profile").and_then(|p| p.get(profile));
            for (key, value) in settings.iter() {
                let kept = wanted.and_then(|w| w.get(key)).is_some();
                if !kept && ours.get(key).is_some_and(|v| same(v, value)) {
                    ours.remove(key);
                    unset.push(format!("{profile}.{key}"));
                }
            }
        }
    }
    if !unset.is_empty() {
        changes.push(format!(
            "removed profile settings {} (the previous board's)",
            unset.join(", ")
        ));
    }
    Ok(())
}

/// `[package.metadata.nixflash.sim]`, what the flake's `checks.sim` expects of the firmware: the
/// template's (the blinky's greeting) when src/main.rs is the board's blinky (`blinky`), unless
/// the package has one of its own; the previous board's template's is removed where the new board
/// has none (a family without a simulator). Call after [`apply`]. Returns what changed.
pub fn apply_sim(
    doc: &mut DocumentMut,
    template: &str,
    previous: Option<&str>,
    blinky: bool,
) -> Result<Option<String>> {
    fn sim(doc: &DocumentMut) -> Option<Item> {
        doc.get("package")?
            .get("metadata")?
            .get("nixflash")?
            .get("sim")
            .cloned()
    }
    let want = sim(&template.parse().context("the template's Cargo.toml")?);
    let was = match previous {
        Some(p) => sim(&p.parse().context("the previous board's Cargo.toml")?),
        None => None,
    };
    let nf = doc["package"]["metadata"]["nixflash"]
        .as_table_mut()
        .context("package.metadata.nixflash in Cargo.toml is not a table")?;
    let have = nf.get("sim");
    let theirs = have.is_some_and(|h| !was.as_ref().is_some_and(|w| same(h, w)));
    Ok(match want {
        Some(mut w) if blinky && !theirs && !have.is_some_and(|h| same(h, &w)) => {
            // Right after [package.metadata.nixflash], as in the template (a table with no
            // position follows the one before it).
            if let Item::Table(t) = &mut w {
                t.set_position(nf.position());
            }
            nf.insert("sim", w);
            Some("[package.metadata.nixflash.sim] expects the blinky's greeting".into())
        }
        None if have.is_some() && !theirs => {
            nf.remove("sim");
            Some("removed [package.metadata.nixflash.sim] (the previous board's)".into())
        }
        _ => None,
    })
}

/// The names of every dependency (normal, build and dev) of a manifest.
pub fn dependency_names(doc: &DocumentMut) -> Vec<String> {
    ["dependencies", "build-dependencies", "dev-dependencies"]
        .iter()
        .filter_map(|t| doc.get(t).and_then(Item::as_table_like))
        .flat_map(|t| t.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>())
        .collect()
}

fn implicit_table() -> Item {
    let mut t = Table::new();
    t.set_implicit(true);
    Item::Table(t)
}

/// Whether two items say the same, whatever their formatting (a dotted table or an inline one).
fn same(a: &Item, b: &Item) -> bool {
    let norm = |i: &Item| {
        let mut d = DocumentMut::new();
        d.insert("x", i.clone());
        d.to_string()
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("x").cloned())
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;
    use crate::render::{render_sources, Project};

    fn template(db: &Database, id: &str) -> String {
        render_sources(db.get(id).unwrap(), &Project::new("mine"))
            .unwrap()
            .into_iter()
            .find(|f| f.path.as_os_str() == "Cargo.toml")
            .unwrap()
            .contents
    }

    #[test]
    fn a_cargo_new_package_gets_the_board_and_keeps_its_own() {
        let db = Database::builtin().unwrap();
        let mut doc: DocumentMut = "# mine\n[package]\nname = \"mine\"\nversion = \"0.2.0\"\n\
                                    edition = \"2021\"\n\n[dependencies]\nheapless = \"0.8\"\n\
                                    ufmt = \"0.1\"\n"
            .parse()
            .unwrap();
        let uno = db.get("uno").unwrap();
        let changes = apply(&mut doc, uno, &template(&db, "uno"), None).unwrap();
        let text = doc.to_string();
        assert!(text.starts_with("# mine\n"), "{text}");
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(
            t["package"]["metadata"]["nixflash"]["board"].as_str(),
            Some("uno")
        );
        assert_eq!(t["dependencies"]["heapless"].as_str(), Some("0.8"));
        assert_eq!(
            t["dependencies"]["ufmt"].as_str(),
            Some("0.1"),
            "the user's version is kept"
        );
        assert_eq!(
            t["dependencies"]["arduino-hal"]["features"][0].as_str(),
            Some("arduino-uno")
        );
        assert_eq!(t["profile"]["release"]["panic"].as_str(), Some("abort"));
        assert_eq!(changes[0], "board = \"uno\"");
        assert!(changes[1].starts_with("added "), "{changes:?}");
        assert!(!changes[1].contains("ufmt"), "{changes:?}");
        // Switching to the Nano: the HAL's feature changes, nothing else is added.
        let nano = db.get("nano").unwrap();
        let changes = apply(
            &mut doc,
            nano,
            &template(&db, "nano"),
            Some(&template(&db, "uno")),
        )
        .unwrap();
        assert_eq!(
            changes,
            [
                "board = \"nano\"",
                "arduino-hal set to feature `arduino-nano`"
            ]
        );
        // Switching to the ESP32-C3: arduino-hal and its friends go, esp-hal comes, and the
        // profile settings the Uno's template set follow the new board's.
        let c3 = db.get("esp32c3").unwrap();
        let changes = apply(
            &mut doc,
            c3,
            &template(&db, "esp32c3"),
            Some(&template(&db, "nano")),
        )
        .unwrap();
        let t: toml::Table = doc.to_string().parse().unwrap();
        assert!(t["dependencies"].get("arduino-hal").is_none());
        assert!(t["dependencies"].get("esp-hal").is_some());
        assert_eq!(t["dependencies"]["heapless"].as_str(), Some("0.8"));
        assert_eq!(t["profile"]["release"]["lto"].as_str(), Some("fat"));
        assert!(t["profile"]["release"].get("panic").is_none(), "{t}");
        assert!(
            changes
                .iter()
                .any(|c| c.starts_with("removed ") && c.contains("arduino-hal")),
            "{changes:?}"
        );
    }

    #[test]
    fn the_sim_expectations_follow_the_blinky_and_a_package_s_own_are_kept() {
        let db = Database::builtin().unwrap();
        let (uno, nano) = (template(&db, "uno"), template(&db, "nano"));
        let expects = |doc: &DocumentMut| -> Option<String> {
            let t: toml::Table = doc.to_string().parse().unwrap();
            Some(t["package"]["metadata"]["nixflash"].get("sim")?["expect"].to_string())
        };
        let fresh = || -> DocumentMut {
            let mut doc: DocumentMut = "[package]\nname = \"mine\"\nversion = \"0.1.0\"\n"
                .parse()
                .unwrap();
            apply(&mut doc, db.get("uno").unwrap(), &uno, None).unwrap();
            doc
        };
        // src/main.rs is the user's: nothing is known that it sends.
        let mut doc = fresh();
        assert_eq!(apply_sim(&mut doc, &uno, None, false).unwrap(), None);
        assert_eq!(expects(&doc), None);
        // The blinky: its greeting, once.
        let mut doc = fresh();
        assert!(apply_sim(&mut doc, &uno, None, true).unwrap().is_some());
        let greeting = "[\"Hello from mine on the Arduino Uno!\"]";
        assert_eq!(expects(&doc).as_deref(), Some(greeting));
        assert_eq!(apply_sim(&mut doc, &uno, None, true).unwrap(), None);
        // Another board's blinky replaces it, and its greeting the Uno's.
        apply_sim(&mut doc, &nano, Some(&uno), true).unwrap();
        let nano_greeting = "[\"Hello from mine on the Arduino Nano (old bootloader)!\"]";
        assert_eq!(expects(&doc).as_deref(), Some(nano_greeting));
        // A table of the package's own stays, whatever src/main.rs is.
        let mut doc = fresh();
        doc["package"]["metadata"]["nixflash"]["sim"] = toml_edit::Item::Table(
            "expect = [\"ready\"]"
                .parse::<DocumentMut>()
                .unwrap()
                .as_table()
                .clone(),
        );
        assert_eq!(apply_sim(&mut doc, &nano, Some(&uno), true).unwrap(), None);
        assert_eq!(expects(&doc).as_deref(), Some("[\"ready\"]"));
        // A family without a simulator: the previous board's table goes, the package's own stays.
        let c3 = template(&db, "esp32c3");
        assert_eq!(apply_sim(&mut doc, &c3, Some(&nano), true).unwrap(), None);
        let mut doc = fresh();
        apply_sim(&mut doc, &uno, None, true).unwrap();
        assert!(apply_sim(&mut doc, &c3, Some(&uno), true)
            .unwrap()
            .is_some());
        assert_eq!(expects(&doc), None);
    }
}
