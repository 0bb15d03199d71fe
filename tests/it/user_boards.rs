//! The user's and a project's own board files through the real binary: a bad one stops only the
//! commands that need its board, `boards show --toml` makes a file that works as a board file,
//! and a project made for a user board carries it (`boards/`), so that it builds on a machine
//! without the user's files. Flashing a user board's firmware is in tests/it/flash/upload.rs,
//! simulating it in tests/it/sim/uno.rs.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

/// nixflash in `cwd` with `cfg` as XDG_CONFIG_HOME (its board folder `cfg/nixflash/boards`).
fn nixflash(cwd: &Path, cfg: &Path) -> Command {
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(cwd).env("XDG_CONFIG_HOME", cfg);
    c
}

/// A temporary folder with an empty user board folder in it: (tmp, XDG_CONFIG_HOME, board folder).
fn user_config() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cfg");
    let boards = cfg.join("nixflash/boards");
    std::fs::create_dir_all(&boards).unwrap();
    (tmp, cfg, boards)
}

/// How many lines of `text` contain `what`.
fn lines_with(text: &str, what: &str) -> usize {
    text.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn a_bad_board_file_stops_no_command_that_does_not_need_its_board() {
    let (tmp, cfg, boards) = user_config();
    std::fs::write(boards.join("garbage.toml"), "garbage [\n").unwrap();
    // Not a board file at all: a Cargo manifest someone dropped there.
    std::fs::write(boards.join("unrelated.toml"), "[package]\nname = \"x\"\n").unwrap();
    let garbage = boards.join("garbage.toml").display().to_string();
    let unrelated = boards.join("unrelated.toml").display().to_string();

    // `new --board uno`: made, one warning per bad file.
    let o = nixflash(tmp.path(), &cfg)
        .args(["new", "fw", "--board", "uno", "--no-git"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(tmp.path().join("fw/Cargo.toml").is_file());
    assert_eq!(lines_with(&err, "Warning"), 2, "{err}");
    assert_eq!(
        lines_with(&err, &format!("{garbage}:1:9: invalid board file")),
        1,
        "{err}"
    );
    assert_eq!(
        lines_with(
            &err,
            &format!("{unrelated}:1:1: invalid board file: missing field `id`")
        ),
        1,
        "{err}"
    );

    // A bad file in the project's boards/ too: `boards` lists the boards, with a third warning.
    let project = tmp.path().join("fw");
    std::fs::create_dir(project.join("boards")).unwrap();
    std::fs::write(project.join("boards/notes.toml"), "title = \"my notes\"\n").unwrap();
    let o = nixflash(&project, &cfg).args(["boards"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("Arduino Uno"));
    assert_eq!(lines_with(&err, "Warning"), 3, "{err}");
    assert!(
        err.contains("boards/notes.toml:1:1: invalid board file"),
        "{err}"
    );

    // The board a command needs is the error: the file and the parse error, and no warning.
    let o = nixflash(tmp.path(), &cfg)
        .args(["boards", "show", "garbage"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: {garbage}:1:9: invalid board file: key with no value"
        )),
        "{err}"
    );
    assert_eq!(
        lines_with(&err, "Warning"),
        1,
        "only unrelated.toml's: {err}"
    );
    let o = nixflash(tmp.path(), &cfg)
        .args(["boards", "show", "garbage", "--json"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (o.status.code(), &j["kind"]),
        (Some(1), &"board-file".into())
    );

    // doctor: a ✗ per bad file, naming it, and the other checks still made.
    let o = nixflash(tmp.path(), &cfg)
        .args(["doctor"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(lines_with(&out, &format!("✗ {garbage}:1:9")), 1, "{out}");
    assert_eq!(lines_with(&out, &format!("✗ {unrelated}:1:1")), 1, "{out}");
    assert!(out.contains("serial ports"), "doctor stopped early:\n{out}");
}

#[test]
fn boards_show_toml_saved_in_the_board_folder_is_a_working_board_file() {
    let (tmp, cfg, boards) = user_config();
    let x = boards.join("x.toml");
    // The shell creates x.toml, empty, before nixflash reads the board folder.
    let o = Std::new("sh")
        .arg("-c")
        .arg(format!(
            "\"$NIXFLASH\" boards show uno --toml > '{}'",
            x.display()
        ))
        .env("NIXFLASH", assert_cmd::cargo::cargo_bin("nixflash"))
        .env("XDG_CONFIG_HOME", &cfg)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("Warning {} is empty", x.display())),
        "{err}"
    );
    assert!(std::fs::read_to_string(&x)
        .unwrap()
        .contains("id = \"uno\""));
    // Saved as it is, it is the Uno, aliases and all, from the user's file: no warning.
    nixflash(tmp.path(), &cfg)
        .args(["boards", "show", "arduino-uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "user file {}",
            x.display()
        )))
        .stderr(predicate::str::is_empty());
    // With an id of its own, the aliases it copied stay the Uno's: a warning naming both.
    let text = std::fs::read_to_string(&x).unwrap();
    std::fs::write(&x, text.replace("id = \"uno\"", "id = \"x\"")).unwrap();
    let o = nixflash(tmp.path(), &cfg)
        .args(["boards", "show", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("Arduino Uno (x)"));
    assert!(
        err.contains(&format!(
            "{}: aliases `arduino-uno`, `uno-r3` already name board `uno` (built in)",
            x.display()
        )),
        "{err}"
    );
    nixflash(tmp.path(), &cfg)
        .args(["boards", "show", "uno-r3"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Arduino Uno (uno)"));
}

/// `new --board <a user board>` copies the board's file, and those of the user's boards it
/// inherits, into the project's boards/ and adds them to git: on a machine without the user's
/// files (an empty XDG_CONFIG_HOME and HOME) the project still knows its board, and `init`
/// renders the same files.
#[test]
fn a_project_made_for_a_user_board_carries_it() {
    let (tmp, cfg, boards) = user_config();
    std::fs::write(
        boards.join("myuno.toml"),
        "# my board\ninherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n[monitor]\nbaud = 9600\n",
    )
    .unwrap();
    std::fs::write(
        boards.join("myuno2.toml"),
        "inherit = \"myuno\"\nid = \"myuno2\"\nname = \"My Uno 2\"\n",
    )
    .unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let o = nixflash(tmp.path(), &cfg)
        .args(["new", "fw", "--board", "myuno2"])
        .env("HOME", &home)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("boards/myuno2.toml") && out.contains("boards/myuno.toml"),
        "{out}"
    );
    let project = tmp.path().join("fw");
    for f in ["myuno.toml", "myuno2.toml"] {
        assert_eq!(
            std::fs::read_to_string(project.join("boards").join(f)).unwrap(),
            std::fs::read_to_string(boards.join(f)).unwrap(),
            "{f}"
        );
    }
    let tracked = Std::new("git")
        .args(["ls-files", "boards"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tracked.stdout),
        "boards/myuno.toml\nboards/myuno2.toml\n"
    );
    let ravedude = std::fs::read_to_string(project.join("Ravedude.toml")).unwrap();

    // The teammate: nothing in their config.
    let empty = tmp.path().join("teammate");
    std::fs::create_dir(&empty).unwrap();
    nixflash(&project, &empty)
        .env("HOME", &empty)
        .args(["boards", "show", "myuno2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("My Uno 2 (myuno2)"))
        .stdout(predicate::str::contains("9600 baud"))
        .stdout(predicate::str::contains("project file"))
        .stderr(predicate::str::is_empty());
    nixflash(&project, &empty)
        .env("HOME", &empty)
        .args(["init", "--board", "myuno2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to change"));
    assert_eq!(
        std::fs::read_to_string(project.join("Ravedude.toml")).unwrap(),
        ravedude
    );
}

/// `init --board <a user board>`, a switch of an Uno project to it, carries the board's file into
/// the project's boards/ as `new` does, git-added: a teammate without the user's files can then
/// switch it back and forth.
#[test]
fn a_switch_to_a_user_board_carries_its_file() {
    let (tmp, cfg, boards) = user_config();
    std::fs::write(
        boards.join("myuno.toml"),
        "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n",
    )
    .unwrap();
    let git_env = [
        ("GIT_AUTHOR_NAME", "t"),
        ("GIT_AUTHOR_EMAIL", "t@example.org"),
        ("GIT_COMMITTER_NAME", "t"),
        ("GIT_COMMITTER_EMAIL", "t@example.org"),
    ];
    nixflash(tmp.path(), &cfg)
        .args(["new", "fw", "--board", "uno"])
        .envs(git_env)
        .assert()
        .success();
    let project = tmp.path().join("fw");
    let o = nixflash(&project, &cfg)
        .args(["init", "--board", "myuno"])
        .envs(git_env)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("added     boards/myuno.toml"), "{out}");
    assert_eq!(
        std::fs::read_to_string(project.join("boards/myuno.toml")).unwrap(),
        std::fs::read_to_string(boards.join("myuno.toml")).unwrap()
    );
    let tracked = Std::new("git")
        .args(["ls-files", "boards"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tracked.stdout),
        "boards/myuno.toml\n"
    );
    let empty = tmp.path().join("teammate");
    std::fs::create_dir(&empty).unwrap();
    nixflash(&project, &empty)
        .env("HOME", &empty)
        .args(["boards", "show", "myuno"])
        .assert()
        .success()
        .stdout(predicate::str::contains("My Uno (myuno)"));
}

/// A board that inherits the Uno's settings region but leaves its application less flash (a
/// larger bootloader) is told where the region must be; its own region makes it a working board.
#[test]
fn a_settings_region_outside_the_board_s_flash_is_refused_with_where_it_may_be() {
    let (tmp, cfg, boards) = user_config();
    let file = boards.join("small.toml");
    let text = "inherit = \"uno\"\nid = \"small\"\nname = \"Small\"\n[memory]\nflash = 28672\n\
                ram = 2048\n";
    std::fs::write(&file, text).unwrap();
    let o = nixflash(tmp.path(), &cfg)
        .args(["boards", "show", "small"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(
            "`memory.settings = { at = 0x7600, size = 512 }` must be 64 to 4096 bytes inside the \
             board's flash (`memory.flash` bytes from 0x0, up to 0x7000)"
        ),
        "{err}"
    );
    std::fs::write(
        &file,
        format!("{text}settings = {{ at = 0x6e00, size = 512 }}\n"),
    )
    .unwrap();
    nixflash(tmp.path(), &cfg)
        .args(["boards", "show", "small"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Small"));
}
