//! A pseudo-terminal for simavr to write its trace into. simavr writes the trace with C's stdio,
//! which buffers a file or a pipe in blocks of 4 KiB but a terminal line by line: through a pty,
//! each change reaches nixflash when simavr flushes its log (every millisecond of simulated
//! time), so the firmware's output is shown as it comes.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use anyhow::{bail, Result};

/// The pty: nixflash reads `master`; the program writes to `path`.
pub struct Pty {
    pub master: File,
    /// Held open until the program has ended, so that reading `master` ends (EIO) only then,
    /// once everything the program wrote has been read.
    slave: Option<OwnedFd>,
    pub path: PathBuf,
}

fn cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor this module opened.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

impl Pty {
    /// A new pty in raw mode (bytes pass unchanged), its descriptors not inherited.
    pub fn open() -> Result<Pty> {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors; no name buffer, termios or size is given.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if r != 0 {
            bail!(
                "cannot open a pseudo-terminal: {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: both descriptors were just opened and are owned here alone.
        let (master_fd, slave_fd) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        cloexec(master);
        cloexec(slave);
        // SAFETY: termios is a plain C struct that tcgetattr fills in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(slave, &mut t) == 0 {
                libc::cfmakeraw(&mut t);
                libc::tcsetattr(slave, libc::TCSANOW, &t);
            }
        }
        let mut name = [0 as libc::c_char; 256];
        // SAFETY: the buffer is as long as we say.
        if unsafe { libc::ttyname_r(slave, name.as_mut_ptr(), name.len()) } != 0 {
            bail!("cannot name the pseudo-terminal");
        }
        // SAFETY: ttyname_r wrote a NUL-terminated name.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        Ok(Pty {
            master: File::from(master_fd),
            slave: Some(slave_fd),
            path: PathBuf::from(path.to_string_lossy().into_owned()),
        })
    }

    /// Lets reading end once the program that writes to it has closed it (call when it ended).
    pub fn close_slave(&mut self) {
        self.slave = None;
    }
}

/// Reads the pty until it ends: `Ok(0)` or EIO (Linux's way of saying every writer is gone).
pub fn read_chunk(master: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match master.read(buf) {
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn bytes_pass_unchanged_and_reading_ends_after_the_writer() {
        let mut pty = Pty::open().unwrap();
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .open(&pty.path)
            .unwrap();
        writer.write_all(b"#1\n\x01b0 !\r\n").unwrap();
        drop(writer);
        pty.close_slave();
        let mut master = pty.master.try_clone().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = read_chunk(&mut master, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"#1\n\x01b0 !\r\n");
    }
}
