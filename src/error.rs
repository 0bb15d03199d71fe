//! Errors that say what to do next.
//!
//! Code fails with `anyhow::Error` as usual, adding context as it goes up. Where a failure knows
//! what the user can do about it, it is a [`Failure`]: the message, and hints kept apart from it
//! (several lines each if need be). A [`Report`] gathers the messages of the whole chain and
//! the hints of every link that has some ([`Failure`], and the build failures of [`crate::nix`]
//! with their diagnoses), for the terminal or for `--json`.

use std::fmt;

use serde::Serialize;

/// A failure and what to do about it. It is the error itself, never an anyhow context (which
/// [`Report`] could not see through): a cause goes in [`Failure::because`].
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// What to do next, most useful first.
    pub hints: Vec<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            hints: Vec::new(),
            source: None,
        }
    }

    /// The same failure with one more hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hints.push(hint.into());
        self
    }

    /// The same failure, caused by `e` (shown as `caused by:` under it).
    pub fn because(
        mut self,
        e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Failure {
        self.source = Some(e.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An `anyhow::Error` from a message and hints (each a `String` or `&str`):
/// `fail!(format!("no flake.nix in {}", dir); "run `nixflash init --board <id>`")`.
#[macro_export]
macro_rules! fail {
    ($msg:expr $(; $($hint:expr),+)? $(,)?) => {
        ::anyhow::Error::new($crate::error::Failure::new($msg)$($(.hint($hint))+)?)
    };
}

/// Something that knows what went wrong (diagnoses) and what to do (hints), besides its message.
pub trait Help {
    /// What is known about the cause, one line each.
    fn diagnoses(&self) -> Vec<String> {
        Vec::new()
    }
    fn hints(&self) -> Vec<String>;
}

impl Help for Failure {
    fn hints(&self) -> Vec<String> {
        self.hints.clone()
    }
}

/// An error, ready to be shown: every message of the chain, outermost first, and everything it
/// knows about what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The outermost message.
    pub error: String,
    /// The messages under it, each caused by the one after it.
    pub causes: Vec<String>,
    pub diagnoses: Vec<String>,
    pub hints: Vec<String>,
}

impl Report {
    pub fn of(e: &anyhow::Error) -> Report {
        let mut messages = Vec::new();
        let mut diagnoses = Vec::new();
        let mut hints = Vec::new();
        for cause in e.chain() {
            messages.push(cause.to_string());
            let help: Option<&dyn Help> = if let Some(f) = cause.downcast_ref::<Failure>() {
                Some(f)
            } else if let Some(b) = cause.downcast_ref::<crate::nix::BuildFailed>() {
                Some(b)
            } else {
                None
            };
            if let Some(h) = help {
                diagnoses.extend(h.diagnoses());
                hints.extend(h.hints());
            }
        }
        let error = messages.remove(0);
        Report {
            error,
            causes: messages,
            diagnoses,
            hints,
        }
    }
}

impl fmt::Display for Report {
    /// `error: ...` (its lines as they are), `  caused by: ...`, `diagnosis: ...`, then the hints,
    /// each `hint: ...` with its further lines indented under its first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let block = |f: &mut fmt::Formatter<'_>, label: &str, indent: &str, text: &str| {
            let mut lines = text.lines();
            writeln!(f, "{label}{}", lines.next().unwrap_or(""))?;
            for l in lines {
                if l.is_empty() {
                    writeln!(f)?;
                } else {
                    writeln!(f, "{indent}{l}")?;
                }
            }
            Ok(())
        };
        block(f, "error: ", "", &self.error)?;
        for c in &self.causes {
            block(f, "  caused by: ", "  ", c)?;
        }
        for d in &self.diagnoses {
            block(f, "diagnosis: ", "", d)?;
        }
        for h in &self.hints {
            block(f, "hint: ", "      ", h)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn hints_stay_whole_and_come_last() {
        let inner: anyhow::Result<()> = Err(fail!(
            format!("no flake.nix in {}", "/p");
            "add one with\n  nixflash init --board uno",
            "or create a project: nixflash new blinky --board uno"
        ));
        let e = inner.context("cannot build").unwrap_err();
        let r = Report::of(&e);
        assert_eq!(r.error, "cannot build");
        assert_eq!(r.causes, vec!["no flake.nix in /p"]);
        assert_eq!(
            r.hints,
            vec![
                "add one with\n  nixflash init --board uno",
                "or create a project: nixflash new blinky --board uno"
            ]
        );
        assert_eq!(
            r.to_string(),
            "error: cannot build\n  caused by: no flake.nix in /p\nhint: add one with\n        \
             nixflash init --board uno\nhint: or create a project: nixflash new blinky --board \
             uno\n"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["hints"][0],
            "add one with\n  nixflash init --board uno"
        );
    }

    #[test]
    fn a_cause_under_a_failure_keeps_the_failure_s_hints() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e: anyhow::Error = Failure::new("cannot read board file b.toml")
            .hint("check the path")
            .because(io)
            .into();
        let r = Report::of(&e.context("loading boards"));
        assert_eq!(r.error, "loading boards");
        assert_eq!(r.causes, ["cannot read board file b.toml", "no such file"]);
        assert_eq!(r.hints, ["check the path"]);
    }

    #[test]
    fn a_plain_error_has_no_hints() {
        let e = anyhow::anyhow!("plain");
        let r = Report::of(&e);
        assert_eq!(r.to_string(), "error: plain\n");
        assert!(r.hints.is_empty() && r.causes.is_empty());
    }
}
