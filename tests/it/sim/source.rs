//! Where the simulator comes from: PATH, or the project's flake (`packages.<system>.simulator`),
//! built by real Nix through ../shared/tools/nix-offline.

use std::time::Duration;

use super::{one_sim, ready};
use crate::common::firmware::Kind;
use crate::common::offline::nix_offline;
use crate::common::process::{run_bounded, text};
use crate::common::{copy_dir, skip};

#[test]
fn without_simavr_on_path_the_flake_s_simulator_is_built_and_used() {
    let test = "without_simavr_on_path_the_flake_s_simulator_is_built_and_used";
    let Some(uno) = ready(test, Kind::Uno) else {
        return;
    };
    let off = match nix_offline() {
        Ok(off) => off,
        Err(why) => return skip(test, &why),
    };
    // The project where Nix takes it for a folder of its own (not inside this repository), with
    // a PATH that has nix and nothing else of the host's.
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("fw");
    copy_dir(&uno.project, &project);
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(which::which("nix").unwrap(), bin.join("nix")).unwrap();
    let _one = one_sim();
    let o = run_bounded(
        off.nixflash(&project)
            .env("PATH", &bin)
            .args([
                "sim",
                "--elf",
                uno.elf.to_str().unwrap(),
                "--duration",
                "2",
                "--expect",
                "Hello from fw on the Arduino Uno!",
                "--",
            ])
            .args(&off.override_args),
        Duration::from_secs(600),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        err.contains("simavr on PATH cannot be used (simavr is not on PATH): building the one"),
        "{err}"
    );
    let line = err
        .lines()
        .find(|l| l.trim_start().starts_with("Simulator "))
        .unwrap_or_else(|| panic!("no Simulator line: {err}"));
    assert!(
        line.contains("/nix/store/") && line.ends_with(", pinned by the project's flake.nix)"),
        "{line}"
    );
    assert!(out.contains("Hello from fw on the Arduino Uno!"), "{out}");
}
