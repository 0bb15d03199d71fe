//! The terminal while the monitor runs: raw mode (restored on every exit), and SIGTERM ending the
//! session cleanly.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Raw mode on the terminal for as long as it lives.
pub(super) struct RawMode;

impl RawMode {
    pub(super) fn enable() -> io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Whether SIGTERM came while a [`SigtermGuard`] was installed.
pub(super) fn terminated() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}

/// SIGTERM ends the session cleanly (terminal restored) while the monitor runs; the previous
/// handler comes back afterwards.
pub(super) struct SigtermGuard {
    #[cfg(unix)]
    old: libc::sigaction,
}

#[cfg(unix)]
extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

impl SigtermGuard {
    #[cfg(unix)]
    pub(super) fn install() -> Option<SigtermGuard> {
        TERMINATED.store(false, Ordering::SeqCst);
        // SAFETY: the handler only stores to an atomic; both structs are plain C data.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGTERM, &new, &mut old) != 0 {
                return None;
            }
            Some(SigtermGuard { old })
        }
    }

    #[cfg(not(unix))]
    pub(super) fn install() -> Option<SigtermGuard> {
        None
    }
}

impl Drop for SigtermGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores the handler saved by `install`.
        unsafe {
            libc::sigaction(libc::SIGTERM, &self.old, std::ptr::null_mut());
        }
    }
}
