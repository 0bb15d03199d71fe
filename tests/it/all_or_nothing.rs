//! `new` and `init` are all or nothing: on a full disk (a real, small tmpfs, filled to within a
//! few pages) and when a real SIGINT, SIGTERM or SIGHUP comes while git runs, either every file is
//! written and git-added, or the folder (git's index included) is as it was, with no temporary
//! file left.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::fixture::{require, run, Fixture};
use crate::common::process::Spawned;
use crate::common::tmpfs::SmallFs;
use crate::common::{self};
use crate::new::nixflash;

/// Every file and folder under `dir` with its bytes, `.git` included but for `.git/objects`
/// (where a git that failed may leave unreachable objects, as it does by itself).
fn state(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == ".git/objects" {
                continue;
            }
            if p.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(root, &p, out);
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn names(state: &[(String, Vec<u8>)]) -> Vec<&str> {
    state.iter().map(|(n, _)| n.as_str()).collect()
}

/// A Uno project made by `new` and committed, in `dir`.
fn uno_project(dir: &Path, name: &str) -> PathBuf {
    nixflash(dir)
        .args(["new", name, "--board", "uno"])
        .assert()
        .success();
    let p = dir.join(name);
    common::git(&p, &["commit", "-qm", "new"]);
    p
}

/// One command run on the nearly full tmpfs.
struct Case {
    what: &'static str,
    args: &'static [&'static str],
    /// A shell command that makes the folder `w` the command runs in (given the Uno project).
    setup: fn(&Path) -> String,
    /// Where the project is, under `w`.
    project: &'static str,
    /// Lines of `git status --porcelain` for the user's files, which git is not to track.
    theirs: &'static [&'static str],
    /// What the error of a failure after the files were written says: `git add`'s, or, where
    /// `new` writes the new repository itself, that of a file under .git.
    late: &'static str,
}

/// `init --board nano` in an Uno project, `new a/b/blinky` and `new . --force` over files of
/// the user's, each run again and again on a
/// tmpfs filled to within 0, 1, 2, ... pages of full until it succeeds: every failure leaves the
/// folder as it was, and one of them came after the files were written (`git add`, or writing
/// the new repository).
#[test]
fn init_and_new_on_a_nearly_full_disk_write_everything_or_nothing() {
    let test = "init_and_new_on_a_nearly_full_disk_write_everything_or_nothing";
    let small = match SmallFs::new(2048) {
        Ok(s) => s,
        Err(why) => return common::skip(test, &why),
    };
    let tmp = tempfile::tempdir().unwrap();
    let lamp = uno_project(tmp.path(), "lamp");
    let bin = assert_cmd::cargo::cargo_bin("nixflash");
    let root = small.dir.clone();
    let work = root.join("w");
    let cases = [
        Case {
            what: "init",
            args: &["init", "--board", "nano"],
            setup: |lamp| format!("cp -a {} w", lamp.display()),
            project: "",
            theirs: &[],
            late: "`git add",
        },
        Case {
            what: "new",
            args: &["new", "a/b/blinky", "--board", "uno"],
            setup: |_| "mkdir w".to_string(),
            project: "a/b/blinky",
            theirs: &[],
            late: "/.git/",
        },
        Case {
            what: "new --force",
            args: &["new", ".", "--board", "uno", "--force"],
            setup: |_| {
                "mkdir -p w/src && echo '// mine' > w/src/main.rs && echo x > w/notes.txt".into()
            },
            project: "",
            theirs: &["?? notes.txt", "?? src/main.rs.orig"],
            late: "`git add",
        },
    ];
    for Case {
        what,
        args,
        setup,
        project,
        theirs,
        late,
    } in cases
    {
        let mut failures = Vec::new();
        let mut succeeded = false;
        for pages in 0..100 {
            small.sh(&root, &format!("rm -rf w filler && {}", setup(&lamp)));
            small.fill(pages);
            let before = state(&small.outside(&work));
            let out = small
                .command(&bin, &work)
                .args(args)
                .env("XDG_CONFIG_HOME", "/nonexistent")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() {
                // Everything written and git-added.
                let status = small.sh(
                    &work.join(project),
                    "git --no-optional-locks status --porcelain \
                     --untracked-files=all",
                );
                let unstaged: Vec<&str> = status
                    .lines()
                    .filter(|l| !l.starts_with("M  ") && !l.starts_with("A  "))
                    .filter(|l| !theirs.contains(l))
                    .collect();
                assert!(
                    unstaged.is_empty(),
                    "{what} at {pages} pages free: {status}"
                );
                common::measured(&format!(
                    "{what} on a full tmpfs: {} failures, all undone, then success with {pages} \
                     pages free",
                    failures.len()
                ));
                succeeded = true;
                break;
            }
            let after = state(&small.outside(&work));
            assert_eq!(
                names(&after),
                names(&before),
                "{what} with {pages} pages free failed ({err}) and left the folder changed"
            );
            assert!(
                after == before,
                "{what} with {pages} pages free failed ({err}) and changed a file"
            );
            failures.push(err);
        }
        assert!(succeeded, "{what} never succeeded: {failures:?}");
        assert!(
            failures.iter().any(|e| e.contains(late)),
            "{what}: no run failed at `{late}`, after writing the files: {failures:?}"
        );
    }
}

/// A `git` on PATH (in `bin`) that, for `git add`, creates `<bin>/add-started` and waits for
/// `<bin>/go` before it runs the real git. With `ignore_int` it, and then git, ignores SIGINT:
/// git finishes its work although nixflash was stopped (and passed the signal on).
fn stalling_git(bin: &Path, ignore_int: bool) -> String {
    fs::create_dir_all(bin).unwrap();
    let real = which::which("git").unwrap();
    let trap = if ignore_int { "trap '' INT" } else { ":" };
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = add ]; then\n  {trap}\n  touch '{b}/add-started'\n  \
         while [ ! -e '{b}/go' ]; do sleep 0.01; done\nfi\nexec '{}' \"$@\"\n",
        real.display(),
        b = bin.display()
    );
    let git = bin.join("git");
    fs::write(&git, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&git, fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs nixflash with `args` in `cwd`, sends `signal` while its `git add` runs, and returns the
/// exit code.
fn signalled_while_git_adds(cwd: &Path, args: &[&str], signal: i32, ignore_int: bool) -> i32 {
    let bin = cwd.parent().unwrap().join(format!("git-bin-{signal}"));
    let path = stalling_git(&bin, ignore_int);
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("nixflash"));
    // A git variable set: `new` leaves a new repository to git rather than writing it itself.
    cmd.args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", bin.join("cfg"))
        .env("GIT_CONFIG_COUNT", "0")
        .env("PATH", path);
    let mut child = Spawned::new(&mut cmd);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bin.join("add-started").exists() {
        assert!(Instant::now() < deadline, "`git add` never started");
        assert!(
            child.try_wait().is_none(),
            "nixflash ended before `git add`"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.signal(signal);
    fs::write(bin.join("go"), "").unwrap();
    let status = child
        .wait_for(Duration::from_secs(30))
        .expect("nixflash did not end after the signal");
    fs::remove_dir_all(&bin).unwrap();
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// SIGTERM and SIGHUP while `new` runs `git add` (in its own repository, and in an enclosing
/// one, after the folder was moved into place): nothing is left, the enclosing repository's
/// index included, and the exit code says which signal.
#[test]
fn a_signal_while_new_runs_git_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    let code = signalled_while_git_adds(
        &work,
        &["new", "blinky", "--board", "uno"],
        libc::SIGTERM,
        false,
    );
    assert_eq!(code, 128 + libc::SIGTERM);
    assert_eq!(names(&state(&work)), Vec::<&str>::new());

    let repo = tmp.path().join("repo");
    fs::create_dir(&repo).unwrap();
    common::git(&repo, &["init", "-q"]);
    fs::write(repo.join("notes.txt"), "mine").unwrap();
    common::git(&repo, &["add", "notes.txt"]);
    let before = state(&repo);
    let code = signalled_while_git_adds(
        &repo,
        &["new", "a/fw", "--board", "uno"],
        libc::SIGHUP,
        true,
    );
    assert_eq!(code, 128 + libc::SIGHUP);
    assert_eq!(names(&state(&repo)), names(&before));
    assert!(state(&repo) == before, "the index changed");
}

/// SIGTERM and Ctrl-C (SIGINT) while `init` git-adds a switch from the Uno to the Nano: the
/// project and git's index are as they were.
#[test]
fn a_signal_while_init_runs_git_leaves_the_project_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let lamp = uno_project(tmp.path(), "lamp");
    let before = state(&lamp);
    for (signal, ignore_int) in [(libc::SIGTERM, true), (libc::SIGINT, false)] {
        let code =
            signalled_while_git_adds(&lamp, &["init", "--board", "nano"], signal, ignore_int);
        assert_eq!(code, 128 + signal);
        let after = state(&lamp);
        assert_eq!(names(&after), names(&before), "signal {signal}");
        assert!(
            after == before,
            "signal {signal}: a file or the index changed"
        );
    }
}

/// `update` whose std-lock step fails after `nix flake update` wrote flake.lock (the flake has
/// no rust-src): the project (no flake.lock, as before) and git's index are as they were.
#[test]
fn a_failed_update_leaves_flake_lock_as_it_was() {
    require!("nix", "a_failed_update_leaves_flake_lock_as_it_was");
    let f = Fixture::new(true);
    let flake = f
        .read("flake.nix")
        .replace("rust-src = sh system", "not-rust-src = sh system");
    fs::write(f.dir.join("flake.nix"), flake).unwrap();
    common::git(&f.dir, &["add", "flake.nix"]);
    fs::write(f.overlay.join("version"), "v2").unwrap();
    // Nix refreshes the stat data git's index caches when it reads the work tree: what the index
    // holds is compared instead of its bytes.
    let state = |dir: &Path| {
        let mut s = state(dir);
        s.retain(|(n, _)| n != ".git/index");
        s.push(("index".into(), common::git(dir, &["ls-files", "-s"]).into()));
        s
    };
    let before = state(&f.dir);
    let mut c = f.nixflash("");
    c.args(["update", "rust-overlay"]);
    let o = run(c);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("cannot get the pinned toolchain's rust-src"),
        "{}",
        o.stderr
    );
    // The fixture has no flake.lock yet: nix wrote one.
    assert!(
        o.stderr.contains("Locked rust-overlay"),
        "nix flake update locked nothing: {}",
        o.stderr
    );
    let after = state(&f.dir);
    assert_eq!(names(&after), names(&before));
    let changed: Vec<&str> = after
        .iter()
        .zip(&before)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert!(changed.is_empty(), "changed: {changed:?}");
}
