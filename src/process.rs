//! Running other programs (git, nix, cargo, the flashers): the one place nixflash starts a
//! process.
//!
//! A [`Cmd`] is run one of three ways: [`Cmd::output`] quietly, its output kept; [`Cmd::run`]
//! with its stderr kept and, if asked, shown line by line as it comes; [`Cmd::attached`] on the
//! terminal, as a flasher is. Every way forwards Ctrl-C: a SIGINT sent to nixflash alone (not
//! from the terminal, which signals the child itself) is passed to the child, by the thread that
//! reaps it and only before it is reaped, so that no other process can get it.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::interrupt;

/// A command line, its folder and its environment.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    /// Variables to set (`Some`) or remove (`None`), in order.
    env: Vec<(OsString, Option<OsString>)>,
}

/// A finished command's output.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// Its stderr: all of it from [`Cmd::output`]; from [`Cmd::run`] the first [`LOG_HEAD`]
    /// and last [`LOG_TAIL`] lines.
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The exit code, or 128 + the signal that ended it.
    pub fn code(&self) -> i32 {
        exit_code(self.status)
    }
}

/// How many lines of a long stderr [`Cmd::run`] keeps: the start (evaluation warnings, what will
/// be built) and the end (what failed).
pub const LOG_HEAD: usize = 500;
pub const LOG_TAIL: usize = 5000;

/// What [`Cmd::run`] does with each line of stderr as it comes.
pub enum Show<'a> {
    /// Nothing: it is only kept.
    Quiet,
    /// Reported as [`Event::Output`](crate::report::Event::Output) lines (the command line
    /// shows them on its stderr).
    Report(&'a dyn crate::report::Reporter),
    /// Given to a function (a progress display).
    Each(&'a mut (dyn FnMut(&str) + Send)),
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((k.as_ref().to_os_string(), Some(v.as_ref().to_os_string())));
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Cmd {
        self.env.push((k.as_ref().to_os_string(), None));
        self
    }

    pub fn program(&self) -> &OsStr {
        &self.program
    }

    #[cfg(test)]
    pub(crate) fn get_args(&self) -> impl Iterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// The command as a shell would take it: the variables it sets (but PATH), the program and
    /// its arguments, each quoted where needed.
    pub fn display(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in &self.env {
            if let (Some(v), false) = (v, k == "PATH") {
                parts.push(format!(
                    "{}={}",
                    k.to_string_lossy(),
                    shell_word(&v.to_string_lossy())
                ));
            }
        }
        parts.push(shell_word(&self.program.to_string_lossy()));
        parts.extend(self.args.iter().map(|a| shell_word(&a.to_string_lossy())));
        parts.join(" ")
    }

    fn std(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args);
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    fn spawn(&self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> std::io::Result<Child> {
        self.std()
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
    }

    /// Runs it without input and keeps all of its output; nothing is shown.
    pub fn output(&self) -> std::io::Result<Output> {
        let mut child = self.spawn(Stdio::null(), Stdio::piped(), Stdio::piped())?;
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let status = wait(&mut child)?;
        let stderr = stderr.join().unwrap_or_default();
        Ok(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Runs it without input, keeping its stdout and the start and end of its stderr, each line
    /// of which is shown as `show` says as it comes.
    pub fn run(&self, mut show: Show<'_>) -> std::io::Result<Output> {
        let mut child = self.spawn(Stdio::null(), Stdio::piped(), Stdio::piped())?;
        let stdout = read_all(child.stdout.take());
        let stderr = child.stderr.take().expect("piped");
        let (status, log) = std::thread::scope(|s| {
            let tee = s.spawn(move || {
                let mut head = Vec::new();
                let mut tail = VecDeque::new();
                let mut reader = BufReader::new(stderr);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    match &mut show {
                        Show::Quiet => {}
                        Show::Report(r) => r.report(crate::report::Event::Output {
                            line: text.to_string(),
                            detail: false,
                        }),
                        Show::Each(f) => f(text),
                    }
                    if head.len() < LOG_HEAD {
                        head.push(text.to_string());
                    } else {
                        tail.push_back(text.to_string());
                        if tail.len() > LOG_TAIL {
                            tail.pop_front();
                        }
                    }
                }
                head.extend(tail);
                head.join("\n")
            });
            let status = wait(&mut child);
            (status, tee.join().unwrap_or_default())
        });
        Ok(Output {
            status: status?,
            stdout: stdout.join().unwrap_or_default(),
            stderr: log,
        })
    }

    /// Runs it on the terminal (stdin, stdout and stderr are nixflash's) and returns its exit
    /// code (128 + the signal if one ended it).
    pub fn attached(&self) -> std::io::Result<i32> {
        let mut child = self.spawn(Stdio::inherit(), Stdio::inherit(), Stdio::inherit())?;
        Ok(exit_code(wait(&mut child)?))
    }

    /// Starts it with no output shown; [`Started::finish`] waits for it.
    pub fn start(&self) -> std::io::Result<Started> {
        let mut child = self.spawn(Stdio::null(), Stdio::null(), Stdio::piped())?;
        let stderr = read_all(child.stderr.take());
        Ok(Started { child, stderr })
    }
}

impl Cmd {
    /// Starts it without input, its stdout and stderr piped for the caller to read while it runs
    /// (a simulator whose output is watched as it comes). [`Running`] passes Ctrl-C on, can stop
    /// it, and kills it if it is dropped before it ended.
    pub fn spawn_piped(&self) -> std::io::Result<Running> {
        let child = self.spawn(Stdio::null(), Stdio::piped(), Stdio::piped())?;
        Ok(Running {
            child,
            status: None,
            forwarded: false,
        })
    }

    /// As [`Cmd::spawn_piped`], in a process group of its own, so that
    /// [`Running::kill_group`] ends it and what it started (ravedude's avrdude) together.
    #[cfg(unix)]
    pub fn spawn_piped_group(&self) -> std::io::Result<Running> {
        use std::os::unix::process::CommandExt;
        let child = self
            .std()
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Running {
            child,
            status: None,
            forwarded: false,
        })
    }
}

/// A command started by [`Cmd::spawn_piped`].
pub struct Running {
    child: Child,
    status: Option<ExitStatus>,
    forwarded: bool,
}

impl Running {
    /// Its stdout, to read (once).
    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Its stderr, to read (once).
    pub fn stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// Its exit status if it has ended. A Ctrl-C that reached nixflash is passed on to it first
    /// (once), as [`Cmd::run`] does.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        if self.status.is_none() && !self.forwarded && interrupt::interrupted() {
            forward_interrupt(self.child.id());
            self.forwarded = true;
        }
        Ok(self.status)
    }

    /// Asks it to stop, as Ctrl-C would (SIGINT), if it is still running.
    pub fn interrupt(&mut self) -> std::io::Result<()> {
        // The signal goes only to a child that has not been reaped, so its pid is its own.
        if self.try_wait()?.is_none() {
            forward_interrupt(self.child.id());
        }
        Ok(())
    }

    /// Kills every process of its group (one started by [`Cmd::spawn_piped_group`]): it and
    /// what it started. The group outlives it while one of them runs, so its id is still theirs.
    #[cfg(unix)]
    pub fn kill_group(&mut self) {
        // SAFETY: killpg(2) on the group this child leads.
        unsafe {
            libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL);
        }
    }

    /// Waits for it to end (passing Ctrl-C on); its exit code, or 128 + the signal.
    pub fn wait(&mut self) -> std::io::Result<i32> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(exit_code(status));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A command started by [`Cmd::start`].
pub struct Started {
    child: Child,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl Started {
    /// Waits for it; its exit status and stderr.
    pub fn finish(mut self) -> Result<(ExitStatus, String)> {
        let status = wait(&mut self.child).context("cannot wait for a child process")?;
        let err = self.stderr.join().unwrap_or_default();
        Ok((status, String::from_utf8_lossy(&err).into_owned()))
    }
}

fn read_all(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for the child, passing on a Ctrl-C that reached nixflash alone. The signal is sent by
/// this thread between two `try_wait`s that found the child running, so the child has not been
/// reaped and its pid is still its own.
fn wait(child: &mut Child) -> std::io::Result<ExitStatus> {
    let mut forwarded = false;
    let mut polls = 0u32;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if !forwarded && interrupt::interrupted() {
            forward_interrupt(child.id());
            forwarded = true;
        }
        std::thread::sleep(poll_interval(polls));
        polls = polls.saturating_add(1);
    }
}

/// How long [`wait`] sleeps after its `n`th look at a running child: 0.5 ms for the first
/// 20 ms, which most of nixflash's children (git, `nix --version`) take, then 10 ms. A flat 10 ms
/// cost each short child 5 ms on average after it had ended.
fn poll_interval(n: u32) -> Duration {
    if n < 40 {
        Duration::from_micros(500)
    } else {
        Duration::from_millis(10)
    }
}

#[cfg(unix)]
fn forward_interrupt(pid: u32) {
    // SAFETY: kill(2) on our own child, which has not been reaped (see `wait`).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
}

#[cfg(not(unix))]
fn forward_interrupt(_pid: u32) {}

/// The exit code, or 128 + the signal that ended it.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        }
        #[cfg(not(unix))]
        1
    })
}

/// `s` as one word for a POSIX shell: as it is when that is safe, else in single quotes.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,/:=@#+%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Words as one shell command line.
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(".#default"), ".#default");
        assert_eq!(shell_word("nix-command flakes"), "'nix-command flakes'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_line(&["a b", "c"]), "'a b' c");
    }

    #[test]
    fn display_shows_variables_but_path() {
        let c = Cmd::new("/opt/bin/ravedude")
            .env("PATH", "/x")
            .env("CARGO_MANIFEST_DIR", "/tmp/cfg")
            .args(["-P", "/dev/ttyACM0", "/p/fw.elf"]);
        assert_eq!(
            c.display(),
            "CARGO_MANIFEST_DIR=/tmp/cfg /opt/bin/ravedude -P /dev/ttyACM0 /p/fw.elf"
        );
    }

    #[test]
    fn output_and_run_keep_what_the_child_wrote() {
        let o = Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output()
            .unwrap();
        assert_eq!(o.code(), 3);
        assert_eq!(o.stdout_text(), "out\n");
        assert_eq!(o.stderr, "err\n");
        let mut seen = Vec::new();
        let mut each = |l: &str| seen.push(l.to_string());
        let o = Cmd::new("sh")
            .args(["-c", "echo a >&2; echo b >&2; echo json"])
            .run(Show::Each(&mut each))
            .unwrap();
        assert!(o.success());
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(o.stderr, "a\nb");
        assert_eq!(o.stdout_text(), "json\n");
    }

    #[test]
    fn a_missing_program_is_an_error_of_kind_not_found() {
        let e = Cmd::new("/nixflash-no-such-program").output().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
