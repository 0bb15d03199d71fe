//! ravedude, the AVR family's flasher: it knows boards by name and reads them from a
//! Ravedude.toml, which nixflash gives it (the project's own, or one made from the board) with its
//! console off.

use std::path::Path;

use anyhow::{Context, Result};

use crate::board::Board;
use crate::error::{Failure, Kind};

/// The Ravedude.toml ravedude gets: the project's own, or one made from the board, always with
/// `open-console = false` (nixflash has its own monitor, and ravedude has no flag to turn its
/// console off).
pub fn ravedude_config(board: &Board, project_root: &Path) -> Result<String> {
    let path = project_root.join("Ravedude.toml");
    let mut doc = match std::fs::read_to_string(&path) {
        Ok(text) => text.parse::<toml_edit::DocumentMut>().map_err(|e| {
            Failure::new(
                Kind::ProjectFile,
                format!("{}: invalid TOML: {}", path.display(), e.message()),
            )
            .hint(format!(
                "fix it, or delete it: nixflash makes one from the board (`nixflash init \
                     --board {} --force` writes it again)",
                board.id
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ravedude_board(board),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let general = doc
        .entry("general")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .with_context(|| format!("{}: `general` is not a table", path.display()))?;
    general["open-console"] = toml_edit::value(false);
    Ok(doc.to_string())
}

/// A Ravedude.toml for the board: ravedude's name for it, or, for a board ravedude has no name
/// for (a user's board), the board defined inline as the one it inherits that ravedude has.
fn ravedude_board(board: &Board) -> toml_edit::DocumentMut {
    let mut doc = toml_edit::DocumentMut::new();
    let mut general = toml_edit::Table::new();
    let fb = board.flasher_board();
    if let Some(name) = fb.as_ref().and_then(|f| f.named.as_deref()) {
        general["board"] = toml_edit::value(name);
    }
    general["serial-baudrate"] = toml_edit::value(i64::from(board.monitor.baud));
    doc["general"] = toml_edit::Item::Table(general);
    if let Some(like) = fb.as_ref().and_then(|f| f.like.as_deref()) {
        let mut inline = toml_edit::Table::new();
        inline["name"] = toml_edit::value(board.name.as_str());
        inline["inherit"] = toml_edit::value(like);
        doc["board"] = toml_edit::Item::Table(inline);
    }
    doc
}

/// What the project's Ravedude.toml at `root` says that disagrees with `board`, if anything.
pub fn mismatch(root: &Path, board: &Board) -> Option<String> {
    let want = board.flasher_board()?;
    let read = |name: &str| -> Option<toml::Table> {
        std::fs::read_to_string(root.join(name)).ok()?.parse().ok()
    };
    let config = read("Ravedude.toml");
    let get = |table: &str, key: &str| -> Option<String> {
        config
            .as_ref()?
            .get(table)?
            .get(key)?
            .as_str()
            .map(str::to_string)
    };
    match (get("general", "board"), get("board", "inherit"), want.like) {
        (Some(named), _, Some(like)) => Some(format!(
            "Ravedude.toml flashes ravedude's board `{named}`, and ravedude has no board \
                 `{named}`: the {} is defined for ravedude as its `{like}`",
            board.name
        )),
        (Some(named), _, None) if want.named.as_ref() != Some(&named) => Some(format!(
            "Ravedude.toml flashes ravedude's board `{named}`, and the {} is `{}`",
            board.name,
            want.named.unwrap_or_default()
        )),
        (None, Some(inherit), Some(like)) if inherit != like => Some(format!(
            "Ravedude.toml defines its board as ravedude's `{inherit}`, and the {} is \
                 defined as its `{like}`",
            board.name
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;

    #[test]
    fn ravedude_config_turns_the_console_off() {
        let db = Database::builtin().unwrap();
        let board = db.get("uno").unwrap();
        let dir = tempfile::tempdir().unwrap();
        // No Ravedude.toml: one is made from the board.
        let made: toml::Table =
            toml::from_str(&ravedude_config(board, dir.path()).unwrap()).unwrap();
        assert_eq!(made["general"]["board"].as_str(), Some("uno"));
        assert_eq!(made["general"]["serial-baudrate"].as_integer(), Some(57600));
        assert_eq!(made["general"]["open-console"].as_bool(), Some(false));
        // The project's own keeps everything else, comments included.
        std::fs::write(
            dir.path().join("Ravedude.toml"),
            "# mine\n[general]\nboard = \"nano\"\nopen-console = true\nreset-delay = 10\n",
        )
        .unwrap();
        let text = ravedude_config(board, dir.path()).unwrap();
        assert!(text.starts_with("# mine\n"), "{text}");
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t["general"]["board"].as_str(), Some("nano"));
        assert_eq!(t["general"]["reset-delay"].as_integer(), Some(10));
        assert_eq!(t["general"]["open-console"].as_bool(), Some(false));
        // A malformed one says what to do.
        std::fs::write(dir.path().join("Ravedude.toml"), "[general\nboard = 1\n").unwrap();
        let e = crate::error::Report::of(&ravedude_config(board, dir.path()).unwrap_err());
        assert!(e.error.contains("Ravedude.toml: invalid TOML"), "{e:?}");
        assert!(
            e.hints[0].contains("nixflash init --board uno --force"),
            "{e:?}"
        );
    }

    #[test]
    fn ravedude_config_defines_a_user_board_inline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("myuno.toml"),
            "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n",
        )
        .unwrap();
        let db = Database::load_from(Some(dir.path()), None).unwrap();
        let board = db.get("myuno").unwrap();
        // No Ravedude.toml: ravedude's own format for a board it has no name for.
        let made: toml::Table =
            toml::from_str(&ravedude_config(board, dir.path()).unwrap()).unwrap();
        assert_eq!(made["general"].get("board"), None, "{made}");
        assert_eq!(made["general"]["open-console"].as_bool(), Some(false));
        assert_eq!(made["board"]["inherit"].as_str(), Some("uno"), "{made}");
        assert_eq!(made["board"]["name"].as_str(), Some("My Uno"));
        // Its chip is the one of ravedude's `uno` (a partial [board.avrdude] is an error).
        assert_eq!(made["board"].get("avrdude"), None, "{made}");
    }
}
