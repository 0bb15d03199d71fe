//! Running programs from tests: bounded in time, in their own process group (killed with all
//! they started), their output collected as it comes.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A child process in a process group of its own, so that a test can end it with everything it
/// started (nix and its builders, ravedude and avrdude). Dropped before it was waited for (a
/// timeout, a failed assertion), the whole group is killed. It also dies with the test thread
/// that started it (PR_SET_PDEATHSIG), since it does not get the terminal's Ctrl-C.
pub struct Spawned {
    pub child: Child,
    pub shown: String,
    reaped: bool,
}

impl Spawned {
    pub fn new(cmd: &mut Command) -> Spawned {
        use std::os::unix::process::CommandExt;
        let shown = format!("{cmd:?}");
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        Spawned {
            child,
            shown,
            reaped: false,
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Sends `sig` to the process alone (as `kill -INT <pid>` does), not to its group.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child, which has not been reaped.
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let s = self.child.try_wait().unwrap();
        self.reaped |= s.is_some();
        s
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process group and reaps the process.
    pub fn kill_group(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: the group's leader is our unreaped child, so the group id is still ours.
        unsafe {
            libc::kill(-self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Reads `r` to its end on a thread; what was read so far is in the buffer.
pub fn collect(mut r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let t = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    });
    (buf, t)
}

pub fn lossy(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// Runs a command to completion within `limit`, killing it with everything it started (and
/// failing) if it takes longer.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut p = Spawned::new(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let (out, t_out) = collect(p.child.stdout.take().unwrap());
    let (err, t_err) = collect(p.child.stderr.take().unwrap());
    let Some(status) = p.wait_for(limit) else {
        p.kill_group();
        // The readers are not waited for: a process outside the group may hold the pipes.
        panic!(
            "{} took longer than {limit:?}; killed\nstdout:\n{}\nstderr:\n{}",
            p.shown,
            lossy(&out),
            lossy(&err)
        );
    };
    let (_, _) = (t_out.join(), t_err.join());
    let take = |b: Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().unwrap());
    Output {
        status,
        stdout: take(out),
        stderr: take(err),
    }
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The CPU time (user and system) of every child process this process has waited for so far:
/// the difference over a step is what that step cost, when the process runs one test at a time
/// (as under cargo-nextest).
pub fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    t(u.ru_utime) + t(u.ru_stime)
}
