//! `nixflash verify`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{outln, status};
use crate::error::{Failure, Kind};
use crate::firmware::against::{self, Checked, Digest};
use crate::firmware::compare::Comparison;
use crate::nix::{self, BuildOptions, Rebuilt};
use anyhow::Result;
use serde::Serialize;

/// Rebuild the firmware and check that it comes out the same (or check a published hash)
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Builds the firmware as `nixflash build` does, then builds its derivation once more with \
    `nix build .#default --rebuild` and compares the two: Nix checks the whole output, nixflash \
    says which sections of the ELF differ and by how many bytes. The rebuild compiles the \
    project's crate and links the firmware again; the dependencies, which the flake builds in a \
    derivation of their own, are reused, not rebuilt. `nix build .#default --rebuild` in the \
    project is the same check by hand. When the rebuild differs Nix keeps it as <out>.check, \
    which nixflash compares and then deletes (--keep keeps it, for `diffoscope <out> \
    <out>.check`). A firmware that came from a binary cache is built here for the first time, \
    and compared with the cache's.\n\n\
    --against checks the build against what someone published, without a second build (add \
    --rebuild for both): a SHA-256 (64 hex digits) is compared with the firmware ELF's, as \
    `sha256sum result/bin/<name>.elf` prints it, and with the flash image's (the bytes that go \
    to the board, as `nixflash build` prints it); a file of `sha256sum` lines is read for the \
    lines that name <name>.elf and <name>.bin (the flash image), or its only line; a firmware \
    ELF is compared byte for byte, and section by section where it differs.\n\n\
    Exit code 0 when everything compared is identical, 1 when not (or when it fails).\n\n\
    Examples:\n  \
    nixflash verify\n  \
    nixflash verify --against 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n  \
    nixflash verify --against SHA256SUMS          (lines `<hash>  blinky.elf`)\n  \
    nixflash verify --against ~/Downloads/blinky.elf --rebuild\n  \
    nixflash verify --keep                        keep a differing rebuild for diffoscope\n  \
    nixflash verify --json | jq .identical\n\n\
    --json prints {\"ok\", \"identical\", \"package\", \"bin\", \"board\", \"elf\", \
    \"sha256\": {\"elf\", \"image\"}, \"rebuild\", \"against\"}: \"ok\" and \"identical\" are true \
    when the exit code is 0. \"rebuild\" (null with --against alone) is {\"identical\", \
    \"comparison\", \"sha256\" (the rebuild's ELF's), \"other_files\", \"check\" (<out>.check), \
    \"kept\", \"delete_failed\", \"build_dir\", \"build_dir_removed\"}; \"against\" (null without \
    it) is {\"kind\": \"hash\"|\"sha256sum\"|\"elf\", \"given\", \"identical\", \
    \"hashes\": [{\"of\", \"name\", \"expected\", \"got\", \"matches\"}], \"comparison\"}. \
    A comparison (null when there is nothing to compare) is \
    {\"identical\", \"size\", \"other_size\", \"differing_bytes\", \"sections\": [{\"name\", \
    \"state\": \"same\"|\"differs\"|\"only-in-first\"|\"only-in-second\", \"size\", \
    \"other_size\", \"differing_bytes\", \"moved\"}]}, the build first, in the order of its \
    section headers. When something differs, \"kind\" (\"not-identical\"), \"error\" and \
    \"hints\" are added, as to every command's failure.\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// Check the build against a SHA-256, a `sha256sum` file or a firmware ELF (no rebuild
    /// unless --rebuild)
    #[arg(long, value_name = "HASH|FILE")]
    pub against: Option<String>,
    /// With --against: rebuild and compare as well
    #[arg(long, requires = "against")]
    pub rebuild: bool,
    /// Keep a rebuild that differs in the Nix store (<out>.check), to look at it
    #[arg(long)]
    pub keep: bool,
    /// Do not keep a `result` link to the build
    #[arg(long)]
    pub no_link: bool,
    /// Print the result as JSON on stdout, for tools (see below)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub flags: super::NixFlags,
}

/// What `--json` prints.
#[derive(Serialize)]
struct Verified {
    ok: bool,
    identical: bool,
    package: String,
    bin: String,
    board: String,
    elf: PathBuf,
    sha256: BTreeMap<&'static str, String>,
    /// What each hash is of, by file name (`blinky.elf`), for people.
    #[serde(skip)]
    files: BTreeMap<&'static str, String>,
    rebuild: Option<Rebuilt>,
    against: Option<Checked>,
}

pub fn run(a: Args) -> Result<u8> {
    let json = a.json;
    let v = match verify(a) {
        Ok(v) => v,
        Err(e) => return super::answer_failure(json, Err(e)),
    };
    let failure: Option<anyhow::Error> = failure(&v).map(Into::into);
    // People read stderr, with --json too.
    show(&v);
    if json {
        let mut j = match &failure {
            Some(e) => super::failure_json(e),
            None => serde_json::Map::new(),
        };
        if let serde_json::Value::Object(fields) = serde_json::to_value(&v)? {
            j.extend(fields);
        }
        outln!("{}", serde_json::to_string_pretty(&j)?);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

fn verify(a: Args) -> Result<Verified> {
    let ctx = a.flags.context()?;
    let (manifest, board) = (ctx.manifest()?, ctx.board_to_build()?);
    // A bad --against is refused before the build.
    let against = match &a.against {
        Some(arg) => Some(against::parse(arg, &ctx.cwd)?),
        None => None,
    };
    let opts = BuildOptions {
        link: !a.no_link,
        ..a.flags.build_options()
    };
    let built = super::firmware::build(&ctx, &a.flags, &opts)?;
    // What was built, each hash one line.
    let mut digests = vec![Digest::of_file("elf", &built.elf)?];
    if let Some(image) = &built.sha256.image {
        digests.push(Digest {
            of: "image",
            file_name: format!("{}.bin", manifest.firmware_bin()),
            sha256: image.sha256.clone(),
        });
    }
    let rebuild = if against.is_none() || a.rebuild {
        Some(nix::rebuild(
            manifest,
            board,
            &opts,
            &built,
            a.keep,
            &super::Terminal,
        )?)
    } else {
        None
    };
    let checked = match &against {
        Some(x) => Some(against::check(x, &digests, &built.elf)?),
        None => None,
    };
    let identical = rebuild.as_ref().is_none_or(|r| r.identical)
        && checked.as_ref().is_none_or(|c| c.identical);
    Ok(Verified {
        ok: identical,
        identical,
        package: manifest.name.clone(),
        bin: manifest.firmware_bin().to_string(),
        board: board.id.clone(),
        elf: built.elf.clone(),
        files: digests
            .iter()
            .map(|d| (d.of, d.file_name.clone()))
            .collect(),
        sha256: digests.into_iter().map(|d| (d.of, d.sha256)).collect(),
        rebuild,
        against: checked,
    })
}

/// The failure of a verification that found a difference: what differs as its message, the
/// usual causes and what to do as hints.
fn failure(v: &Verified) -> Option<Failure> {
    let rebuild = v.rebuild.as_ref().filter(|r| !r.identical);
    let against = v.against.as_ref().filter(|c| !c.identical);
    let mut lines = Vec::new();
    if rebuild.is_some() {
        lines.push(format!(
            "the rebuild of {} is not identical to the build",
            v.package
        ));
    }
    if let Some(c) = against {
        lines.extend(against_lines(c, v));
    }
    if lines.is_empty() {
        return None;
    }
    let message = lines.join("\n");
    let mut f = Failure::new(Kind::NotIdentical, message);
    if rebuild.is_some() {
        f = f
            .hint(
                "the usual causes: a build script (build.rs) or macro that embeds the time, a \
                 random number or the build's folder, in the project or a dependency; absolute \
                 paths (the generated flake remaps rustc's, in panic messages and debug info, \
                 to src/... and <crate>-<version>/...)",
            )
            .hint(
                "`nix build .#default --rebuild --keep-failed` is the same check by hand; \
                 `nixflash verify --keep` keeps the rebuild, for `diffoscope <out> <out>.check`",
            );
    }
    if let Some(c) = against {
        f = f.hint(match c.kind {
            "elf" => "is the other ELF built from the same commit, flake.lock and board? \
                      Where it differs, the sections above say"
                .to_string(),
            _ => format!(
                "is the hash of the same commit, flake.lock and board? `sha256sum \
                 result/bin/{}.elf` prints the build's",
                v.bin
            ),
        });
    }
    Some(f)
}

/// Prints the verdict on stderr: what was compared, and where it differs.
fn show(v: &Verified) {
    if let Some(r) = &v.rebuild {
        show_rebuild(v, r);
    }
    if let Some(c) = &v.against {
        show_against(c, v);
    }
    for (of, hash) in &v.sha256 {
        let name = match *of {
            "image" => "flash image",
            of => v.file(of),
        };
        status("SHA-256", &crate::firmware::hash::sum_line(hash, name));
    }
}

fn show_rebuild(v: &Verified, r: &Rebuilt) {
    let how = "rebuilt the firmware derivation; its dependencies' build was reused";
    if r.identical {
        status(
            "Verified",
            &format!("{}: the rebuild is identical ({how})", v.package),
        );
    } else {
        eprintln!(
            "The rebuild of {} differs from the build ({how}):",
            v.package
        );
        match &r.comparison {
            Some(c) if c.identical => eprintln!("  {}.elf is identical, byte for byte", v.bin),
            Some(c) => table(c, "the build", "the rebuild"),
            None => eprintln!("  (Nix kept no rebuild to compare)"),
        }
        if !r.other_files.is_empty() {
            eprintln!(
                "  other files of the output differ too: {}",
                r.other_files.join(", ")
            );
        }
        if let Some(h) = &r.sha256 {
            eprintln!("  the rebuild's SHA-256: {h}");
        }
    }
    let shown = |p: &Path| super::path(p);
    match (&r.check, r.kept, &r.delete_failed) {
        (Some(c), false, _) => status(
            "Deleted",
            &format!("the rebuild {} from the store (--keep keeps it)", shown(c)),
        ),
        (Some(c), true, None) => status("Kept", &format!("the rebuild at {}", shown(c))),
        (Some(c), true, Some(why)) => status(
            "Warning",
            &format!(
                "the rebuild stays at {} ({why}); `nix store delete {}` removes it",
                shown(c),
                shown(c)
            ),
        ),
        _ => {}
    }
    match (&r.build_dir, r.build_dir_removed) {
        (Some(d), true) => status("Removed", &format!("Nix's build folder {}", shown(d))),
        (Some(d), false) => status(
            "Warning",
            &format!(
                "Nix kept the rebuild's build folder {}: remove it when done",
                shown(d)
            ),
        ),
        _ => {}
    }
}

fn show_against(c: &Checked, v: &Verified) {
    if let Some(cmp) = &c.comparison {
        if c.identical {
            status(
                "Verified",
                &format!("the build is identical to {}", c.given),
            );
        } else {
            eprintln!("The build differs from {}:", c.given);
            table(cmp, "the build", &c.given);
        }
        return;
    }
    for h in c.hashes.iter().filter(|h| h.matches) {
        let from = match &h.name {
            Some(n) => format!("{}'s line for {n}", c.given),
            None => "the hash given".to_string(),
        };
        status("Verified", &format!("{} matches {from}", v.file(h.of)));
    }
}

impl Verified {
    /// What a hash is of, as a line says it: the ELF by its file name (`blinky.elf`).
    fn file<'a>(&'a self, of: &'a str) -> &'a str {
        match of {
            "image" => "the flash image",
            _ => self.files.get(of).map_or(of, String::as_str),
        }
    }
}

/// What the failure says of a check against `--against` that failed: what was expected, and
/// what was built.
fn against_lines(c: &Checked, v: &Verified) -> Vec<String> {
    if c.kind == "elf" {
        return vec![format!("{} differs from {}", v.file("elf"), c.given)];
    }
    let mut lines = Vec::new();
    for h in c.hashes.iter().filter(|h| !h.matches) {
        let from = match &h.name {
            Some(n) => format!("the one {} gives for {n}", c.given),
            None => "the one given with --against".to_string(),
        };
        lines.push(format!(
            "the SHA-256 of {} is not {from}:\n  expected {}\n  got      {}",
            v.file(h.of),
            h.expected,
            h.got
        ));
    }
    lines
}

/// The sections that differ, as rows, then the whole file.
fn table(c: &Comparison, first: &str, second: &str) {
    let rows: Vec<[String; 2]> = c
        .differing()
        .map(|s| [s.name.clone(), s.describe(first, second)])
        .collect();
    if rows.is_empty() {
        eprintln!("  no section differs: the file differs in its headers");
    }
    for line in super::columns(&rows).lines() {
        eprintln!("  {line}");
    }
    let size = if c.size == c.other_size {
        format!("{} bytes", c.size)
    } else {
        format!("{} bytes, {} in {second}", c.size, c.other_size)
    };
    eprintln!("  the whole file: {} of {size} differ", c.differing_bytes);
}
