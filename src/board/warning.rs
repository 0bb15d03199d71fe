//! What is wrong with a board file, as data: the database leaves a bad file's board out and goes
//! on, and a command prints the warning (only `cmd/` prints). A command that needs that very
//! board gets the file's error instead ([`super::Database::get`]).

use serde::Serialize;

use crate::error::{Failure, Kind, Report};

/// One board file nixflash could not use as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The board file.
    pub file: String,
    /// What is wrong and what nixflash did about it, one line that names the file.
    pub message: String,
    /// Set when the file's board is left out: the file's error in full (message, causes,
    /// hints), for a command that needs that board.
    #[serde(skip)]
    pub error: Option<Report>,
    /// The names the file gives its board (id, aliases; the file's name when it gives no id),
    /// when its board is left out.
    #[serde(skip)]
    names: Vec<String>,
}

impl Warning {
    /// A file whose board is left out, with the error that says why.
    pub(crate) fn left_out(file: &str, names: Vec<String>, e: &anyhow::Error) -> Warning {
        let report = Report::of(e);
        let mut what = report.error.clone();
        for c in &report.causes {
            what.push_str(": ");
            what.push_str(c);
        }
        if !what.contains(file) {
            what = format!("{file}: {what}");
        }
        Warning {
            file: file.to_string(),
            message: format!("{what} (its board is left out; the other boards can be used)"),
            error: Some(report),
            names,
        }
    }

    /// Something worth knowing about a file whose board (if any) is used.
    pub(crate) fn note(file: &str, message: String) -> Warning {
        Warning {
            file: file.to_string(),
            message,
            error: None,
            names: Vec::new(),
        }
    }

    /// Whether the left-out board is the one `name` (an id or alias, any case) would select.
    pub fn about(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.error.is_some() && self.names.contains(&name)
    }

    /// The file's error, for a command that needs its board.
    pub fn to_error(&self) -> anyhow::Error {
        let Some(r) = &self.error else {
            return Failure::new(Kind::BoardFile, self.message.clone()).into();
        };
        let mut f = r.to_failure();
        f.kind = Kind::BoardFile;
        if !f.message.contains(&self.file) {
            f.message = format!("{}: {}", self.file, f.message);
        }
        f.hint(format!(
            "fix {} or remove it: until then nixflash leaves its board out",
            self.file
        ))
        .into()
    }
}
