//! One module per command: argument structs (clap) and what the command prints.

pub mod boards;
pub mod build;
pub mod flash;
pub mod monitor;
pub mod new;
pub mod ports;

/// Prints an error chain with its hints last, the way every command reports failure.
pub fn print_error(e: &anyhow::Error) {
    let mut hints = Vec::new();
    let mut first = true;
    for cause in e.chain() {
        let text = cause.to_string();
        let mut lines = Vec::new();
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("hint: ") {
                hints.push(h.to_string());
            } else {
                lines.push(line);
            }
        }
        if lines.is_empty() {
            continue;
        }
        if first {
            eprintln!("error: {}", lines.join("\n"));
            first = false;
        } else {
            eprintln!("  caused by: {}", lines.join("\n  "));
        }
    }
    for h in hints {
        eprintln!("hint: {h}");
    }
}

/// Loads the board database as seen from the current folder.
pub fn database() -> anyhow::Result<nixflash::board::Database> {
    nixflash::board::Database::load(crate::project_root().as_deref())
}
