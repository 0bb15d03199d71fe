//! Pseudo-terminals for tests: the test holds the master side, the program under test opens (or
//! is given) the slave side as a serial port or as its terminal.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long [`Pty::read_until`] waits.
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
