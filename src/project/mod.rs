//! The project on disk: creating one (`new`), adding nixflash to one or switching its board
//! (`init`), and checking that its board-derived files agree with the board it names.

mod check;
mod init;
mod manifest_edit;
mod new;

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::error::{Failure, Kind};
use crate::interrupt;
use crate::render::File;

pub use check::board_mismatch;
pub use init::{init, Change};
pub use new::{create, NewOptions, Written};

pub(crate) fn refuse(kind: Kind, message: String, hint: impl Into<String>) -> anyhow::Error {
    Failure::new(kind, message).hint(hint).into()
}

/// Checks a package name the way `cargo new` does, with a message that says what to change.
pub fn validate_crate_name(name: &str) -> Result<()> {
    let hint = "use lowercase letters, digits, `-` and `_`, starting with a letter (for example \
                `blinky`), or pass --name";
    if name.is_empty() {
        return Err(refuse(
            Kind::NameInvalid,
            "the package name is empty".to_string(),
            hint,
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(refuse(
            Kind::NameInvalid,
            format!("invalid character `{c}` in package name `{name}`"),
            hint,
        ));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(refuse(
            Kind::NameInvalid,
            format!("the package name `{name}` cannot start with a digit"),
            hint,
        ));
    }
    if name.starts_with('-') {
        return Err(refuse(
            Kind::NameInvalid,
            format!("the package name `{name}` cannot start with `-`"),
            hint,
        ));
    }
    if name.len() > 64 {
        return Err(refuse(
            Kind::NameInvalid,
            format!("the package name `{name}` is longer than 64 characters"),
            hint,
        ));
    }
    let ident = name.replace('-', "_");
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
        "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
        "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
        "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
        "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&ident.as_str()) {
        return Err(refuse(
            Kind::NameInvalid,
            format!("the package name `{name}` is a Rust keyword"),
            hint,
        ));
    }
    const RESERVED: &[&str] = &[
        "core",
        "std",
        "alloc",
        "proc_macro",
        "test",
        "build",
        "deps",
        "examples",
        "incremental",
        "con",
        "prn",
        "aux",
        "nul",
        "com1",
        "com2",
        "com3",
        "com4",
        "com5",
        "com6",
        "com7",
        "com8",
        "com9",
        "lpt1",
        "lpt2",
        "lpt3",
        "lpt4",
        "lpt5",
        "lpt6",
        "lpt7",
        "lpt8",
        "lpt9",
    ];
    if RESERVED.contains(&ident.to_ascii_lowercase().as_str()) {
        return Err(refuse(
            Kind::NameInvalid,
            format!("the package name `{name}` is reserved (cargo refuses it)"),
            hint,
        ));
    }
    Ok(())
}

fn write_files(root: &Path, files: &[File]) -> Result<()> {
    for f in files {
        interrupt::check()?;
        let path = root.join(&f.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, &f.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_follow_cargo() {
        for ok in ["blinky", "my-blinky", "my_blinky2", "_x", "Blinky"] {
            validate_crate_name(ok).unwrap();
        }
        for bad in [
            "", "2fast", "a b", "blinky!", "fn", "core", "test", "-x", "con", "héllo",
        ] {
            let e = validate_crate_name(bad).expect_err(bad);
            assert_eq!(
                crate::error::Report::of(&e).kind,
                Kind::NameInvalid,
                "{bad}"
            );
        }
    }
}
