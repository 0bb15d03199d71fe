//! Whether a project's board-derived files (the target in .cargo/config.toml, the HAL feature in
//! Cargo.toml, ravedude's board) are those of the board its Cargo.toml names: someone who edits
//! `board = ` by hand has not switched boards yet.

use std::path::Path;

use crate::board::Board;

/// What disagrees with `board`, if anything, in the project at `root`.
pub fn board_mismatch(root: &Path, board: &Board) -> Option<String> {
    let read = |name: &str| -> Option<toml::Table> {
        std::fs::read_to_string(root.join(name)).ok()?.parse().ok()
    };
    if let Some(config) = read(".cargo/config.toml") {
        let build = config.get("build");
        if let Some(target) = build.and_then(|b| b.get("target")).and_then(|t| t.as_str()) {
            if target != board.rust.target {
                return Some(format!(
                    ".cargo/config.toml builds for `{target}`, and the {} is `{}`",
                    board.name, board.rust.target
                ));
            }
        }
        if let Some(cpu) = &board.rust.target_cpu {
            let flags = build
                .and_then(|b| b.get("rustflags"))
                .and_then(|f| f.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            if let Some(other) = flags
                .split_whitespace()
                .find_map(|f| f.strip_prefix("target-cpu="))
                .filter(|c| c != cpu)
            {
                return Some(format!(
                    ".cargo/config.toml builds for the CPU `{other}`, and the {} has `{cpu}`",
                    board.name
                ));
            }
        }
    }
    if let Some(manifest) = read("Cargo.toml") {
        let dep = manifest
            .get("dependencies")
            .and_then(|d| d.get(&board.hal.krate));
        let features: Vec<&str> = dep
            .and_then(|d| d.get("features"))
            .and_then(|f| f.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        // A project may use another HAL than the board's: only its feature is checked.
        if dep.is_some() && !features.contains(&board.hal.feature.as_str()) {
            return Some(format!(
                "Cargo.toml builds {} with the features {features:?}, not `{}`",
                board.hal.krate, board.hal.feature
            ));
        }
    }
    board.family().flasher.config_mismatch(root, board)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;
    use crate::render::{render, Project};

    #[test]
    fn a_project_agrees_with_its_board_and_not_with_another() {
        let db = Database::builtin().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        for f in render(db.get("uno").unwrap(), &Project::new("p")).unwrap() {
            let p = tmp.path().join(&f.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f.contents).unwrap();
        }
        assert_eq!(board_mismatch(tmp.path(), db.get("uno").unwrap()), None);
        let mega = board_mismatch(tmp.path(), db.get("mega2560").unwrap()).unwrap();
        assert!(mega.contains("the CPU `atmega328p`"), "{mega}");
        let nano = board_mismatch(tmp.path(), db.get("nano").unwrap()).unwrap();
        assert!(nano.contains("not `arduino-nano`"), "{nano}");
        let c3 = board_mismatch(tmp.path(), db.get("esp32c3").unwrap()).unwrap();
        assert!(c3.contains("builds for `avr-none`"), "{c3}");
    }

    #[test]
    fn a_user_board_s_project_agrees_with_ravedude_s_inline_board() {
        let cfg = tempfile::tempdir().unwrap();
        std::fs::write(
            cfg.path().join("myuno.toml"),
            "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n",
        )
        .unwrap();
        let db = Database::load_from(Some(cfg.path()), None).unwrap();
        let myuno = db.get("myuno").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        for f in render(myuno, &Project::new("p")).unwrap() {
            let p = tmp.path().join(&f.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f.contents).unwrap();
        }
        assert_eq!(board_mismatch(tmp.path(), myuno), None);
        // A Ravedude.toml that names the board as ravedude has no such board (as nixflash
        // wrote it before it defined such boards inline) is no board's.
        std::fs::write(
            tmp.path().join("Ravedude.toml"),
            "[general]\nboard = \"myuno\"\nserial-baudrate = 57600\n",
        )
        .unwrap();
        let why = board_mismatch(tmp.path(), myuno).unwrap();
        assert!(why.contains("ravedude has no board `myuno`"), "{why}");
    }
}
