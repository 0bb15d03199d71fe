//! The project files a build reads, checked by `nixflash doctor`: there and readable.

use std::path::Path;

use super::{Check, Status};
use crate::nix::std_lock;

/// The files a build reads besides flake.nix (which the evaluation checks) and Cargo.toml (read
/// first): Cargo.lock, .cargo/config.toml, flake.lock, rust-toolchain.toml and nix/std-Cargo.lock,
/// each there (the locks) and readable. Only what is
/// wrong is reported; and whether the flake can be evaluated as the files are (a missing
/// flake.lock of nixflash's inputs is written from the pins by a build, where an evaluation
/// would lock them to their newest revisions).
pub(super) fn file_checks(
    root: &Path,
    flake_dir: Option<&Path>,
    board: Option<&str>,
) -> (Vec<Check>, bool) {
    let mut out = Vec::new();
    let mut evaluable = true;
    let cargo_lock = root.join("Cargo.lock");
    if !cargo_lock.is_file() {
        out.push(Check::fail(
            format!("{} has no Cargo.lock, which the flake builds from", root.display()),
            "cargo generate-lockfile (it needs the network), or `nixflash init --board <id>` in a package without dependencies of its own",
        ));
    }
    let restore = |file: &Path, again: &str| {
        format!(
            "if git has a good copy: git -C {} checkout -- {}; or make it again: {again}",
            file.parent().unwrap_or(root).display(),
            file.file_name().unwrap_or_default().to_string_lossy()
        )
    };
    let mut tomls = vec![(
        cargo_lock,
        restore(
            &root.join("Cargo.lock"),
            "cargo generate-lockfile (it needs the network)",
        ),
    )];
    let init = |file: &Path| {
        format!(
            "nixflash init --board {} writes {} again",
            board.unwrap_or("<id>"),
            file.display()
        )
    };
    let config = root.join(".cargo/config.toml");
    tomls.push((config.clone(), restore(&config, &init(&config))));
    if let Some(dir) = flake_dir {
        let toolchain = dir.join("rust-toolchain.toml");
        let again = init(&toolchain);
        tomls.push((toolchain, restore(&dir.join("rust-toolchain.toml"), &again)));
        let std = dir.join(std_lock::STD_LOCK);
        tomls.push((
            std.clone(),
            restore(
                &std,
                "delete it: nixflash build copies it again from the toolchain's rust-src",
            ),
        ));
    }
    out.extend(
        tomls
            .into_iter()
            .filter_map(|(file, fix)| toml_check(&file, fix)),
    );
    if let Some(dir) = flake_dir {
        if let Some(check) = flake_lock_check(dir, &mut evaluable) {
            out.push(check);
        }
    }
    evaluable &= out.iter().all(|c| c.status != Status::Fail);
    (out, evaluable)
}

/// A failure if `file` is there but is not valid TOML, with `fix` as its hint.
fn toml_check(file: &Path, fix: String) -> Option<Check> {
    let text = std::fs::read_to_string(file).ok()?;
    let e = text.parse::<toml::Table>().err()?;
    let (line, col) = e
        .span()
        .map(|s| crate::board::line_col(&text, s.start))
        .unwrap_or((1, 1));
    Some(Check::fail(
        format!(
            "{}:{line}:{col} is not valid TOML ({}): the build cannot read it",
            file.display(),
            e.message().trim_end()
        ),
        fix,
    ))
}

/// What is wrong with the flake.lock in `dir`, if anything: missing (a warning; the flake is not
/// `evaluable` if the lock would pin nixflash's inputs) or unreadable (a failure).
fn flake_lock_check(dir: &Path, evaluable: &mut bool) -> Option<Check> {
    use crate::flake_lock::{self, LockFile};
    let state = flake_lock::inspect(dir);
    let path = dir.join("flake.lock");
    let what = match &state {
        LockFile::Valid => None,
        LockFile::Missing if flake_lock::has_pinned_inputs(dir) => Some(format!(
            "{} is missing: without it Nix would lock the flake's inputs to their newest revisions, not the tested ones",
            path.display()
        )),
        LockFile::Missing => Some(format!(
            "{} is missing: the next build locks the flake's inputs to their newest revisions",
            path.display()
        )),
        LockFile::Invalid(why) => Some(format!(
            "{} is not a lock file Nix can read: {why}",
            path.display()
        )),
    };
    let fix = flake_lock::fix(dir, &state).join("; ");
    match (what?, &state) {
        (what, LockFile::Missing) => {
            *evaluable &= !flake_lock::has_pinned_inputs(dir);
            Some(Check::warn(what, fix))
        }
        (what, _) => Some(Check::fail(what, fix)),
    }
}
