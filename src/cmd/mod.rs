//! One module per command: argument structs (clap) and what the command prints.

pub mod boards;
pub mod build;
pub mod flash;
pub mod monitor;
pub mod new;
pub mod ports;

/// What follows `--` on the command line of the commands that run nix.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NixArgs {
    /// Arguments for every nix command nixflash runs, after `--` (see below)
    #[arg(last = true, value_name = "NIX_ARGS", allow_hyphen_values = true)]
    pub nix_args: Vec<String>,
}

/// The help text about [`NixArgs`], a literal for `concat!` in `after_help`.
macro_rules! nix_args_help {
    () => {
        "Arguments after `--` go to every nix command nixflash runs (the firmware build, the \
         rust-src realisation behind nix/std-Cargo.lock, the flasher build, `nix flake update`). \
         Remote builders and binary caches are how a team outgrows one machine:\n  \
         -- --builders 'ssh://big-box x86_64-linux'      build on another machine\n  \
         -- --option extra-substituters https://cache.example.org\n     \
            --option extra-trusted-public-keys 'cache.example.org-1:...'   a team's binary cache\n  \
         -- --offline                                    use only what the Nix store has\n  \
         -- --override-input nixpkgs path:/src/nixpkgs   a local nixpkgs instead of the pinned one"
    };
}
pub(crate) use nix_args_help;

/// Rows of cells as left-aligned columns two spaces apart, one line each.
pub fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

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
