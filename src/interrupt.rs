//! Ctrl-C: nixflash notes it and stops at the next safe point, so that nothing is left half-done.
//! Child processes (git, nix, flashers) get the signal from the terminal themselves.
//!
//! The commands that write files (`new`, `init`, `update`) also take SIGTERM and SIGHUP this way
//! ([`also_on_termination`]): a `kill` or a closed terminal undoes their writes instead of leaving
//! them half-done.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The signal that interrupted nixflash (SIGINT unless SIGTERM or SIGHUP).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();
static TERMINATION: Once = Once::new();

/// Installs the Ctrl-C handler (once).
pub fn install() {
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

#[cfg(unix)]
extern "C" fn on_termination(signal: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    SIGNAL.store(signal, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGTERM and SIGHUP, from now on, interrupt as Ctrl-C does (for the commands that write files
/// and must undo them when stopped).
pub fn also_on_termination() {
    install();
    #[cfg(unix)]
    TERMINATION.call_once(|| {
        for signal in [libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler only stores to atomics; sigaction with an empty mask.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_termination as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    });
}

/// Whether Ctrl-C was pressed (or, see [`also_on_termination`], SIGTERM or SIGHUP came).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The exit code of an interrupted nixflash: 128 + the signal, as a shell reports it (130 for
/// Ctrl-C).
pub fn exit_code() -> u8 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => 130,
        s => (128 + s) as u8,
    }
}

/// An error if Ctrl-C was pressed.
pub fn check() -> anyhow::Result<()> {
    if interrupted() {
        return Err(
            crate::error::Failure::new(crate::error::Kind::Interrupted, "interrupted").into(),
        );
    }
    Ok(())
}
