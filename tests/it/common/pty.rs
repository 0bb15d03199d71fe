//! Pseudo-terminals for tests: the test holds the master side, the program under test opens (or
//! is given) the slave side as a serial port or as its terminal. And the monitor's test bench: a
//! running `nixflash monitor` on such a port, whose output is collected. Every wait is bounded,
//! and a monitor still running when a test ends is killed.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long every wait here lasts at most.
pub const WAIT: Duration = Duration::from_secs(20);

/// A pseudo-terminal: `master` is the board's end, `path` the serial port the monitor opens.
pub struct Pty {
    pub master: File,
    pub path: PathBuf,
}

impl Pty {
    pub fn new() -> Pty {
        // SAFETY: plain libc calls on a descriptor this function owns.
        unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
            let path = PathBuf::from(CStr::from_ptr(name.as_ptr()).to_str().unwrap());
            Pty {
                master: File::from_raw_fd(fd),
                path,
            }
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
        self.master.flush().unwrap();
    }

    /// Reads what was written to the slave side until `want` is among it; panics after `WAIT`.
    pub fn read_until(&mut self, want: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while !got.windows(want.len()).any(|w| w == want) {
            assert!(
                Instant::now() < deadline,
                "the board never got {:?}; it got {:?}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(&got)
            );
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut p, 1, 50) } == 1 && p.revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 256];
                let n = self.master.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
        }
        got
    }

    /// The slave side, opened for a child's stdin, stdout or stderr (it becomes a terminal).
    pub fn slave(&self) -> File {
        File::options()
            .read(true)
            .write(true)
            .open(&self.path)
            .unwrap()
    }

    /// Everything written to the slave side until it is closed by every process that had it (or
    /// `limit` passes).
    pub fn read_all(&mut self, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut p, 1, 50) };
            if ready == 1 && p.revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 4096];
                match self.master.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            } else if ready == 1 && p.revents & libc::POLLHUP != 0 {
                break;
            }
        }
        got
    }
}

pub fn lflag(f: &File) -> libc::tcflag_t {
    // SAFETY: tcgetattr fills a plain C struct.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(f.as_raw_fd(), &mut t), 0);
        t.c_lflag
    }
}

/// A running `nixflash monitor` whose stdout and stderr are collected by threads.
pub struct Monitor {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub out: Arc<Mutex<Vec<u8>>>,
    pub err: Arc<Mutex<Vec<u8>>>,
    _home: tempfile::TempDir,
}

pub fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    thread::spawn(move || {
        let mut chunk = [0u8; 1024];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

/// A nixflash command with a private config folder (no user board files) run in `cwd`.
pub fn nixflash(args: &[&str], cwd: &Path, home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nixflash"));
    c.args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("TZ");
    c
}

impl Monitor {
    pub fn spawn(args: &[&str], stdin: Stdio) -> Monitor {
        let home = tempfile::tempdir().unwrap();
        Self::spawn_in(args, stdin, home.path().to_path_buf(), home)
    }

    pub fn spawn_in(args: &[&str], stdin: Stdio, cwd: PathBuf, home: tempfile::TempDir) -> Monitor {
        let mut all = vec!["monitor"];
        all.extend_from_slice(args);
        let mut child = nixflash(&all, &cwd, home.path())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        Monitor {
            child,
            stdin,
            out,
            err,
            _home: home,
        }
    }

    pub fn stdout(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    pub fn wait_for(&self, what: &str, buf: &Arc<Mutex<Vec<u8>>>, want: &[u8]) {
        let deadline = Instant::now() + WAIT;
        loop {
            if buf.lock().unwrap().windows(want.len()).any(|w| w == want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {:?} on {what}.\nstdout: {:?}\nstderr: {}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(&self.stdout()),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_stdout(&self, want: &[u8]) {
        self.wait_for("stdout", &self.out, want)
    }

    pub fn wait_stderr(&self, want: &str) {
        self.wait_for("stderr", &self.err, want.as_bytes())
    }

    pub fn type_in(&mut self, bytes: &[u8]) {
        let s = self.stdin.as_mut().expect("stdin is piped");
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to our own child, which has not been reaped.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }

    /// Waits for the monitor to end; kills it and fails after `WAIT`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last bytes.
                thread::sleep(Duration::from_millis(100));
                return s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the monitor did not end; stderr:\n{}", self.stderr());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
