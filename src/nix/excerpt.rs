//! The lines of a failed nix command's log worth repeating in its failure: the first error of
//! the derivation that failed (a compiler's whole diagnostic: rustc's `error[E…]`, its
//! `--> file:line:col` and caret lines), what that builder said last, and Nix's own error.

/// The lines of a nix log worth repeating after a failure, at most `max`: the failed
/// derivation's first error (whole, up to the blank line that ends a compiler's diagnostic),
/// its builder's last lines, and Nix's `error:` lines without their evaluation trace.
pub fn relevant_lines(log: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = log.lines().filter(|l| !is_chatter(l.trim())).collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("error:")) else {
        // No `error:` line: the end of the log.
        let from = lines.len().saturating_sub(max);
        return lines[from..].iter().map(|l| l.to_string()).collect();
    };
    let error = nix_error(&lines[start..]);
    let error_keep = error.len().min(max);
    let error = &error[error.len() - error_keep..];

    // The failed derivation's lines (`pname> ...`, as nix -L prints them), else the builder
    // lines just before the error.
    let named: Vec<&str> = match failed_drv(log).map(|d| super::log::pname(&d)) {
        Some(name) => lines[..start]
            .iter()
            .filter(|l| builder_name(l) == Some(name.as_str()))
            .copied()
            .collect(),
        None => Vec::new(),
    };
    let builder = if named.is_empty() {
        let mut b: Vec<&str> = lines[..start]
            .iter()
            .rev()
            .take_while(|l| builder_name(l).is_some())
            .copied()
            .collect();
        b.reverse();
        b
    } else {
        named
    };
    let room = max - error_keep;
    let mut keep: Vec<bool> = vec![false; builder.len()];
    // The first error, whole (a compiler's diagnostic ends with a blank line), up to 20 lines.
    let mut first_error = 0;
    if let Some(first) = builder.iter().position(|l| is_error(builder_text(l))) {
        for (i, l) in builder.iter().enumerate().skip(first) {
            if first_error == room.min(20) || (i > first && builder_text(l).trim().is_empty()) {
                break;
            }
            keep[i] = true;
            first_error += 1;
        }
    }
    // Then the builder's last lines, as many as there is room for (at most 15).
    let mut tail = room.saturating_sub(first_error).min(15);
    for i in (0..builder.len()).rev() {
        if tail == 0 {
            break;
        }
        if !keep[i] {
            keep[i] = true;
            tail -= 1;
        }
    }
    let mut out = Vec::new();
    let mut gap = false;
    for (l, k) in builder.iter().zip(&keep) {
        if *k {
            if gap && !out.is_empty() {
                out.push("…".to_string());
            }
            out.push(l.to_string());
            gap = false;
        } else {
            gap = true;
        }
    }
    out.extend(error.iter().map(|l| l.to_string()));
    out
}

/// Nix's error block without its evaluation trace (`… while evaluating …` frames with their code
/// excerpts), which says where, not what: the `error:` lines say what failed.
fn nix_error<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut in_frame = false;
    lines
        .iter()
        .filter(|l| {
            let t = l.trim();
            if t.starts_with('…') {
                in_frame = true;
                return false;
            }
            if t.starts_with("error:") {
                in_frame = false;
                return t != "error:";
            }
            !in_frame
        })
        .copied()
        .collect()
}

/// The derivation Nix says failed to build (`builder for '<drv>' failed`, or `Cannot build
/// '<drv>'` since Nix 2.19), the first one named.
pub fn failed_drv(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let l = l.trim();
        let rest = l
            .strip_prefix("error: builder for '")
            .or_else(|| l.strip_prefix("error: Cannot build '"))?;
        let (drv, _) = rest.split_once('\'')?;
        (drv.starts_with("/nix/store/") && drv.ends_with(".drv")).then(|| drv.to_string())
    })
}

/// Lines of a nix log that say nothing about a failure.
fn is_chatter(t: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "copying path",
        "building '/nix/store",
        "these ",
        "this derivation",
        "this path",
    ];
    t.is_empty()
        || (t.starts_with("warning: Git tree") && t.ends_with("is dirty"))
        || PREFIXES.iter().any(|p| t.starts_with(p))
        || (t.starts_with("/nix/store/") && t.ends_with(".drv"))
}

/// The name of a builder line, `name> text` as nix -L prints build output, or `name>` alone for
/// an empty line (a compiler's blank lines).
fn builder_name(l: &str) -> Option<&str> {
    let (name, rest) = l.split_once('>')?;
    let named = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
    (named && (rest.is_empty() || rest.starts_with(' '))).then_some(name)
}

/// What a builder line says, without its `name> ` prefix.
fn builder_text(l: &str) -> &str {
    match l.split_once('>') {
        Some((_, rest)) => rest.strip_prefix(' ').unwrap_or(rest),
        None => l,
    }
}

/// A compiler's or cargo's error: `error[E0308]: ...`, `error: ...`, a C compiler's
/// `file.c:3:5: error: ...`.
fn is_error(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("error:")
        || (t.starts_with("error[") && t.contains("]:"))
        || t.contains(": error: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_lines_keep_builder_output_and_error() {
        let log = "warning: Git tree '/x' is dirty\nthis derivation will be built:\n  /nix/store/w-fxbad.drv\n\
                   building '/nix/store/w-fxbad.drv'...\nfxbad> compiling\nfxbad> error[E0152]: found duplicate lang item `panic_impl`\n\
                   error: builder for '/nix/store/w-fxbad.drv' failed with exit code 3";
        assert_eq!(
            relevant_lines(log, 25),
            vec![
                "fxbad> compiling",
                "fxbad> error[E0152]: found duplicate lang item `panic_impl`",
                "error: builder for '/nix/store/w-fxbad.drv' failed with exit code 3",
            ]
        );
        let eval = "error:\n       … while calling the 'derivationStrict' builtin\n         at <nix/derivation-internal.nix>:37:12:\n           37|   strict = derivationStrict drvAttrs;\n             |            ^\n\n       error: path '/nix/store/c-source/firmware.elf' does not exist";
        assert_eq!(
            relevant_lines(eval, 25),
            vec!["       error: path '/nix/store/c-source/firmware.elf' does not exist"]
        );
        let no_error = "a\nb\nc";
        assert_eq!(relevant_lines(no_error, 2), vec!["b", "c"]);
    }

    /// rustc's diagnostic has blank lines (`name>` alone in the log), and the builder goes on
    /// after it: the whole diagnostic is kept, then the builder's last lines.
    #[test]
    fn a_compiler_error_is_kept_whole_past_its_blank_lines() {
        let drv = "/nix/store/dg9hlgy80wjskicypihwz8z699g0ab0b-blinky-0.1.0.drv";
        let mut log = format!("building '{drv}'...\nblinky-deps> unrelated\n");
        for i in 0..30 {
            log.push_str(&format!("blinky> Compiling crate{i}\n"));
        }
        log.push_str(
            "blinky> error[E0308]: mismatched types\n\
             blinky>   --> src/main.rs:19:24\n\
             blinky>    |\n\
             blinky> 19 |     let wrong: u8 = \"not a number\";\n\
             blinky>    |                --   ^^^^^^^^^^^^^^ expected `u8`, found `&str`\n\
             blinky>    |                |\n\
             blinky>    |                expected due to this\n\
             blinky>\n\
             blinky> For more information about this error, try `rustc --explain E0308`.\n\
             blinky> error: could not compile `blinky` (bin \"blinky\") due to 1 previous error\n",
        );
        for i in 0..20 {
            log.push_str(&format!("blinky> noise {i}\n"));
        }
        log.push_str(&format!(
            "error: builder for '{drv}' failed with exit code 101\n"
        ));
        let lines = relevant_lines(&log, 25);
        assert_eq!(lines.len(), 24, "{lines:#?}");
        assert_eq!(lines[0], "blinky> error[E0308]: mismatched types");
        assert_eq!(lines[1], "blinky>   --> src/main.rs:19:24");
        assert!(lines[4].ends_with("expected `u8`, found `&str`"));
        assert_eq!(lines[6], "blinky>    |                expected due to this");
        assert_eq!(lines[7], "…");
        assert_eq!(lines[8], "blinky> noise 5");
        assert_eq!(lines[22], "blinky> noise 19");
        assert_eq!(
            lines[23],
            format!("error: builder for '{drv}' failed with exit code 101")
        );
        assert!(!lines.iter().any(|l| l.contains("unrelated")));
        assert_eq!(failed_drv(&log).as_deref(), Some(drv));
    }
}
