//! The code's own rules that a reviewer would otherwise have to count by hand: no Rust file of
//! nixflash (src/, tests/, examples/) over 600 lines, no function in src/ over 100 lines, and no
//! tracked file with a path of the machine it was written on; and no cycle between the library's
//! modules ([`cycles`]).

mod cycles;

use std::path::{Path, PathBuf};

use crate::common::repo;

const MAX_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            // Test scratch and npm packages are not nixflash's code.
            if !path.ends_with("node_modules") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_rust_file_is_over_600_lines() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples"] {
        rust_files(&repo().join(dir), &mut files);
    }
    assert!(files.len() > 50, "only {} files found", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES)
                .then(|| format!("{}: {n} lines", f.strip_prefix(repo()).unwrap().display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by area (at most {MAX_LINES} lines a file):\n{}",
        long.join("\n")
    );
}

const MAX_FN_LINES: usize = 100;

/// The functions in `source` (free functions, methods, trait methods with a body, nested ones)
/// longer than `limit` lines, counted from the `fn` line to the closing brace (comments inside
/// count), as `name: N lines (line L)`. syn parses the file, so braces in strings, chars and
/// comments do not count.
fn long_functions(source: &str, limit: usize) -> Vec<String> {
    use syn::spanned::Spanned;
    use syn::visit::Visit;

    struct Finder {
        limit: usize,
        found: Vec<String>,
    }
    impl Finder {
        fn check(&mut self, sig: &syn::Signature, block: &syn::Block) {
            let start = sig.fn_token.span().start().line;
            let end = block.brace_token.span.close().end().line;
            let n = end - start + 1;
            if n > self.limit {
                self.found
                    .push(format!("{}: {n} lines (line {start})", sig.ident));
            }
        }
    }
    impl<'a> Visit<'a> for Finder {
        fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
            self.check(&f.sig, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
        fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
            self.check(&f.sig, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
        fn visit_trait_item_fn(&mut self, f: &'a syn::TraitItemFn) {
            if let Some(block) = &f.default {
                self.check(&f.sig, block);
            }
            syn::visit::visit_trait_item_fn(self, f);
        }
    }
    let file = syn::parse_file(source).unwrap_or_else(|e| panic!("cannot parse: {e}"));
    let mut finder = Finder {
        limit,
        found: Vec::new(),
    };
    finder.visit_file(&file);
    finder.found
}

#[test]
fn long_functions_are_found_and_braces_in_strings_and_comments_do_not_count() {
    let source = "fn short() {\n    let s = \"}}}\"; // }\n}\n\n\
                  impl X {\n    /// }\n    fn long(&self) {\n        let c = '{';\n        \
                  /* { */\n        let r = r#\"{\"#;\n    }\n}\n";
    assert_eq!(long_functions(source, 3), ["long: 5 lines (line 7)"]);
    assert!(long_functions(source, 5).is_empty());
    // The real source has functions over a lower limit, so the test below is not vacuous.
    let main = std::fs::read_to_string(repo().join("src/cmd/flash.rs")).unwrap();
    assert!(
        !long_functions(&main, 40).is_empty(),
        "no function over 40 lines in src/cmd/flash.rs"
    );
}

#[test]
fn no_function_in_src_is_over_100_lines() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    assert!(files.len() > 30, "only {} files found", files.len());
    let mut long = Vec::new();
    let mut over_40 = 0;
    for f in &files {
        let source = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(repo()).unwrap().display().to_string();
        over_40 += long_functions(&source, 40).len();
        long.extend(
            long_functions(&source, MAX_FN_LINES)
                .into_iter()
                .map(|l| format!("{name}: {l}")),
        );
    }
    // The scanner sees src/'s functions: many are over 40 lines.
    assert!(
        over_40 > 10,
        "only {over_40} functions in src/ over 40 lines"
    );
    assert!(
        long.is_empty(),
        "split these into named steps (at most {MAX_FN_LINES} lines a function):\n{}",
        long.join("\n")
    );
}

/// The absolute paths in `text` that name a folder of some machine: a home folder (`/home/…`,
/// `/Users/…`, `/root`), a work folder (`/work/…`), or where this checkout lies (`checkout`, the
/// folder holding the repository). Nix store paths, URLs (`https://host/home/…`) and paths
/// under a variable (`$HOME/…`, `~/…`) are not.
fn machine_paths(text: &str, checkout: &str) -> Vec<String> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "._/@+-~%".contains(c);
    let mut found = Vec::new();
    for line in text.lines() {
        let bytes = line.as_bytes();
        for (i, _) in line.match_indices('/') {
            // The start of a path: at the start of a word (not after a name, a folder, a
            // variable or a placeholder such as `/proc/<pid>/root`).
            if i > 0
                && !(bytes[i - 1] as char).is_whitespace()
                && !"'\"`(<[{,=:".contains(bytes[i - 1] as char)
            {
                continue;
            }
            // Not in a URL.
            let word_start = line[..i]
                .rfind(|c: char| c.is_whitespace() || "'\"`(<[{,=".contains(c))
                .map_or(0, |w| w + 1);
            if line[word_start..i].contains("://") {
                continue;
            }
            let end = line[i..]
                .find(|c: char| !path_char(c))
                .map_or(line.len(), |e| i + e);
            let path = &line[i..end];
            let under = |folder: &str| path == folder || path.starts_with(&format!("{folder}/"));
            if ["/home", "/Users", "/root", "/work"]
                .iter()
                .any(|f| path.len() > f.len() + 1 && under(f) || *f == "/root" && path == "/root")
                || (checkout.len() > 1 && under(checkout))
            {
                found.push(path.to_string());
            }
        }
    }
    found
}

#[test]
fn machine_paths_are_found_and_store_paths_and_urls_are_not() {
    let found = machine_paths(
        "    'path:/work/wt-build/tests/fixtures/overlay?lastModified=1' (2026-11-23)\n\
         export PATH=/root/.cargo/bin HOME=/root\n\
         git -C /home/me/blinky add\n\
         /Users/me/p and /srv/ci/nixflash/src/main.rs\n\
         /nix/store/aaaa-source/home/x https://github.com/home/x $HOME/work/x ~/work a/work/b\n\
         /homework /tmp/tmp.XCAZzN4ufo/p /path/to/nixflash /proc/<pid>/root /proc/{}/root",
        "/srv/ci",
    );
    assert_eq!(
        found,
        [
            "/work/wt-build/tests/fixtures/overlay",
            "/root/.cargo/bin",
            "/root",
            "/home/me/blinky",
            "/Users/me/p",
            "/srv/ci/nixflash/src/main.rs",
        ]
    );
}

/// No tracked file names a folder of the machine it was written on (a captured log with the
/// path of a worktree, a test with someone's home): they mean nothing on another machine.
#[test]
fn no_tracked_file_has_a_machine_s_path() {
    let o = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "git ls-files failed");
    let checkout = repo()
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut bad = Vec::new();
    let files: Vec<&[u8]> = o
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .collect();
    assert!(files.len() > 100, "only {} tracked files", files.len());
    for f in files {
        let f = String::from_utf8_lossy(f).into_owned();
        // This file's own examples.
        if f == "tests/it/layout.rs" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo().join(&f)) else {
            continue; // not text (or deleted in the work tree)
        };
        for p in machine_paths(&text, &checkout) {
            bad.push(format!("{f}: {p}"));
        }
    }
    assert!(
        bad.is_empty(),
        "tracked files name folders of a machine (use a placeholder, or a path relative to the \
         repository):\n{}",
        bad.join("\n")
    );
}

/// Where `source` prints or reaches the process's own terminal: the print macros (`println!`,
/// `eprintln!`, `print!`, `eprint!`, `dbg!`), `progress::status`, and calls of `stdout()` /
/// `stderr()` (`io::stderr().lock()`, `is_terminal(&io::stderr())`), also inside other macros'
/// arguments (`writeln!(io::stderr(), ...)`), as `what (line L)`. syn parses the file, so text in
/// strings and comments does not count; a child's `.stderr()` is a method, not a call.
fn printing_sites(source: &str) -> Vec<String> {
    use syn::punctuated::Punctuated;
    use syn::spanned::Spanned;
    use syn::visit::Visit;

    #[derive(Default)]
    struct Finder {
        found: Vec<String>,
    }
    impl Finder {
        fn add(&mut self, what: String, span: proc_macro2::Span) {
            self.found
                .push(format!("{what} (line {})", span.start().line));
        }
    }
    impl<'a> Visit<'a> for Finder {
        fn visit_macro(&mut self, m: &'a syn::Macro) {
            let name = m.path.segments.last().map(|s| s.ident.to_string());
            let name = name.as_deref().unwrap_or("");
            if ["println", "eprintln", "print", "eprint", "dbg"].contains(&name) {
                self.add(format!("{name}!"), m.span());
            }
            // Arguments of other macros (format!, writeln!, assert!) are expressions too.
            let args = m.parse_body_with(Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated);
            if let Ok(args) = args {
                for a in &args {
                    self.visit_expr(a);
                }
            }
        }
        fn visit_path(&mut self, p: &'a syn::Path) {
            let names: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
            if names.windows(2).any(|w| w == ["progress", "status"]) {
                self.add("progress::status".into(), p.span());
            }
            syn::visit::visit_path(self, p);
        }
        fn visit_expr_call(&mut self, c: &'a syn::ExprCall) {
            if let syn::Expr::Path(f) = &*c.func {
                let last = f.path.segments.last().map(|s| s.ident.to_string());
                if let Some(name @ ("stdout" | "stderr")) = last.as_deref() {
                    if c.args.is_empty() {
                        self.add(format!("{name}()"), c.span());
                    }
                }
            }
            syn::visit::visit_expr_call(self, c);
        }
    }
    let file = syn::parse_file(source).expect("a Rust file syn can parse");
    let mut f = Finder::default();
    f.visit_file(&file);
    f.found
}

/// Files outside src/cmd/ and src/main.rs that may still print, and why. Each must still print
/// (an entry left over after its file is converted fails the test too).
const MAY_PRINT: &[(&str, &str)] = &[];

#[test]
fn printing_is_found_in_code_but_not_in_strings_or_comments() {
    let source = "const HELLO: &str = \"fn main() { println!(\\\"hi\\\"); }\";\n\
                  // eprintln!(\"a comment\")\n\
                  fn f(child: &mut Child) {\n    let _ = child.stderr();\n    \
                  writeln!(std::io::stderr(), \"x\").ok();\n    \
                  crate::progress::status(\"Built\", \"x\");\n    eprint!(\"y\");\n}\n";
    assert_eq!(
        printing_sites(source),
        [
            "stderr() (line 5)",
            "progress::status (line 6)",
            "eprint! (line 7)"
        ]
    );
    // The command line prints, so the scanner is not blind to what it looks for.
    let cmd = std::fs::read_to_string(repo().join("src/cmd/mod.rs")).unwrap();
    let found = printing_sites(&cmd).join(", ");
    for what in ["eprintln!", "eprint!", "stderr()", "stdout()"] {
        assert!(found.contains(what), "no {what} in src/cmd/mod.rs: {found}");
    }
}

/// The library reports through a `Reporter` (src/report.rs) or writes to what the command line
/// hands it; only src/cmd/ and src/main.rs print.
#[test]
fn only_the_command_line_prints() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let mut printing = Vec::new();
    let mut unused = Vec::new();
    for f in &files {
        let name = f.strip_prefix(repo()).unwrap().display().to_string();
        if name.starts_with("src/cmd/") || name == "src/main.rs" {
            continue;
        }
        let found = printing_sites(&std::fs::read_to_string(f).unwrap());
        match (MAY_PRINT.iter().any(|(n, _)| *n == name), found.is_empty()) {
            (true, true) => unused.push(name),
            (false, false) => printing.push(format!("{name}: {}", found.join(", "))),
            _ => {}
        }
    }
    assert!(
        printing.is_empty(),
        "report these through a `&dyn Reporter` (src/report.rs), or write to what src/cmd/ \
         hands in:\n{}",
        printing.join("\n")
    );
    assert!(
        unused.is_empty(),
        "these no longer print: take them out of MAY_PRINT: {unused:?}"
    );
}
