//! What `../shared` (beside the repository, on every developer machine and in CI) gives the tests:
//! the real upstream sources a generated project needs from GitHub (`fixtures/`: nixpkgs, crane,
//! rust-overlay, an avr-hal git bundle) and `tools/nix-offline`, which lets real Nix build a
//! generated flake here with the real crane and nixpkgs logic, only the downloads stood in for.
//!
//! Each is prepared once per test run (by the first test that needs it, in whichever test
//! process: see [`super::shared`]), under `CARGO_TARGET_TMPDIR`. A function returns `Err(why)`
//! when the machine lacks something, for [`super::skip`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{run_bounded, text};
use super::{on_path, repo, shared, tmp};

/// The flags that let any Nix 2.4+ use flakes.
pub const NIX_FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// `../shared`, if it is there.
pub fn shared() -> Result<PathBuf, String> {
    let dir = repo().join("../shared");
    if !dir.join("tools").is_dir() || !dir.join("fixtures").is_dir() {
        return Err(format!(
            "{} with tools/ and fixtures/ is missing (it sits beside the repository)",
            dir.display()
        ));
    }
    Ok(dir.canonicalize().unwrap())
}

/// The unpacked tree of `../shared/fixtures/<name>.tar.zst` (`nixpkgs`, `crane`,
/// `rust-overlay`), once per test binary.
pub fn fixture_tree(name: &'static str) -> Result<PathBuf, String> {
    let shared = shared()?;
    let tarball = shared.join(format!("fixtures/{name}.tar.zst"));
    if !tarball.is_file() {
        return Err(format!("{} is missing", tarball.display()));
    }
    if !on_path("zstd") {
        return Err(
            "zstd is not installed (apt install zstd), and the fixtures are .tar.zst".into(),
        );
    }
    let dir = tmp().join("fixtures");
    let tree = dir.join(name);
    let done = dir.join(format!("{name}.unpacked"));
    let _one = shared::lock(&format!("fixture-{name}"));
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&dir).unwrap();
        let o = run_bounded(
            Command::new("tar")
                .arg("--zstd")
                .arg("-xf")
                .arg(&tarball)
                .arg("-C")
                .arg(&dir),
            Duration::from_secs(300),
        );
        assert!(
            o.status.success(),
            "unpacking {}: {:?}",
            tarball.display(),
            text(&o)
        );
        std::fs::write(&done, "").unwrap();
    }
    Ok(tree)
}

/// A bare clone of `../shared/fixtures/avr-hal.bundle` (avr-hal up to the commit generated AVR
/// projects pin), made once (and kept between runs): what `url.<clone>.insteadOf` points
/// GitHub's URL at.
pub fn avr_hal_git() -> Result<PathBuf, String> {
    let bundle = shared()?.join("fixtures/avr-hal.bundle");
    if !bundle.is_file() {
        return Err(format!("{} is missing", bundle.display()));
    }
    let clone = tmp().join("avr-hal.git");
    let _one = shared::lock("avr-hal.git");
    if !clone.join("HEAD").exists() {
        let _ = std::fs::remove_dir_all(&clone);
        let o = run_bounded(
            Command::new("git")
                .args(["-c", "init.defaultBranch=main", "clone", "-q", "--bare"])
                .arg(&bundle)
                .arg(&clone),
            Duration::from_secs(120),
        );
        assert!(
            o.status.success(),
            "git clone of the avr-hal bundle: {:?}",
            text(&o)
        );
    }
    Ok(clone)
}

/// `../shared/tools/firmware-env.sh`, which makes the machine's cargo compile firmware with
/// Debian's rustc (`-Z build-std` under RUSTC_BOOTSTRAP).
pub fn firmware_env() -> Result<PathBuf, String> {
    let script = shared()?.join("tools/firmware-env.sh");
    if !Path::new("/usr/bin/rustc").exists() || !on_path("ld.lld") {
        return Err(
            "Debian's rustc or ld.lld is missing (../shared/tools/install-firmware-tools.sh)"
                .into(),
        );
    }
    Ok(script)
}

/// A folder made by `../shared/tools/nix-offline/setup.sh`: with its arguments, real Nix builds
/// a generated flake offline.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct NixOffline {
    pub dir: PathBuf,
    /// `--override-input` for nixpkgs (nix-offline's with tests/fixtures/nix-offline/overlay.nix
    /// on top), rust-overlay and crane, and `--no-write-lock-file`.
    pub override_args: Vec<String>,
    /// The HOME whose .gitconfig sends avr-hal's GitHub URL to the bundle.
    pub home: PathBuf,
    /// rustup's and cargo's homes, kept when HOME moves.
    rustup_home: PathBuf,
    cargo_home: PathBuf,
}

/// The nix-offline folder, set up once per test run (the first test that asks runs setup.sh).
pub fn nix_offline() -> Result<&'static NixOffline, String> {
    static SETUP: std::sync::OnceLock<Result<NixOffline, String>> = std::sync::OnceLock::new();
    SETUP
        .get_or_init(|| shared::once("nix-offline", set_up_nix_offline))
        .as_ref()
        .map_err(Clone::clone)
}

fn set_up_nix_offline() -> Result<NixOffline, String> {
    let setup = shared()?.join("tools/nix-offline/setup.sh");
    if !setup.is_file() {
        return Err(format!("{} is missing", setup.display()));
    }
    if !on_path("nix") {
        return Err("nix is not installed (../shared/tools/install-nix.sh)".into());
    }
    if !Path::new("/usr/lib/rustlib/src/rust/library/Cargo.lock").exists() {
        return Err("Debian's rustc with its std source is missing \
             (../shared/tools/install-firmware-tools.sh)"
            .into());
    }
    let dir = tmp().join("nix-offline");
    let o = run_bounded(
        Command::new("bash").arg(&setup).arg(&dir),
        Duration::from_secs(900),
    );
    let (out, err) = text(&o);
    if !o.status.success() {
        return Err(format!(
            "{} {} failed:\n{out}{err}",
            setup.display(),
            dir.display()
        ));
    }
    let args = std::fs::read_to_string(dir.join("override-args")).unwrap();
    let args = with_test_overlay(&dir, args.lines().map(str::to_string).collect());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    Ok(NixOffline {
        override_args: args,
        home: dir.join("home"),
        rustup_home: std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or(home.join(".rustup")),
        cargo_home: std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or(home.join(".cargo")),
        dir,
    })
}

/// nix-offline's `args` with its nixpkgs replaced by a copy that also has
/// tests/fixtures/nix-offline/overlay.nix: shellcheck, ravedude, espflash, nixfmt, flip-link and
/// picotool stood in (the slimmed nixpkgs cannot evaluate or build them), so that `nix flake
/// check` evaluates every output of a generated flake, simavr linked from the host (nixpkgs' cannot
/// be built here), and clippy given the stand-in toolchain's sysroot.
fn with_test_overlay(dir: &Path, args: Vec<String>) -> Vec<String> {
    let stand_in = dir.join("nixpkgs");
    let tests = dir.join("nixpkgs-tests");
    let _ = std::fs::remove_dir_all(&tests);
    super::copy_dir(&stand_in, &tests);
    std::fs::rename(tests.join("default.nix"), tests.join("stand-in.nix")).unwrap();
    let host = |tool: &str| {
        which::which(tool)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| format!("/{tool}-is-not-installed"))
    };
    // Tools the builds run, not only link: copied where Nix's build users can run them (cargo
    // installs them under a HOME they cannot enter).
    let tools = dir.join("host-tools");
    std::fs::create_dir_all(&tools).unwrap();
    let runnable = |tool: &str| match which::which(tool) {
        Ok(p) => {
            let copy = tools.join(tool);
            std::fs::copy(&p, &copy).unwrap();
            copy.display().to_string()
        }
        Err(_) => format!("/{tool}-is-not-installed"),
    };
    let overlay = std::fs::read_to_string(repo().join("tests/fixtures/nix-offline/overlay.nix"))
        .unwrap()
        .replace("@RAVEDUDE@", &host("ravedude"))
        .replace("@ESPFLASH@", &host("espflash"))
        .replace("@SIMAVR@", &host("simavr"))
        .replace("@QEMU@", &host("qemu-system-arm"))
        .replace("@PROBE_RS@", &host("probe-rs"))
        .replace("@FLIP_LINK@", &runnable("flip-link"))
        .replace("@ELF2UF2@", &runnable("elf2uf2-rs"));
    std::fs::write(tests.join("tests-overlay.nix"), overlay).unwrap();
    std::fs::write(
        tests.join("default.nix"),
        "# nix-offline's stand-in nixpkgs (stand-in.nix), with nixflash's test overlay on top:\n\
         # after nix-offline's own overlay, which stand-in.nix puts after the ones it is given.\n\
         args: (import ./stand-in.nix args).appendOverlays [ (import ./tests-overlay.nix) ]\n",
    )
    .unwrap();
    let o = run_bounded(
        Command::new("chmod")
            .arg("-R")
            .arg("a+rX")
            .arg(&tests)
            .arg(&tools),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let stand_in_arg = format!("path:{}", stand_in.display());
    args.into_iter()
        .map(|a| {
            if a == stand_in_arg {
                format!("path:{}", tests.display())
            } else {
                a
            }
        })
        .collect()
}

impl NixOffline {
    /// Sets HOME as nix-offline's README says, rustup's and cargo's homes staying where they are.
    pub fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("HOME", &self.home)
            .env("RUSTUP_HOME", &self.rustup_home)
            .env("CARGO_HOME", &self.cargo_home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("GIT_CONFIG_GLOBAL")
    }

    /// `nix` with flakes on, in `dir`, in nix-offline's environment (no override arguments).
    pub fn nix(&self, dir: &Path) -> Command {
        let mut c = Command::new("nix");
        c.args(NIX_FEATURES).current_dir(dir);
        self.env(&mut c);
        c
    }

    /// The nixflash binary, in `dir`, in nix-offline's environment.
    pub fn nixflash(&self, dir: &Path) -> Command {
        let mut c = super::nixflash();
        c.current_dir(dir);
        self.env(&mut c);
        c
    }
}
