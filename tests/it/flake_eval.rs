//! Real Nix on real flakes: nixflash's own flake.nix and the flake.nix that `nixflash new` writes.
//!
//! Every flake parses, and the Rust sources of a new project are rustfmt-clean (the generated
//! flake's `checks.fmt`). The pins in templates/pins.toml are the trees in ../shared/fixtures
//! (their narHash), and the pinned rust-overlay has every toolchain the board database names.
//!
//! The flakes are then evaluated offline with import-from-derivation disabled: crane and
//! rust-overlay come from flake.lock's own pins, which Nix finds in the store by their narHash
//! once the fixture trees are added (nothing is downloaded), and nixpkgs is the slimmed fixture
//! tree. The Arduino Uno project's arduino-hal comes from the avr-hal bundle in
//! ../shared/fixtures, through nix-offline's HOME. crane's split of dependencies and firmware
//! into two derivations is checked with dry runs, and `nix flake check --no-build` evaluates
//! every output (with the test overlay of tests/fixtures/nix-offline). Real builds are in
//! tests/nix_build.rs.
//!
//! What cannot run here fails, saying SKIPPED and why (see `common::skip`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nixflash::board::Database;
use nixflash::render::{self, Project};

use crate::common::offline::{fixture_tree, NIX_FEATURES};
use crate::common::skip;
use crate::sim::flake;

mod inputs;
use inputs::{flake_inputs, nar_hash, Inputs};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command, panicking with its output if it fails.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The Nix system name of this machine, as flake outputs are keyed.
fn nix_system() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    format!("{}-{os}", std::env::consts::ARCH)
}

#[test]
fn own_and_generated_flakes_parse() {
    if !installed("nix-instantiate") {
        return skip(
            "own_and_generated_flakes_parse",
            "nix-instantiate is not installed (../shared/tools/install-nix.sh installs Nix)",
        );
    }
    let parse = |file: &Path, what: &str| {
        run(
            Command::new("nix-instantiate").arg("--parse").arg(file),
            &format!("nix-instantiate --parse of {what}"),
        );
    };
    parse(
        &manifest_dir().join("flake.nix"),
        "nixflash's own flake.nix",
    );

    let tmp = tempfile::tempdir().unwrap();
    let db = Database::builtin().unwrap();
    let mut parsed = 0;
    // Many option combinations render the same text: each is checked once.
    let mut seen = std::collections::HashSet::new();
    for (board, project) in crate::common::variants(&db) {
        let files = render::render_sources(board, &project).unwrap();
        let flake = files
            .iter()
            .find(|f| f.path == Path::new("flake.nix"))
            .unwrap_or_else(|| panic!("no flake.nix rendered for board {}", board.id));
        if !seen.insert(flake.contents.clone()) {
            continue;
        }
        let file = tmp.path().join(format!("{}.nix", board.id));
        fs::write(&file, &flake.contents).unwrap();
        parse(
            &file,
            &format!("the flake.nix rendered for board {}", board.id),
        );
        parsed += 1;
    }
    assert!(parsed > 0, "the board database is empty");
}

/// The generated flake's `checks.fmt` runs `cargo fmt --check` on the project: a new project
/// must pass it. rustfmt checks copies of the rendered sources (a project's in one folder) without
/// the project's rust-toolchain.toml pin (which rustup may be unable to download). Files, not
/// stdin: given stdin, `rustfmt --check` prints the diff but exits 0.
#[test]
fn generated_sources_pass_the_flake_fmt_check() {
    if !installed("rustfmt") {
        return skip(
            "generated_sources_pass_the_flake_fmt_check",
            "rustfmt is not installed (rustup component add rustfmt)",
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::builtin().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    // Many option combinations render the same text: each is checked once.
    let mut seen = std::collections::HashSet::new();
    for (board, project) in crate::common::variants(&db) {
        let files = render::render_sources(board, &project).unwrap();
        let manifest = files
            .iter()
            .find(|f| f.path == Path::new("Cargo.toml"))
            .expect("a rendered Cargo.toml");
        let manifest: toml::Table = toml::from_str(&manifest.contents).unwrap();
        let edition = manifest["package"]["edition"].as_str().unwrap().to_string();
        let sources = files
            .iter()
            .filter(|f| f.path.extension() == Some("rs".as_ref()));
        // The project's sources in their places: rustfmt reads the modules src/main.rs declares.
        let dir = tmp.path().join(format!("{}-{}", board.id, checked));
        for f in sources.clone() {
            fs::create_dir_all(dir.join(&f.path).parent().unwrap()).unwrap();
            fs::write(dir.join(&f.path), &f.contents).unwrap();
        }
        for f in sources.filter(|f| seen.insert(f.contents.clone())) {
            let copy = dir.join(&f.path);
            checked += 1;
            let out = Command::new("rustfmt")
                .current_dir(tmp.path())
                .args(["--check", "--edition", &edition])
                .arg(&copy)
                .output()
                .expect("start rustfmt");
            if !out.status.success() {
                failures.push(format!(
                    "{} for board {} (templates/{}/):\n{}{}",
                    f.path.display(),
                    board.id,
                    board.family_id,
                    text(&out.stdout),
                    text(&out.stderr)
                ));
            }
        }
    }
    assert!(checked > 0, "no Rust source rendered");
    assert!(
        failures.is_empty(),
        "rendered sources are not rustfmt-clean, so `nix flake check` (checks.fmt) fails for a new \
         project; run rustfmt on the template:\n{}",
        failures.join("\n")
    );
}

/// The pins new projects get are the trees the tests use, nixflash's own flake.lock agrees with
/// them, and the pinned rust-overlay knows every toolchain (with the components the templates
/// ask for) that the board database pins.
#[test]
fn pins_are_the_fixture_trees_and_know_every_pinned_toolchain() {
    let test = "pins_are_the_fixture_trees_and_know_every_pinned_toolchain";
    if !installed("nix") {
        return skip(
            test,
            "nix is not installed (../shared/tools/install-nix.sh)",
        );
    }
    let pins = nixflash::pins::pins().unwrap();
    let mut trees = std::collections::BTreeMap::new();
    for name in ["crane", "rust-overlay"] {
        let tree = match fixture_tree(name) {
            Ok(t) => t,
            Err(why) => return skip(test, &why),
        };
        assert_eq!(
            nar_hash(&tree),
            pins[name].nar_hash,
            "templates/pins.toml's nar-hash for {name} is not that of ../shared/fixtures/{name}"
        );
        trees.insert(name, tree);
    }

    // Every toolchain of the board database has a manifest in the pinned rust-overlay, with the
    // components rust-toolchain.toml asks for.
    let overlay = &trees["rust-overlay"];
    let db = Database::builtin().unwrap();
    let mut checked = BTreeSet::new();
    for board in db.boards() {
        let channel = &board.rust.toolchain;
        let manifest = match channel.strip_prefix("nightly-") {
            Some(date) => overlay.join(format!("manifests/nightly/{}/{date}.nix", &date[..4])),
            None => overlay.join(format!("manifests/stable/{channel}.nix")),
        };
        let text = fs::read_to_string(&manifest).unwrap_or_else(|_| {
            panic!(
                "the pinned rust-overlay ({}) has no manifest for {channel} (board {}): {} is \
                 missing",
                pins["rust-overlay"].rev,
                board.id,
                manifest.display()
            )
        });
        let files = render::render_sources(board, &Project::new("p")).unwrap();
        let toolchain_file = files
            .iter()
            .find(|f| f.path == Path::new("rust-toolchain.toml"))
            .unwrap();
        let t: toml::Table = toml::from_str(&toolchain_file.contents).unwrap();
        for c in t["toolchain"]["components"].as_array().unwrap() {
            let c = c.as_str().unwrap();
            assert!(
                text.contains(&format!("{c}=")) || text.contains(&format!("{c}-preview=")),
                "{channel} in the pinned rust-overlay has no component {c} (board {})",
                board.id
            );
        }
        checked.insert(channel.clone());
    }
    crate::common::measured(&format!(
        "the pinned rust-overlay has manifests for {checked:?}"
    ));

    // nixflash's own flake.lock pins the same crane and nixpkgs.
    let own: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(manifest_dir().join("flake.lock")).unwrap())
            .unwrap();
    for name in ["crane", "nixpkgs"] {
        let locked = &own["nodes"][name]["locked"];
        assert_eq!(
            locked["rev"],
            pins[name].rev.as_str(),
            "flake.lock's {name}"
        );
        assert_eq!(
            locked["narHash"],
            pins[name].nar_hash.as_str(),
            "flake.lock's {name}"
        );
    }
}

#[test]
fn own_flake_evaluates_without_ifd() {
    let Some(inputs) = flake_inputs("own_flake_evaluates_without_ifd") else {
        return;
    };
    // Every output of every system: the package, its checks (tests, clippy, fmt), the dev shell.
    // crane comes from flake.lock's pin, found in the store by its narHash.
    let out = run(
        Command::new("nix")
            .current_dir(manifest_dir())
            .args(["flake", "check", "--no-build", "--all-systems"])
            .args(inputs.eval_flags()),
        "nix flake check --no-build of nixflash's own flake",
    );
    let log = text(&out.stderr);
    for check in [
        "nixflash",
        "nixflash-clippy",
        "nixflash-fmt",
        "nixflash-test",
        "nixflash-test-offline",
    ] {
        assert!(
            log.contains(&format!("checks.{}.{check}", nix_system())),
            "nix flake check did not evaluate checks.{}.{check}:\n{log}",
            nix_system()
        );
    }
    // The sandboxed integration tests name modules of tests/it that exist: a filter that matches
    // nothing would pass with no test run.
    let out = run(
        Command::new("nix")
            .current_dir(manifest_dir())
            .args([
                "eval",
                "--raw",
                &format!(".#checks.{}.nixflash-test-offline.checkPhase", nix_system()),
            ])
            .args(inputs.eval_flags()),
        "the offline tests' arguments",
    );
    let args = text(&out.stdout);
    let modules = args
        .split_once("--test it -- ")
        .unwrap_or_else(|| panic!("not the tests/it binary: {args}"))
        .1;
    let modules: Vec<&str> = modules
        .split_whitespace()
        .take_while(|m| m.ends_with("::"))
        .collect();
    assert!(!modules.is_empty(), "{args}");
    for m in modules {
        let file = manifest_dir().join(format!("tests/it/{}.rs", m.trim_end_matches("::")));
        assert!(
            file.exists(),
            "checks.nixflash-test-offline runs `{m}`, but there is no {}",
            file.display()
        );
    }
}

fn nixflash_new(inputs: &Inputs, root: &Path, name: &str, board: &str) -> PathBuf {
    let mut cmd = inputs.offline.nixflash(root);
    run(
        cmd.args(["new", name, "--board", board]),
        &format!("nixflash new {name} --board {board}"),
    );
    root.join(name)
}

/// Derivations that `nix build --dry-run` says it would build.
fn dry_run(dir: &Path, inputs: &Inputs) -> BTreeSet<String> {
    let out = run(
        inputs
            .command("nix", dir)
            .args(["build", "--dry-run", ".#default"])
            .args(inputs.eval_flags()),
        "nix build --dry-run .#default",
    );
    text(&out.stderr)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("/nix/store/") && l.ends_with(".drv"))
        .map(String::from)
        .collect()
}

/// The derivations of the firmware, of its dependencies and of the toolchain's rust-src.
fn package_drvs(dir: &Path, inputs: &Inputs) -> [String; 3] {
    let out = run(
        inputs
            .command("nix", dir)
            .args(["eval", "--json", ".#packages", "--apply"])
            .arg(format!(
                "ps: let p = ps.{}; in [ p.default.drvPath p.default.cargoArtifacts.drvPath \
                 p.rust-src.drvPath ]",
                nix_system()
            ))
            .args(inputs.eval_flags()),
        "nix eval of the packages' derivations",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Evaluates a generated project's flake and checks crane's dependencies/firmware split; with
/// `sim` (a board with a simulator), the simulator and `checks.sim` too.
fn check_project(dir: &Path, name: &str, inputs: &Inputs, sim: Option<&flake::Expect>) {
    let sys = nix_system();
    // `nix eval .#packages.<system>.default.drvPath`, to the letter:
    let out = run(
        inputs
            .command("nix", dir)
            .args(["eval", "--json"])
            .arg(format!(".#packages.{sys}.default.drvPath"))
            .args(inputs.eval_flags()),
        &format!("nix eval .#packages.{sys}.default.drvPath for {name}"),
    );
    let firmware: String = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        firmware.ends_with(&format!("-{name}-0.1.0.drv")),
        "unexpected firmware derivation {firmware}"
    );
    let out = run(
        inputs
            .command("nix", dir)
            .args(["eval", "--json", ".#checks"])
            .arg("--apply")
            .arg(format!(
                "c: {{ firmware = c.{sys}.firmware.drvPath; fmt = c.{sys}.fmt.drvPath; \
                 clippy = c.{sys}.clippy.drvPath; }}"
            ))
            .args(inputs.eval_flags()),
        &format!("nix eval of {name}'s checks"),
    );
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checks["firmware"], firmware.as_str());
    // AVR: checks.sim runs the firmware in packages.simulator (nixpkgs' simavr).
    let nix = |args: &[&str]| {
        let what = format!("nix {} for {name}", args.join(" "));
        run(
            inputs
                .command("nix", dir)
                .args(args)
                .args(inputs.eval_flags()),
            &what,
        )
        .stdout
    };
    crate::sim::flake::check_outputs(&nix, &sys, name, &firmware, sim);
    for (check, suffix) in [("fmt", "fmt"), ("clippy", "clippy")] {
        assert!(
            checks[check]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{name}-{suffix}-0.1.0.drv")),
            "{checks}"
        );
    }
    let [firmware_before, deps_before, rust_src] = package_drvs(dir, inputs);
    assert_eq!(firmware_before, firmware);
    assert!(
        rust_src.contains("-rust-src-"),
        "unexpected rust-src derivation {rust_src}"
    );

    // Every output, the flash app and the dev shell included, with nix-offline's inputs and the
    // packages the slimmed nixpkgs cannot evaluate stood in by the test overlay
    // (tests/fixtures/nix-offline). The real pins were evaluated above.
    let out = run(
        inputs
            .command("nix", dir)
            .args(["flake", "check", "--no-build"])
            .args(NIX_FEATURES)
            .args(["--option", "allow-import-from-derivation", "false"])
            .args(&inputs.offline.override_args),
        &format!("nix flake check --no-build of {name}"),
    );
    let log = text(&out.stderr);
    for output in ["apps.", "devShells.", "formatter.", "packages.", "checks."] {
        assert!(
            log.contains(&format!("{output}{sys}")),
            "{output}{sys} not checked:\n{log}"
        );
    }
    // crane's split: the dependencies build in a derivation of their own (buildDepsOnly, named
    // <name>-deps), which an edit of src/main.rs must leave alone. Nothing can be built here,
    // so the dry run lists every derivation; what matters is what changes after the edit.
    assert!(
        deps_before.ends_with(&format!("-{name}-deps-0.1.0.drv")),
        "unexpected dependencies derivation {deps_before}"
    );
    let before = dry_run(dir, inputs);
    assert!(
        before.contains(&firmware),
        "the dry run does not list {firmware}"
    );
    let main = dir.join("src/main.rs");
    let mut source = fs::read_to_string(&main).unwrap();
    source.push_str("\n// Edited by tests/flake_eval.rs: only the firmware may need a rebuild.\n");
    fs::write(&main, source).unwrap();
    run(
        inputs.command("git", dir).args(["add", "src/main.rs"]),
        "git add",
    );
    let after = dry_run(dir, inputs);
    let [firmware_after, deps_after, _] = package_drvs(dir, inputs);
    assert_ne!(
        firmware_after, firmware_before,
        "editing src/main.rs left the firmware unchanged"
    );
    assert_eq!(
        deps_after, deps_before,
        "editing src/main.rs changed the dependencies derivation"
    );
    let added: Vec<_> = after.difference(&before).collect();
    assert_eq!(
        added,
        vec![&firmware_after],
        "after editing src/main.rs, the dry run should list one new derivation, the firmware"
    );
}

#[test]
fn generated_flakes_evaluate_without_ifd() {
    let Some(inputs) = flake_inputs("generated_flakes_evaluate_without_ifd") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();

    let c3 = nixflash_new(inputs, tmp.path(), "c3", "esp32c3");
    check_project(&c3, "c3", inputs, None);

    // The Pico's firmware derivation names nixpkgs' own flip-link and picotool, evaluated here.
    let pico = nixflash_new(inputs, tmp.path(), "pico", "pico");
    check_project(&pico, "pico", inputs, None);

    let uno = nixflash_new(inputs, tmp.path(), "uno", "uno");
    // The flake reads nix/std-Cargo.lock, the pinned toolchain's standard library lock, for
    // -Z build-std. `nixflash build` writes it from packages.rust-src, which cannot be
    // downloaded here; evaluation only needs a valid standard library lock (its crates become
    // fetch derivations), so Debian's toolchain's will do (tests/nix_build.rs builds with it).
    fs::create_dir_all(uno.join("nix")).unwrap();
    fs::copy(
        "/usr/lib/rustlib/src/rust/library/Cargo.lock",
        uno.join("nix/std-Cargo.lock"),
    )
    .unwrap();
    run(
        inputs
            .command("git", &uno)
            .args(["add", "nix/std-Cargo.lock"]),
        "git add",
    );
    check_project(&uno, "uno", inputs, Some(&flake::UNO));
}

/// The micro:bit v1's flake runs its firmware in QEMU (`checks.sim`, `packages.simulator`:
/// nixpkgs' qemu, evaluated with the fixture nixpkgs; `nix flake check --no-build` with the test
/// overlay's link to the host's qemu-system-arm); another Cortex-M board's has neither.
#[test]
fn microbit_v1_flake_runs_its_firmware_in_qemu() {
    let Some(inputs) = flake_inputs("microbit_v1_flake_runs_its_firmware_in_qemu") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mb = nixflash_new(inputs, tmp.path(), "mb", "microbit-v1");
    check_project(&mb, "mb", inputs, Some(&flake::MICROBIT_V1));
    let nucleo = nixflash_new(inputs, tmp.path(), "nucleo", "nucleo-f401re");
    check_project(&nucleo, "nucleo", inputs, None);
}
