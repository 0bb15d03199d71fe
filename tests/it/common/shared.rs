//! Work shared by every test of a run, across threads and across processes: cargo-nextest runs
//! each test in a process of its own, and both test binaries (`it`, `nix_build`) at once, so an
//! in-process `Mutex` or `OnceLock` would neither keep two tests apart nor let them share what
//! one of them built. Both rest here on `flock(2)` of a file under the target folder's `tmp/`:
//! - [`lock`]: held until dropped, by one test (thread or process) at a time;
//! - [`once`]: a value made by the first test of the run that asks for it (under the lock of its
//!   name) and read back from a file by every later one, in this process or another.
//!
//! A run is nextest's (`NEXTEST_RUN_ID`); under `cargo test`, where a binary is one process, it
//! is the process. Work kept between runs (cargo's target folders) is the caller's business.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::tmp;

/// An exclusive lock, released when dropped.
pub struct Held {
    _file: File,
}

/// The lock named `name`, shared by every test process of every run on this machine; waits for
/// it as long as it takes (the test's own time limit, or nextest's, bounds that).
pub fn lock(name: &str) -> Held {
    let dir = tmp().join("locks");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    loop {
        // SAFETY: flock(2) on a descriptor this function owns.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Held { _file: file };
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            panic!("flock {}: {e}", path.display());
        }
    }
}

/// This run's identity: nextest's run id, else this process.
pub fn run_id() -> String {
    std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid-{}", std::process::id()))
}

/// A folder of this run's own under `tmp/runs/`, for what [`once`] makes. The first test of a
/// run to ask removes the folders of runs that ended more than a day ago (their Nix projects'
/// `result` links would keep what they built in the store).
pub fn run_dir() -> PathBuf {
    let runs = tmp().join("runs");
    let dir = runs.join(run_id());
    if !dir.is_dir() {
        let _held = lock("runs");
        if !dir.is_dir() {
            remove_older_than_a_day(&runs);
            fs::create_dir_all(&dir).unwrap();
        }
    }
    dir
}

/// A folder of this run's own outside the repository (in the system's temporary folder), for
/// what must not be inside a git checkout: `nixflash new` there would add to the repository.
/// Swept like [`run_dir`].
pub fn run_dir_outside() -> PathBuf {
    let runs = std::env::temp_dir().join("nixflash-test-runs");
    let dir = runs.join(run_id());
    if !dir.is_dir() {
        let _held = lock("runs-outside");
        if !dir.is_dir() {
            remove_older_than_a_day(&runs);
            fs::create_dir_all(&dir).unwrap();
        }
    }
    dir
}

/// Removes what is in `dir` and was last changed more than a day ago.
pub fn remove_older_than_a_day(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day));
        if old {
            let p = e.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

/// The value named `name` for this run: made by `make` in the first test that asks, under the
/// lock of that name, and read back by every other (an `Err` too: a machine that lacks a tool
/// lacks it for every test). A `make` that panics leaves nothing behind, so the next test that
/// asks tries again and fails on its own.
pub fn once<T, F>(name: &str, make: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let _held = lock(&format!("once-{name}"));
    let done = run_dir().join(format!("{name}.json"));
    if let Ok(text) = fs::read_to_string(&done) {
        return serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}: {text}", done.display()));
    }
    let made = make();
    write_atomically(&done, serde_json::to_string(&made).unwrap().as_bytes());
    made
}

/// Writes `bytes` to `path` through a temporary file beside it, so that a reader sees the whole
/// file or none.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let part = path.with_extension(format!("part-{}", std::process::id()));
    fs::write(&part, bytes).unwrap_or_else(|e| panic!("{}: {e}", part.display()));
    fs::rename(&part, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
