//! Finding the programs nixflash runs besides Nix: the flashers, picotool, the simulator (and the
//! debug probe's probe-rs and QEMU to come). The one on PATH is used when it is good enough (new
//! enough, with what it needs beside it, or able to simulate the board: the caller's
//! [`Wanted::check`] says); otherwise the one the project's flake pins, `packages.<system>.<attr>`
//! (`.#flasher`, `.#simulator`), realised with `nix build .#<attr>` by the command's own [`Nix`]
//! (its `--verbose`, the arguments after `--`) in the flake's folder, found as `nix build` finds
//! it ([`crate::nix::flake_dir`]: the package's folder or the nearest one above it, a workspace's
//! root), so that a machine with only Nix has every tool.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::board::family::Need;
use crate::error::{Failure, Kind};
use crate::nix::Nix;
use crate::process::Cmd;
use crate::report::{Event, Reporter};
use crate::version::Version;

/// Where a tool comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Found on PATH.
    Path,
    /// `packages.<system>.<attr>` of the project's flake, realised at this store path.
    Flake(PathBuf),
}

impl Source {
    /// Where it comes from, for the line that names a tool: `from PATH`.
    pub fn describe(&self) -> &'static str {
        match self {
            Source::Path => "from PATH",
            Source::Flake(_) => "pinned by the project's flake.nix",
        }
    }
}

/// What the project's flake can give: the command's Nix (None when Nix is not installed) and the
/// folder of the flake (or why there is none).
pub struct Flake<'a> {
    pub nix: Option<&'a Nix>,
    pub dir: std::result::Result<PathBuf, String>,
}

impl<'a> Flake<'a> {
    /// The flake of the project around `ctx` (outside a project, a flake.nix in the current
    /// folder), built with `nix`.
    pub fn of(ctx: &crate::context::Context, nix: Option<&'a Nix>) -> Flake<'a> {
        let dir = match ctx.root {
            Some(_) => ctx.flake_dir().map_err(|e| e.to_string()),
            None => Some(ctx.cwd.join("flake.nix"))
                .filter(|f| f.is_file())
                .map(|_| ctx.cwd.clone())
                .ok_or_else(|| format!("{} does not exist", ctx.cwd.join("flake.nix").display())),
        };
        Flake { nix, dir }
    }
}

/// A tool to find.
pub struct Wanted<'a, T> {
    /// Its name, as messages say it (`ravedude`, `simavr`).
    pub name: &'a str,
    /// What it is to nixflash (`flasher`, `simulator`): also the flake's package that pins it.
    pub role: &'a str,
    /// How to get it without Nix, as a hint (`install it with ...`).
    pub install: String,
    /// A hint for when the flake cannot build it, if there is more to say than Nix's messages.
    pub build_hint: Option<&'a str>,
    /// Checks the tool found in a PATH: what to use, or why it cannot be used.
    pub check: &'a dyn Fn(&OsString, Source) -> Result<T>,
}

/// The tool from PATH, if it is good enough: the error says why not.
pub fn on_path<T>(wanted: &Wanted<T>) -> Result<T> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    (wanted.check)(&path, Source::Path)
}

/// The tool: the one on PATH if it is good enough, else the one the project's flake pins, built
/// now (which is reported first).
pub fn find<T>(wanted: &Wanted<T>, flake: &Flake, reporter: &dyn Reporter) -> Result<T> {
    let (name, role) = (wanted.name, wanted.role);
    let on_path = match on_path(wanted) {
        Ok(found) => return Ok(found),
        Err(e) => e,
    };
    let (Some(nix), Ok(dir)) = (flake.nix, &flake.dir) else {
        let why_not_nix = match &flake.dir {
            _ if flake.nix.is_none() => "Nix is not installed".to_string(),
            Err(why) => why.clone(),
            Ok(_) => unreachable!("Nix is installed and there is a flake"),
        };
        return Err(Failure::new(
            Kind::ToolMissing,
            format!(
            "no usable {name}: {on_path:#}, and {why_not_nix}, so the {role} the project's flake \
             pins cannot be used either"
        ),
        )
        .hint(wanted.install.clone())
        .hint(format!(
            "or install Nix (https://nixos.org/download): nixflash then uses the {role} pinned by \
             the project's flake.nix"
        ))
        .into());
    };
    reporter.report(Event::step(
        "Note",
        format!(
            "{name} on PATH cannot be used ({on_path:#}): building the one {} pins (nix build \
             .#{role}) ...",
            dir.join("flake.nix").display()
        ),
    ));
    let out = realise(nix, dir, wanted, reporter)?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut flake_path = OsString::from(out.join("bin"));
    if !path.is_empty() {
        flake_path.push(":");
        flake_path.push(&path);
    }
    (wanted.check)(&flake_path, Source::Flake(out.clone())).map_err(|e| {
        Failure::new(
            Kind::ToolMissing,
            format!(
                "the {role} the project's flake pins ({}) cannot be used",
                out.display()
            ),
        )
        .hint(wanted.install.clone())
        .because(e)
        .into()
    })
}

/// `nix build .#<role> --no-link --json` in the flake folder `dir`, its progress live: the out
/// path, or the build's failure with what Nix said.
fn realise<T>(
    nix: &Nix,
    dir: &Path,
    wanted: &Wanted<T>,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    let failed = match nix.realise(dir, wanted.role, reporter)? {
        Ok(out) => return Ok(out),
        Err(run) => run,
    };
    let shown = reporter.shows_details();
    let vars = [("nix_args", crate::process::shell_line(&nix.extra_args))];
    let command = format!("nix build .#{}", wanted.role);
    let e = crate::nix::build_failed(&command, failed, shown, &vars);
    match wanted.build_hint {
        None => Err(e.into()),
        Some(hint) => Err(Failure::new(
            Kind::BuildFailed,
            format!(
                "the project's flake cannot build its {} ({})",
                wanted.role,
                dir.join("flake.nix").display()
            ),
        )
        .hint(hint)
        .because(e)
        .into()),
    }
}

/// The program `name` in `path`.
pub fn program_in(name: &str, path: &OsString) -> Result<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    which::which_in(name, Some(path), cwd).map_err(|_| anyhow::anyhow!("{name} is not on PATH"))
}

/// Runs `program args` with `path` as PATH: its stdout and stderr together.
pub fn output_of<S: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[S],
    path: &OsString,
) -> Result<String> {
    let out = Cmd::new(program)
        .args(args)
        .env("PATH", path)
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    Ok(format!("{}\n{}", out.stdout_text(), out.stderr))
}

/// The program `name` in `path` and its version (`name --version`), at least `min`, with every
/// program it `needs` there too; the error says why it cannot be used.
pub fn check_version(
    name: &str,
    min: Version,
    needs: &[Need],
    path: &OsString,
) -> Result<(PathBuf, Version)> {
    let program = program_in(name, path)?;
    let text = output_of(&program, &["--version"], path)?;
    let version = Version::find_in(&text).with_context(|| {
        format!(
            "cannot read the version of {} from `{name} --version`: {}",
            program.display(),
            text.trim()
        )
    })?;
    if version < min {
        anyhow::bail!(
            "{} is {name} {version}; nixflash needs {name} >= {min}",
            program.display()
        );
    }
    for need in needs {
        check_need(need, &format!("{name} {version}"), path)?;
    }
    Ok((program, version))
}

/// Checks a program that `tool` needs: there, and new enough.
fn check_need(need: &Need, tool: &str, path: &OsString) -> Result<()> {
    let why = need
        .why
        .as_deref()
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    let program = program_in(&need.program, path).map_err(|_| {
        anyhow::anyhow!("{} is not on PATH, and {tool} needs it{why}", need.program)
    })?;
    let Some(min) = need.min_version else {
        return Ok(());
    };
    let text = output_of(&program, &need.version_args, path)?;
    let after = match &need.version_after {
        Some(word) => text.rsplit(word.as_str()).next().unwrap_or(&text),
        None => &text,
    };
    let version = Version::find_in(after).with_context(|| {
        format!(
            "cannot read the version of {} from `{} {}`",
            program.display(),
            need.program,
            need.version_args.join(" ")
        )
    })?;
    if version < min {
        anyhow::bail!(
            "{} is {} {version}; {tool} needs {} >= {min}",
            program.display(),
            need.program,
            need.program
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_found_nowhere_names_both_ways_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let check = |path: &OsString, _: Source| program_in("nixflash-no-such-tool", path);
        let wanted = Wanted {
            name: "nixflash-no-such-tool",
            role: "flasher",
            install: "install it with `true`".into(),
            build_hint: None,
            check: &check,
        };
        let flake = Flake {
            nix: None,
            dir: Ok(dir.path().to_path_buf()),
        };
        let e =
            crate::error::Report::of(&find(&wanted, &flake, &crate::report::Quiet).unwrap_err());
        assert_eq!(
            e.error,
            "no usable nixflash-no-such-tool: nixflash-no-such-tool is not on PATH, and Nix is \
             not installed, so the flasher the project's flake pins cannot be used either"
        );
        assert_eq!(e.hints[0], "install it with `true`");
        assert!(e.hints[1].starts_with("or install Nix"), "{e:?}");
    }

    #[test]
    fn versions_and_needs_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\necho '{text}'\n")).unwrap();
            let mut perms = std::fs::metadata(&p).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&p, perms).unwrap();
        };
        script("tool", "tool 1.2.3");
        script("helper", "helper version 0.9");
        let path = OsString::from(dir.path());
        let (program, v) = check_version("tool", Version(1, 2, 0), &[], &path).unwrap();
        assert_eq!((program, v), (dir.path().join("tool"), Version(1, 2, 3)));
        let e = check_version("tool", Version(2, 0, 0), &[], &path).unwrap_err();
        assert!(
            e.to_string().ends_with("nixflash needs tool >= 2.0.0"),
            "{e}"
        );
        let need = |program: &str, min| Need {
            program: program.into(),
            version_args: vec![],
            version_after: Some("version".into()),
            min_version: min,
            why: Some("it says so".into()),
        };
        check_version("tool", Version(1, 0, 0), &[need("helper", None)], &path).unwrap();
        let e = check_version(
            "tool",
            Version(1, 0, 0),
            &[need("helper", Some(Version(1, 0, 0)))],
            &path,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("tool 1.2.3 needs helper >= 1.0.0"),
            "{e}"
        );
        let e = check_version("tool", Version(1, 0, 0), &[need("gone", None)], &path).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gone is not on PATH, and tool 1.2.3 needs it (it says so)"
        );
    }
}
