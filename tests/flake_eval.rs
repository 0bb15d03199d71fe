//! Real Nix on real flakes: nixflash's own flake.nix and the flake.nix that `nixflash new` writes.
//!
//! Always (when `nix-instantiate` / `rustfmt` are installed): every flake parses, and the Rust
//! sources of a new project are rustfmt-clean (the generated flake's `checks.fmt`).
//!
//! With `NIXFLASH_TEST_FLAKE_INPUTS` naming a folder that holds `nixpkgs/`, `crane/` and
//! `rust-overlay/` source trees (scripts/flake-inputs.sh makes one from git mirrors), the flakes
//! are evaluated offline against them with import-from-derivation disabled, and crane's split of
//! dependencies and firmware into two derivations is checked. The Arduino Uno project depends on
//! arduino-hal from GitHub: it also needs `NIXFLASH_TEST_AVR_HAL_GIT`, a git mirror of
//! github.com/rahix/avr-hal. What cannot run says SKIPPED on stderr, with the reason.
//!
//! Nothing can be built here (no binary cache, no network): these tests evaluate and dry-run only.

/// Says that a test, or a part of one, was skipped and why. It writes to the process's stderr
/// itself: libtest captures `eprintln!` of passing tests, which would hide the note.
macro_rules! skip_note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use assert_cmd::cargo::CommandCargoExt;
use nixflash::board::Database;
use nixflash::render::{self, Project};

const NIX_FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

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
        skip_note!("SKIPPED: nix-instantiate is not installed (../shared/tools/install-nix.sh installs Nix)");
        return;
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
    for board in db.boards() {
        let files = render::render_sources(board, &Project::new("blinky")).unwrap();
        let flake = files
            .iter()
            .find(|f| f.path == Path::new("flake.nix"))
            .unwrap_or_else(|| panic!("no flake.nix rendered for board {}", board.id));
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
/// must pass it. rustfmt checks copies of the rendered sources in a folder without the project's
/// rust-toolchain.toml pin (which rustup may be unable to download). Files, not stdin: given
/// stdin, `rustfmt --check` prints the diff but exits 0.
#[test]
fn generated_sources_pass_the_flake_fmt_check() {
    if !installed("rustfmt") {
        skip_note!("SKIPPED: rustfmt is not installed (rustup component add rustfmt)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::builtin().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for board in db.boards() {
        let files = render::render_sources(board, &Project::new("blinky")).unwrap();
        let manifest = files
            .iter()
            .find(|f| f.path == Path::new("Cargo.toml"))
            .expect("a rendered Cargo.toml");
        let manifest: toml::Table = toml::from_str(&manifest.contents).unwrap();
        let edition = manifest["package"]["edition"].as_str().unwrap().to_string();
        for f in files
            .iter()
            .filter(|f| f.path.extension() == Some("rs".as_ref()))
        {
            let copy = tmp.path().join(format!("{}-{}", board.id, checked));
            fs::write(&copy, &f.contents).unwrap();
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
                    board.family.as_str(),
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

/// The flake inputs, added to the Nix store once per test run.
struct Inputs {
    dir: PathBuf,
    nixpkgs: String,
    crane: String,
    rust_overlay: String,
    /// Why `nix flake check` cannot evaluate every output with this nixpkgs, if it cannot.
    nixpkgs_incomplete: Option<String>,
}

impl Inputs {
    /// `--override-input` for each input, and no import-from-derivation.
    fn eval_flags(&self, with_rust_overlay: bool) -> Vec<String> {
        let mut v: Vec<String> = NIX_FEATURES.iter().map(|s| s.to_string()).collect();
        v.extend(["--option", "allow-import-from-derivation", "false"].map(String::from));
        let mut inputs = vec![("nixpkgs", &self.nixpkgs), ("crane", &self.crane)];
        if with_rust_overlay {
            inputs.push(("rust-overlay", &self.rust_overlay));
        }
        for (name, path) in inputs {
            v.extend([
                "--override-input".to_string(),
                name.to_string(),
                path.clone(),
            ]);
        }
        v
    }
}

fn add_to_store(dir: &Path) -> String {
    // A store path as input is hashed once here; a `path:` on a folder outside the store would be
    // re-hashed by every nix call.
    let out = run(
        Command::new("nix")
            .args(NIX_FEATURES)
            .args(["store", "add-path", "--name", "source"])
            .arg(dir),
        &format!("adding {} to the Nix store", dir.display()),
    );
    text(&out.stdout).trim().to_string()
}

/// The inputs named by NIXFLASH_TEST_FLAKE_INPUTS, or None (after saying SKIPPED) when unset.
fn flake_inputs(test: &str) -> Option<&'static Inputs> {
    static INPUTS: OnceLock<Option<Inputs>> = OnceLock::new();
    let inputs = INPUTS.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os("NIXFLASH_TEST_FLAKE_INPUTS")?);
        for name in ["nixpkgs", "crane", "rust-overlay"] {
            assert!(
                dir.join(name).join("flake.nix").is_file(),
                "NIXFLASH_TEST_FLAKE_INPUTS={} has no {name}/flake.nix: it must hold nixpkgs/, \
                 crane/ and rust-overlay/ source trees (scripts/flake-inputs.sh makes them)",
                dir.display()
            );
        }
        assert!(
            installed("nix"),
            "NIXFLASH_TEST_FLAKE_INPUTS is set but nix is not installed"
        );
        // neg-serg/nixpkgs-slim (the nixpkgs that can be had offline here) lacks
        // hackage-packages.nix, which the shellcheck run of writeShellApplication needs, and
        // leaves most pkgs/by-name packages (ravedude, espflash) out through a whitelist.
        let np = dir.join("nixpkgs");
        let by_name =
            fs::read_to_string(np.join("pkgs/top-level/by-name-overlay.nix")).unwrap_or_default();
        let nixpkgs_incomplete = if !np
            .join("pkgs/development/haskell-modules/hackage-packages.nix")
            .is_file()
        {
            Some("it has no pkgs/development/haskell-modules/hackage-packages.nix (nixpkgs-slim)")
        } else if by_name.contains("whitelist") {
            Some("its pkgs/by-name overlay has a whitelist (nixpkgs-slim)")
        } else {
            None
        };
        Some(Inputs {
            nixpkgs: add_to_store(&np),
            crane: add_to_store(&dir.join("crane")),
            rust_overlay: add_to_store(&dir.join("rust-overlay")),
            nixpkgs_incomplete: nixpkgs_incomplete.map(String::from),
            dir,
        })
    });
    if inputs.is_none() {
        skip_note!(
            "SKIPPED: {test}: NIXFLASH_TEST_FLAKE_INPUTS is unset (a folder with nixpkgs/, crane/ and \
             rust-overlay/ trees; scripts/flake-inputs.sh makes one)"
        );
    }
    inputs.as_ref()
}

#[test]
fn own_flake_evaluates_without_ifd() {
    let Some(inputs) = flake_inputs("own_flake_evaluates_without_ifd") else {
        return;
    };
    // Every output of every system: the package, its checks (tests, clippy, fmt), the dev shell.
    let out = run(
        Command::new("nix")
            .current_dir(manifest_dir())
            .args(["flake", "check", "--no-build", "--all-systems"])
            .args(inputs.eval_flags(false)),
        "nix flake check --no-build of nixflash's own flake",
    );
    let log = text(&out.stderr);
    for check in [
        "nixflash",
        "nixflash-clippy",
        "nixflash-fmt",
        "nixflash-test",
    ] {
        assert!(
            log.contains(&format!("checks.{}.{check}", nix_system())),
            "nix flake check did not evaluate checks.{}.{check}:\n{log}",
            nix_system()
        );
    }

    // The lock's crane is the tree the test was given, if it is the same commit: Nix then finds
    // it in the store by its narHash (added above), the way it would check a download.
    let lock: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(manifest_dir().join("flake.lock")).unwrap())
            .unwrap();
    let locked = &lock["nodes"]["crane"]["locked"];
    let rev_file = inputs.dir.join("crane.rev");
    match fs::read_to_string(&rev_file) {
        Ok(rev) if rev.trim() == locked["rev"].as_str().unwrap() => {
            let out = run(
                Command::new("nix")
                    .args(NIX_FEATURES)
                    .args(["hash", "path"])
                    .arg(inputs.dir.join("crane")),
                "nix hash path of crane",
            );
            assert_eq!(
                text(&out.stdout).trim(),
                locked["narHash"].as_str().unwrap(),
                "flake.lock's narHash for crane is not that of crane's tree at the locked commit"
            );
        }
        _ => skip_note!(
            "SKIPPED: flake.lock's crane narHash: {} does not name the locked commit {}",
            rev_file.display(),
            locked["rev"]
        ),
    }
}

/// Environment for commands run on a generated project: a private HOME (its .gitconfig maps
/// GitHub URLs to local mirrors for builtins.fetchGit), the caller's rustup, cargo and caches.
struct ProjectEnv {
    home: PathBuf,
    vars: Vec<(String, PathBuf)>,
}

impl ProjectEnv {
    fn new(root: &Path) -> ProjectEnv {
        let home = root.join("home");
        fs::create_dir_all(&home).unwrap();
        let mut vars = Vec::new();
        let real_home = std::env::var_os("HOME").map(PathBuf::from);
        // rustup and cargo find their homes under HOME unless told: tell them before HOME moves.
        for (var, sub) in [
            ("RUSTUP_HOME", ".rustup"),
            ("CARGO_HOME", ".cargo"),
            ("XDG_CACHE_HOME", ".cache"),
        ] {
            let value = std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| real_home.as_ref().map(|h| h.join(sub)));
            if let Some(v) = value {
                vars.push((var.to_string(), v));
            }
        }
        vars.push(("HOME".to_string(), home.clone()));
        ProjectEnv { home, vars }
    }

    fn command(&self, program: &str, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("GIT_CONFIG_GLOBAL");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    fn git_insteadof(&self, mirror: &Path, url: &str) {
        run(
            self.command("git", &self.home)
                .args(["config", "--global"])
                .arg(format!("url.{}.insteadOf", mirror.display()))
                .arg(url),
            "git config insteadOf",
        );
    }
}

fn nixflash_new(env: &ProjectEnv, root: &Path, name: &str, board: &str) -> PathBuf {
    let mut cmd = Command::cargo_bin("nixflash").unwrap();
    cmd.current_dir(root).env("HOME", &env.home);
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    run(
        cmd.args(["new", name, "--board", board]),
        &format!("nixflash new {name} --board {board}"),
    );
    root.join(name)
}

/// Derivations that `nix build --dry-run` says it would build.
fn dry_run(env: &ProjectEnv, dir: &Path, inputs: &Inputs) -> BTreeSet<String> {
    let out = run(
        env.command("nix", dir)
            .args(["build", "--dry-run", ".#default"])
            .args(inputs.eval_flags(true)),
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
fn package_drvs(env: &ProjectEnv, dir: &Path, inputs: &Inputs) -> [String; 3] {
    let out = run(
        env.command("nix", dir)
            .args(["eval", "--json", ".#packages", "--apply"])
            .arg(format!(
                "ps: let p = ps.{}; in [ p.default.drvPath p.default.cargoArtifacts.drvPath \
                 p.rust-src.drvPath ]",
                nix_system()
            ))
            .args(inputs.eval_flags(true)),
        "nix eval of the packages' derivations",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Evaluates a generated project's flake and checks crane's dependencies/firmware split.
fn check_project(env: &ProjectEnv, dir: &Path, name: &str, inputs: &Inputs) {
    let sys = nix_system();
    // The outputs that evaluate with any nixpkgs: the firmware, the toolchain's rust-src and the
    // formatting check (the firmware check is the firmware itself).
    // `nix eval .#packages.<system>.default.drvPath`, to the letter:
    let out = run(
        env.command("nix", dir)
            .args(["eval", "--json"])
            .arg(format!(".#packages.{sys}.default.drvPath"))
            .args(inputs.eval_flags(true)),
        &format!("nix eval .#packages.{sys}.default.drvPath for {name}"),
    );
    let firmware: String = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        firmware.ends_with(&format!("-{name}-0.1.0.drv")),
        "unexpected firmware derivation {firmware}"
    );
    let out = run(
        env.command("nix", dir)
            .args(["eval", "--json", ".#checks"])
            .arg("--apply")
            .arg(format!(
                "c: {{ firmware = c.{sys}.firmware.drvPath; fmt = c.{sys}.fmt.drvPath; }}"
            ))
            .args(inputs.eval_flags(true)),
        &format!("nix eval of {name}'s checks"),
    );
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checks["firmware"], firmware.as_str());
    assert!(checks["fmt"]
        .as_str()
        .unwrap()
        .ends_with(&format!("-{name}-fmt-0.1.0.drv")));
    let [firmware_before, deps_before, rust_src] = package_drvs(env, dir, inputs);
    assert_eq!(firmware_before, firmware);
    assert!(
        rust_src.contains("-rust-src-"),
        "unexpected rust-src derivation {rust_src}"
    );

    match &inputs.nixpkgs_incomplete {
        None => {
            run(
                env.command("nix", dir)
                    .args(["flake", "check", "--no-build"])
                    .args(inputs.eval_flags(true)),
                &format!("nix flake check --no-build of {name}"),
            );
        }
        Some(why) => skip_note!(
            "SKIPPED: nix flake check --no-build of {name} (flash script, flasher, dev shell): \
             the given nixpkgs cannot evaluate them because {why}; evaluated the firmware, \
             rust-src and the fmt check only"
        ),
    }

    // crane's split: the dependencies build in a derivation of their own (buildDepsOnly, named
    // <name>-deps), which an edit of src/main.rs must leave alone. Nothing can be built here,
    // so the dry run lists every derivation; what matters is what changes after the edit.
    assert!(
        deps_before.ends_with(&format!("-{name}-deps-0.1.0.drv")),
        "unexpected dependencies derivation {deps_before}"
    );
    let before = dry_run(env, dir, inputs);
    assert!(
        before.contains(&firmware),
        "the dry run does not list {firmware}"
    );
    let main = dir.join("src/main.rs");
    let mut source = fs::read_to_string(&main).unwrap();
    source.push_str("\n// Edited by tests/flake_eval.rs: only the firmware may need a rebuild.\n");
    fs::write(&main, source).unwrap();
    run(
        env.command("git", dir).args(["add", "src/main.rs"]),
        "git add",
    );
    let after = dry_run(env, dir, inputs);
    let [firmware_after, deps_after, _] = package_drvs(env, dir, inputs);
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

/// A standard library Cargo.lock, for the Uno project's nix/std-Cargo.lock.
fn std_lock() -> Option<PathBuf> {
    // Debian's rust-web-src (/usr/src/rustc-<version>/library/Cargo.lock), else the rust-src
    // component of the default toolchain.
    let mut candidates: Vec<PathBuf> = fs::read_dir("/usr/src")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("rustc-"))
        .map(|e| e.path().join("library/Cargo.lock"))
        .collect();
    candidates.sort();
    if let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() {
        let sysroot = text(&out.stdout).trim().to_string();
        candidates.push(Path::new(&sysroot).join("lib/rustlib/src/rust/library/Cargo.lock"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

#[test]
fn generated_flakes_evaluate_without_ifd() {
    let Some(inputs) = flake_inputs("generated_flakes_evaluate_without_ifd") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let env = ProjectEnv::new(tmp.path());

    let c3 = nixflash_new(&env, tmp.path(), "c3", "esp32c3");
    check_project(&env, &c3, "c3", inputs);

    let Some(mirror) = std::env::var_os("NIXFLASH_TEST_AVR_HAL_GIT").map(PathBuf::from) else {
        skip_note!(
            "SKIPPED: the Arduino Uno flake: NIXFLASH_TEST_AVR_HAL_GIT is unset (a git mirror of \
             github.com/rahix/avr-hal, which crane fetches at evaluation time)"
        );
        return;
    };
    let Some(lock) = std_lock() else {
        skip_note!(
            "SKIPPED: the Arduino Uno flake: no standard library Cargo.lock found (Debian's \
             rust-web-src in /usr/src/rustc-*/library, or rustup component add rust-src)"
        );
        return;
    };
    let uno = nixflash_new(&env, tmp.path(), "uno", "uno");
    // The flake reads nix/std-Cargo.lock, the pinned toolchain's standard library lock, for
    // -Z build-std. `nixflash build` writes it from packages.rust-src, which cannot be built
    // here; evaluation only needs a valid standard library lock (its crates become fetch
    // derivations), so another toolchain's will do. A build needs the pinned toolchain's.
    fs::create_dir_all(uno.join("nix")).unwrap();
    fs::copy(&lock, uno.join("nix/std-Cargo.lock")).unwrap();
    run(
        env.command("git", &uno).args(["add", "nix/std-Cargo.lock"]),
        "git add",
    );
    // crane fetches git dependencies at evaluation time with builtins.fetchGit, which runs git:
    // point the URL in Cargo.lock at the mirror.
    let cargo_lock = fs::read_to_string(uno.join("Cargo.lock")).unwrap();
    let url = cargo_lock
        .lines()
        .filter_map(|l| l.strip_prefix("source = \"git+"))
        .map(|s| s.split(['?', '#', '"']).next().unwrap().to_string())
        .find(|u| u.contains("avr-hal"))
        .expect("the Uno project's Cargo.lock has avr-hal as a git source");
    env.git_insteadof(&mirror, &url);
    check_project(&env, &uno, "uno", inputs);
}
