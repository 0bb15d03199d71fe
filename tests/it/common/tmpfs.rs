//! A small real tmpfs, to fill up: mounted in a mount namespace of its own (`unshare`, with a
//! user namespace when not root), so that nothing is mounted on the machine itself and it goes
//! away with the process that holds it. Commands run inside the namespace through `nsenter`; the
//! test reads the files through `/proc/<holder>/root`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::Spawned;

pub struct SmallFs {
    holder: Spawned,
    /// Where it is mounted, as seen inside the namespace.
    pub dir: PathBuf,
    user_ns: bool,
    kib: u32,
    _mount_point: tempfile::TempDir,
}

impl SmallFs {
    /// A tmpfs of `kib` KiB, or None (and why) when this machine cannot make one.
    pub fn new(kib: u32) -> Result<SmallFs, String> {
        for tool in ["unshare", "nsenter"] {
            if !super::on_path(tool) {
                return Err(format!("`{tool}` (util-linux) is not installed"));
            }
        }
        let user_ns = unsafe { libc::geteuid() } != 0;
        let mount_point = tempfile::tempdir().unwrap();
        let dir = mount_point.path().to_path_buf();
        let mut cmd = Command::new("unshare");
        if user_ns {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={kib}k nixflash-test \"$0\" && echo mounted && exec cat"
            ))
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut holder = Spawned::new(&mut cmd);
        let mut line = String::new();
        let out = holder.child.stdout.take().unwrap();
        let _ = BufReader::new(out).read_line(&mut line);
        if line.trim() != "mounted" {
            let mut err = String::new();
            if let Some(mut e) = holder.child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("cannot mount a tmpfs: {}", err.trim()));
        }
        let fs = SmallFs {
            holder,
            dir,
            user_ns,
            kib,
            _mount_point: mount_point,
        };
        let kind = fs.sh(&fs.dir, "stat -f -c %T .");
        if kind.trim() != "tmpfs" {
            return Err(format!(
                "the mount is not seen inside its namespace ({kind})"
            ));
        }
        Ok(fs)
    }

    /// `program` run inside the namespace, in `cwd` (as seen there). The folder is changed to
    /// inside the namespace: nsenter's `--wd` opens it before it enters, which would be the folder
    /// under the mount.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, cwd: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t").arg(self.holder.pid().to_string()).arg("-m");
        if self.user_ns {
            c.args(["-U", "--preserve-credentials"]);
        }
        c.args(["--", "sh", "-c", "cd \"$0\" && exec \"$@\""])
            .arg(cwd)
            .arg(program);
        c
    }

    /// A shell command run inside the namespace in `cwd`; panics if it fails.
    pub fn sh(&self, cwd: &Path, script: &str) -> String {
        let out = self
            .command("sh", cwd)
            .args(["-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Fills the tmpfs with a file `filler` at its root, leaving `pages` pages free. It checks
    /// first that it writes on the tmpfs, and never writes more than the tmpfs's size.
    pub fn fill(&self, pages: u32) {
        self.sh(
            &self.dir,
            &format!(
                "[ \"$(stat -f -c %T .)\" = tmpfs ] || {{ echo not on the tmpfs >&2; exit 1; }}
                 rm -f filler
                 head -c {} /dev/zero > filler 2>/dev/null
                 truncate -s -{} filler",
                self.kib * 1024,
                pages * 4096
            ),
        );
    }

    /// `path` (inside the namespace) as the test process can read it.
    pub fn outside(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.holder.pid()))
            .join(path.strip_prefix("/").unwrap_or(path))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // `cat` ends when its input closes; the mount goes with the namespace.
        drop(self.holder.child.stdin.take());
        let _ = self.holder.wait_for(std::time::Duration::from_secs(5));
    }
}
