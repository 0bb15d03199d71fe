//! `nixflash new` and `boards` through the real binary: what they write, what they print,
//! and that bad input writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;

pub(crate) fn nixflash(cwd: &Path) -> Command {
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(cwd)
        // No user board files from the machine running the tests.
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"));
    c
}

/// Every file under `dir`, relative, sorted (`.git` left out).
pub(crate) fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == ".git" || rel == ".no-user-config" {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn board_ids() -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let out = nixflash(tmp.path())
        .args(["boards", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn git_tracked(dir: &Path) -> Vec<String> {
    let out = Std::new("git")
        .args(["ls-files"])
        .current_dir(dir)
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn new_makes_a_complete_git_added_project_for_every_board() {
    let tmp = tempfile::tempdir().unwrap();
    for id in board_ids() {
        let dir = tmp.path().join(format!("fw-{id}"));
        nixflash(tmp.path())
            .args(["new", dir.to_str().unwrap(), "--board", &id])
            .assert()
            .success()
            .stdout(predicate::str::contains("nixflash build"));
        let files = tree(&dir);
        for want in [
            ".cargo/config.toml",
            ".envrc",
            ".gitignore",
            "Cargo.lock",
            "Cargo.toml",
            "README.md",
            "flake.nix",
            "rust-toolchain.toml",
            "src/main.rs",
        ] {
            assert!(
                files.iter().any(|f| f == want),
                "{id}: no {want} in {files:?}"
            );
        }
        assert_eq!(git_tracked(&dir), files, "{id}: every file is git-added");
        let cargo: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
        assert_eq!(
            cargo["package"]["metadata"]["nixflash"]["board"].as_str(),
            Some(id.as_str())
        );
        assert_eq!(
            cargo["package"]["name"].as_str(),
            Some(format!("fw-{id}").as_str())
        );
        // Nothing is left beside the project.
        let beside: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.contains("nixflash-new"))
            .collect();
        assert!(beside.is_empty(), "{beside:?}");
    }
}

/// The rendered files of one board, for snapshots (Cargo.lock is data from cargo, checked by the
/// compile tests instead).
fn snapshot_board(id: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blinky");
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", id, "--no-git"])
        .assert()
        .success();
    for f in tree(&dir) {
        if f == "Cargo.lock" {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(&f)).unwrap();
        let name = format!("{id}__{}", f.replace(['/', '.'], "_"));
        // Only nixflash's own version changes between releases.
        let stamp = format!("nixflash {}", env!("CARGO_PKG_VERSION"));
        insta::assert_snapshot!(name, text.replace(&stamp, "nixflash <version>"));
    }
}

#[test]
fn snapshot_avr_uno() {
    snapshot_board("uno");
}

#[test]
fn snapshot_avr_leonardo() {
    snapshot_board("leonardo");
}

#[test]
fn snapshot_esp_riscv_esp32c3() {
    snapshot_board("esp32c3-devkitm-1");
}

#[test]
fn snapshot_rp2_pico() {
    snapshot_board("pico");
}

#[test]
fn snapshot_rp2_pico2() {
    snapshot_board("pico2");
}

/// The CI workflow of a new project is YAML that GitHub Actions can run: it installs Nix, builds,
/// runs `nix flake check`, keeps the ELF, and uses a binary cache only when its secret is set.
#[test]
fn the_generated_ci_workflow_builds_checks_and_keeps_the_elf() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "lamp", "--board", "esp32c3", "--no-git"])
        .assert()
        .success();
    let path = tmp.path().join("lamp/.github/workflows/firmware.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}\n{text}", path.display()));
    let w = &docs[0];
    assert_eq!(w["name"].as_str(), Some("firmware"));
    for event in ["push", "pull_request"] {
        assert!(!w["on"][event].is_badvalue(), "not run on {event}");
    }
    let job = &w["jobs"]["build"];
    assert_eq!(job["runs-on"].as_str(), Some("ubuntu-latest"));
    let steps = job["steps"].as_vec().unwrap();
    let uses = |action: &str| {
        steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
            .unwrap_or_else(|| panic!("no step uses {action}"))
    };
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    let position = |prefix: &str| {
        runs.iter()
            .position(|r| r.starts_with(prefix))
            .unwrap_or_else(|| panic!("no step runs {prefix}: {runs:?}"))
    };
    assert!(position("nix build") < position("nix flake check"));
    // What `nixflash verify` does, after the build.
    assert!(position("nix build --print-build-logs") < position("nix build --rebuild"));
    // The ELF's SHA-256 in the log and the run's summary: the step's script, run by bash.
    let hash_step = runs[position("sha256sum result/bin/lamp.elf")];
    let work = tmp.path().join("ci");
    std::fs::create_dir_all(work.join("result/bin")).unwrap();
    std::fs::write(work.join("result/bin/lamp.elf"), b"abc").unwrap();
    let summary = work.join("summary.md");
    let out = std::process::Command::new("bash")
        .args(["-e", "-c", hash_step])
        .current_dir(&work)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // `printf abc | sha256sum`
    let line = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  \
                result/bin/lamp.elf";
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), line);
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(summary, format!("```\n{line}\n```\n"));
    uses("actions/checkout");
    uses("cachix/install-nix-action");
    let cache = uses("cachix/cachix-action");
    let condition = cache["if"].as_str().unwrap();
    assert!(
        condition.contains("env.CACHIX_AUTH_TOKEN != ''"),
        "the cache step is not skipped without its secret: {condition}"
    );
    assert_eq!(
        job["env"]["CACHIX_AUTH_TOKEN"].as_str(),
        Some("${{ secrets.CACHIX_AUTH_TOKEN }}")
    );
    let artifact = uses("actions/upload-artifact");
    assert_eq!(
        artifact["with"]["path"].as_str(),
        Some("result/bin/lamp.elf")
    );
    assert_eq!(
        artifact["with"]["if-no-files-found"].as_str(),
        Some("error")
    );
}

#[test]
fn unknown_board_suggests_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", "unoo"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown board `unoo`"))
        .stderr(predicate::str::contains("did you mean `uno`"))
        .stderr(predicate::str::contains("nixflash boards"));
    assert!(tree(tmp.path()).is_empty());
    nixflash(tmp.path())
        .args(["boards", "show", "esp32-c33"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("esp32-c3"));
}

/// A bad board file is the error of a command that needs its board, with the file, line and
/// column, and nothing is written; every other command goes on, with one warning naming it.
#[test]
fn malformed_board_file_is_named_with_line_and_column_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join(".no-user-config/nixflash/boards");
    std::fs::create_dir_all(&cfg).unwrap();
    let before = tree(tmp.path());
    for (text, error) in [
        // A family nixflash does not know: the file, line and column, and the families there are.
        (
            "id = \"mine\"\nname = \"Mine\"\nfamily = \"pic\"\n",
            "mine.toml:3:10: board `mine` is of family `pic`, which nixflash does not know",
        ),
        // A value of the wrong type, and a field no board has.
        (
            "inherit = \"uno\"\nid = \"mine\"\nname = 5\n",
            "mine.toml:3:8: invalid board file: invalid type: integer `5`, expected a string",
        ),
        (
            "inherit = \"uno\"\nid = \"mine\"\n[monitor]\nbaud = 9600\nspeed = 1\n",
            "mine.toml:5:1: invalid board file: unknown field `speed`",
        ),
        // Not TOML at all.
        ("mine [\n", "mine.toml:1:6: invalid board file"),
    ] {
        std::fs::write(cfg.join("mine.toml"), text).unwrap();
        nixflash(tmp.path())
            .args(["new", "blinky", "--board", "mine"])
            .assert()
            .failure()
            .stderr(predicate::str::contains(error))
            .stderr(predicate::str::contains("Warning").not());
        assert_eq!(tree(tmp.path()), before);
        nixflash(tmp.path())
            .args(["boards", "show", "uno"])
            .assert()
            .success()
            .stderr(predicate::str::contains(format!(
                "Warning {}",
                cfg.join(error).display()
            )))
            .stderr(predicate::str::contains("its board is left out"));
    }
    std::fs::write(
        cfg.join("mine.toml"),
        "id = \"mine\"\nname = \"Mine\"\nfamily = \"pic\"\n",
    )
    .unwrap();
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", "uno"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "mine.toml:3:10: board `mine` is of family `pic`",
        ));
    // An alias another board already answers to: it stays that board's, with a warning.
    std::fs::write(
        cfg.join("mine.toml"),
        "inherit = \"uno\"\nid = \"mine\"\naliases = [\"mega\"]\n",
    )
    .unwrap();
    nixflash(tmp.path())
        .args(["boards", "show", "mega"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Arduino Mega 2560 (mega2560)"))
        .stderr(predicate::str::contains(
            "alias `mega` already names board `mega2560` (built in)",
        ));
}

#[test]
fn user_and_project_board_files_add_and_override_boards() {
    let tmp = tempfile::tempdir().unwrap();
    let uno = nixflash(tmp.path())
        .args(["boards", "show", "uno", "--toml"])
        .output()
        .unwrap();
    let uno = String::from_utf8(uno.stdout).unwrap();
    let cfg = tmp.path().join(".no-user-config/nixflash/boards");
    std::fs::create_dir_all(&cfg).unwrap();
    let mine = uno
        .replace("id = \"uno\"", "id = \"my-uno\"")
        .replace("aliases = [\"arduino-uno\", \"uno-r3\"]", "aliases = []")
        .replace("name = \"Arduino Uno\"", "name = \"My Uno\"");
    std::fs::write(cfg.join("my-uno.toml"), mine).unwrap();
    nixflash(tmp.path())
        .args(["boards"])
        .assert()
        .success()
        .stdout(predicate::str::contains("my-uno*"))
        .stdout(predicate::str::contains("My Uno"));
    // A project's boards/ overrides a built-in board with the same id.
    let proj = tmp.path().join("proj");
    std::fs::create_dir_all(proj.join("boards")).unwrap();
    std::fs::write(
        proj.join("Cargo.toml"),
        "[package]\nname = \"p\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(
        proj.join("boards/uno.toml"),
        format!("{uno}\n[monitor]\nbaud = 9600\n"),
    )
    .unwrap();
    nixflash(&proj)
        .args(["boards", "show", "uno", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"baud\": 9600"))
        .stdout(predicate::str::contains("\"kind\": \"project\""));
}

#[test]
fn non_empty_folder_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blinky");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", "uno"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not empty"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(tree(&dir), vec!["notes.txt"]);
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", "uno", "--force"])
        .assert()
        .success();
    let files = tree(&dir);
    assert!(files.contains(&"notes.txt".to_string()) && files.contains(&"flake.nix".to_string()));
    assert!(git_tracked(&dir).contains(&"flake.nix".to_string()));
    // An empty folder needs no --force.
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    nixflash(tmp.path())
        .args(["new", "empty", "--board", "uno"])
        .assert()
        .success();
}

#[test]
fn invalid_crate_names_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["new", "2blink", "--board", "uno"],
            "cannot start with a digit",
        ),
        (
            vec!["new", "ok", "--board", "uno", "--name", "my crate"],
            "invalid character ` `",
        ),
        (vec!["new", "fn", "--board", "uno"], "is a Rust keyword"),
        (
            vec!["new", "ok", "--board", "uno", "--name", "core"],
            "reserved",
        ),
    ] {
        nixflash(tmp.path())
            .args(&args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(says))
            .stderr(predicate::str::contains("hint:"));
        assert!(tree(tmp.path()).is_empty(), "{args:?} wrote something");
    }
}

#[test]
fn a_failure_half_way_leaves_nothing_behind() {
    // git missing from PATH makes `new` fail after rendering, before the rename.
    let tmp = tempfile::tempdir().unwrap();
    let empty_path = tmp.path().join("empty-path");
    std::fs::create_dir(&empty_path).unwrap();
    nixflash(tmp.path())
        .env("PATH", &empty_path)
        .args(["new", "blinky", "--board", "uno"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("git is not installed"))
        .stderr(predicate::str::contains("--no-git"));
    assert_eq!(tree(tmp.path()), Vec::<String>::new());
}

#[test]
fn ctrl_c_during_new_leaves_nothing_behind() {
    // A git that is slow to start gives a window to press Ctrl-C in; it runs the real git.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("slow-bin");
    std::fs::create_dir(&bin).unwrap();
    let real_git = which::which("git").unwrap();
    let wrapper = bin.join("git");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nsleep 2\nexec {} \"$@\"\n", real_git.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut child = Std::new(assert_cmd::cargo::cargo_bin("nixflash"))
        .args(["new", "blinky", "--board", "uno"])
        .current_dir(&work)
        .env("XDG_CONFIG_HOME", tmp.path().join("cfg"))
        // With a git variable set, new runs git instead of writing the repository itself.
        .env("GIT_CONFIG_COUNT", "0")
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .spawn()
        .unwrap();
    // Wait until the staging folder exists, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tree(&work).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "new never started writing"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Std::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code after Ctrl-C");
    let left: Vec<PathBuf> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn new_inside_an_existing_repository_adds_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    Std::new("git")
        .args(["init", "-q"])
        .current_dir(tmp.path())
        .status()
        .unwrap();
    nixflash(tmp.path())
        .args(["new", "fw", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains("enclosing git repository"));
    assert!(!tmp.path().join("fw/.git").exists());
    assert!(git_tracked(tmp.path()).contains(&"fw/flake.nix".to_string()));
}

#[test]
fn boards_lists_table_json_and_details() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .arg("boards")
        .assert()
        .success()
        .stdout(predicate::str::contains("uno"))
        .stdout(predicate::str::contains("Arduino Mega 2560"))
        .stdout(predicate::str::contains("esp32c6-devkitc-1"));
    let ids = board_ids();
    assert!(ids.len() >= 20, "{ids:?}");
    nixflash(tmp.path())
        .args(["boards", "show", "esp32c3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ESP32-C3-DevKitM-1 (esp32c3-devkitm-1)",
        ))
        .stdout(predicate::str::contains("303a:1001"))
        .stdout(predicate::str::contains("921600"));
}
