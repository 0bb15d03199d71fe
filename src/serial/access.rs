//! Opening a serial port, and what to say when it cannot be: a missing port, permission denied
//! (which group to join), a busy port (which process holds it). `flash`, `monitor` and `doctor`
//! all use these words.

use std::io;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serialport::SerialPort;

use crate::error::{Failure, Kind};

/// How long one read of the port waits before the monitor looks at its keyboard queue again.
pub const READ_TIMEOUT: Duration = Duration::from_millis(20);

/// How long the port must be quiet before the start of a UTF-8 sequence that has not been
/// completed is shown escaped (long enough for the next byte even at 300 baud).
pub const QUIET: Duration = Duration::from_millis(250);

/// Opens `path` at `baud`: 8N1, no flow control, exclusive, reads waiting [`READ_TIMEOUT`].
pub fn open(path: &str, baud: u32) -> serialport::Result<Box<dyn SerialPort>> {
    serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(READ_TIMEOUT)
        .open()
}

/// Whether opening failed because the port does not exist (yet).
pub fn is_not_found(e: &serialport::Error) -> bool {
    e.kind() == serialport::ErrorKind::Io(io::ErrorKind::NotFound)
}

/// Why a port cannot be used, in the words flash, monitor and doctor all use.
pub fn missing(path: &str) -> Failure {
    Failure::new(
        Kind::PortNotFound,
        format!("serial port {path} does not exist"),
    )
    .hint(
        "is the board plugged in? `nixflash ports` lists the serial ports there are (usually \
         /dev/ttyACM0 or /dev/ttyUSB0 on Linux, /dev/cu.usbmodem* on macOS)",
    )
}

/// The port's group is not one of the user's.
pub fn permission_denied(path: &str) -> Failure {
    let group = device_group(Path::new(path));
    let owner = match &group {
        Some(g) => format!(" (it belongs to group `{g}`)"),
        None => String::new(),
    };
    // A port owned by root's group is no group to join: then name the usual one.
    let g = group
        .filter(|g| g != "root")
        .unwrap_or_else(|| "dialout".into());
    Failure::new(
        Kind::PortPermission,
        format!("permission denied opening serial port {path}{owner}"),
    )
    .hint(join_group(&g))
    .hint("on NixOS: users.users.<you>.extraGroups = [ \"dialout\" ];")
}

/// How to join the group that may use serial ports.
pub fn join_group(group: &str) -> String {
    format!(
        "add yourself to group `{group}`: `sudo usermod -aG {group} $USER`, then log out and in \
         again (serial ports belong to `dialout` on Debian, Ubuntu and Fedora, `uucp` on Arch)"
    )
}

/// Another program has the port open.
pub fn busy(path: &str) -> Failure {
    held(path, &port_holders(Path::new(path)))
        .hint("close that program (another serial monitor, a flasher, an IDE) and try again")
}

/// The error for a port that `holders` have open (empty: holders that could not be found).
fn held(path: &str, holders: &[Holder]) -> Failure {
    let mut msg = format!("serial port {path} is busy: another program has it open");
    if holders.is_empty() {
        return Failure::new(Kind::PortBusy, msg).hint(format!(
            "which program holds it could not be found (other users' processes are hidden \
             unless you are root); `fuser -v {path}` may tell"
        ));
    }
    let list: Vec<String> = holders
        .iter()
        .map(|h| format!("{} (pid {})", h.command, h.pid))
        .collect();
    msg.push_str(&format!("\n  held by: {}", list.join(", ")));
    Failure::new(Kind::PortBusy, msg)
}

/// Fails when another process has `path` open, found without opening the port (which would
/// reset an Arduino): a flasher would share the port's bytes with it, and a serial monitor reads
/// the bootloader's replies before the flasher can. Finds nothing where there is no `/proc`.
pub fn check_free(path: &str) -> Result<(), Failure> {
    if !is_terminal_device(Path::new(path)) {
        return Ok(());
    }
    // A process that holds a pty's master end too is the other end of the line (a simulated
    // board), not a program competing for the port.
    let board_ends = pty_masters(Path::new(path));
    let holders: Vec<Holder> = port_holders(Path::new(path))
        .into_iter()
        .filter(|h| !board_ends.contains(&h.pid))
        .collect();
    if holders.is_empty() {
        return Ok(());
    }
    let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
    Err(held(path, &holders)
        .hint(format!(
            "quit the monitor or other program that has the port (Ctrl-] or Ctrl-C in its \
             terminal, or `kill {}`), then flash again",
            pids.join(" ")
        ))
        .hint("`nixflash flash --monitor` flashes, then opens the monitor on the same port"))
}

/// The processes that hold the master end of the pty `path` (/dev/pts/N): an fd of /dev/ptmx
/// whose `tty-index` in /proc/<pid>/fdinfo is N. Empty for other ports, and where there is no /proc.
fn pty_masters(path: &Path) -> Vec<u32> {
    let index = path.canonicalize().ok().and_then(|p| {
        p.strip_prefix("/dev/pts")
            .ok()?
            .to_str()?
            .parse::<u32>()
            .ok()
    });
    let Some(index) = index else {
        return Vec::new();
    };
    let wanted = format!("tty-index:\t{index}");
    processes_with_fd(|proc_dir, fd| {
        let is_ptmx = std::fs::read_link(fd.path())
            .is_ok_and(|l| l == Path::new("/dev/ptmx") || l == Path::new("/dev/pts/ptmx"));
        is_ptmx
            && std::fs::read_to_string(proc_dir.join("fdinfo").join(fd.file_name()))
                .is_ok_and(|info| info.lines().any(|l| l == wanted))
    })
    .into_iter()
    .map(|(pid, _)| pid)
    .collect()
}

/// The processes, by pid and /proc folder, that have an open file `fd_matches` accepts (given
/// the process's /proc folder and the fd's entry in its `fd` folder). Only the processes this
/// user may inspect; empty where there is no /proc.
fn processes_with_fd(
    fd_matches: impl Fn(&Path, &std::fs::DirEntry) -> bool,
) -> Vec<(u32, std::path::PathBuf)> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let dir = entry.path();
            let fds = std::fs::read_dir(dir.join("fd")).ok()?;
            let holds = fds.flatten().any(|fd| fd_matches(&dir, &fd));
            holds.then_some((pid, dir))
        })
        .collect()
}

/// Whether `path` is a terminal device (a serial port, a pty) by its name once links are
/// followed (/dev/serial/by-id/... is /dev/ttyUSB0): not /dev/null, which every process holds.
fn is_terminal_device(path: &Path) -> bool {
    let Ok(real) = path.canonicalize() else {
        return false;
    };
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    real.starts_with("/dev/pts") || ["tty", "cu.", "rfcomm"].iter().any(|p| name.starts_with(p))
}

/// The error for a port that could not be opened.
pub fn explain(path: &str, e: &serialport::Error) -> anyhow::Error {
    use serialport::ErrorKind as K;
    match e.kind() {
        K::Io(io::ErrorKind::NotFound) => missing(path).into(),
        K::Io(io::ErrorKind::PermissionDenied) => permission_denied(path).into(),
        K::NoDevice => busy(path).into(),
        K::Unknown if e.description.contains("Inappropriate ioctl") => Failure::new(
            Kind::PortNotSerial,
            format!("{path} is not a serial port ({})", e.description),
        )
        .hint("`nixflash ports` lists the serial ports")
        .into(),
        _ => anyhow::anyhow!("cannot open serial port {path}: {}", e.description),
    }
}

/// Checks that `path` exists and that this user may open it, without opening it: opening a port
/// pulses DTR, which resets an Arduino just before its flasher would.
pub fn check(path: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(path).into()),
        Err(e) => return Err(e).with_context(|| format!("cannot read serial port {path}")),
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(Path::new(path).as_os_str().as_bytes())
            .with_context(|| format!("invalid port name {path}"))?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let r = unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) };
        if r != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::PermissionDenied {
                return Err(permission_denied(path).into());
            }
            return Err(err).with_context(|| format!("cannot open serial port {path}"));
        }
    }
    Ok(())
}

/// The name of the group that owns a device file.
fn device_group(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        group_name(std::fs::metadata(path).ok()?.gid())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The system's groups, name and id, from /etc/group (empty where there is none).
pub fn system_groups() -> Vec<(String, u32)> {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _ = f.next();
            Some((name.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

/// The name of group `gid`.
pub fn group_name(gid: u32) -> Option<String> {
    system_groups()
        .into_iter()
        .find_map(|(name, id)| (id == gid).then_some(name))
}

/// A process that has a file open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

/// The processes (other than this one) that have `path` open, found through `/proc/*/fd`
/// (Linux; only the processes this user may inspect). Empty elsewhere.
pub fn port_holders(path: &Path) -> Vec<Holder> {
    let Ok(target) = path.canonicalize() else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found: Vec<Holder> =
        processes_with_fd(|_, fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target))
            .into_iter()
            .filter(|(pid, _)| *pid != me)
            .map(|(pid, dir)| Holder {
                pid,
                command: std::fs::read_to_string(dir.join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into()),
            })
            .collect();
    found.sort_by_key(|h| h.pid);
    found
}
