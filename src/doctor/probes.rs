//! Debug-probe access (Linux), checked in a Cortex-M project or with `doctor --probes`: that udev
//! rules let the user open each probe of the families' probe tables (probe-rs talks to the probe
//! over USB, without a serial port), and that the group those rules name exists and holds the
//! user. The rules to install are written from the same tables ([`udev_rules`]).

use std::path::{Path, PathBuf};

use super::access::{user, RULE_DIRS};
use super::Check;
use crate::board::probe::Probe;
use crate::serial::access::system_groups;

/// The group the rules give the probes to, as probe-rs' own rules do.
const GROUP: &str = "plugdev";

/// Where `nixflash doctor --udev-rules` says to write them: a file of nixflash's own (an existing
/// 69-probe-rs.rules may cover more probes than nixflash knows), numbered below 73, where udev
/// turns `uaccess` into access for the user at the machine.
pub const RULES_FILE: &str = "/etc/udev/rules.d/69-nixflash-probes.rules";

/// What the checks read of the machine.
#[derive(Debug, Clone)]
pub(super) struct Machine {
    /// The udev rules folders.
    pub dirs: Vec<PathBuf>,
    pub root: bool,
    /// The user's group ids.
    pub gids: Vec<u32>,
    /// The system's groups: name and id.
    pub groups: Vec<(String, u32)>,
    /// NixOS, where rules and groups come from configuration.nix.
    pub nixos: bool,
}

impl Machine {
    fn here() -> Machine {
        let (root, gids) = user();
        Machine {
            dirs: RULE_DIRS.iter().map(PathBuf::from).collect(),
            root,
            gids,
            groups: system_groups(),
            nixos: Path::new("/etc/NIXOS").exists(),
        }
    }
}

/// The checks of probe access on this machine.
pub(super) fn probe_checks(probes: &[&Probe]) -> Vec<Check> {
    checks(probes, &Machine::here())
}

pub(super) fn checks(probes: &[&Probe], m: &Machine) -> Vec<Check> {
    let mut out = vec![rules_check(probes, m)];
    out.extend(group_check(m));
    out
}

/// The udev rules for `probes`, one per probe with its name as a comment: mode 660, group
/// plugdev, and `uaccess` for the user logged in at the machine.
pub fn udev_rules(probes: &[&Probe]) -> String {
    let mut out = format!(
        "# Debug probes, for probe-rs without root: written by `nixflash doctor --udev-rules` from\n\
         # nixflash's probe tables. TAG+=\"uaccess\" lets the user logged in at the machine open them\n\
         # (udev applies it in files numbered below 73), GROUP=\"{GROUP}\" its members (over SSH too).\n\
         # Install: nixflash doctor --udev-rules | sudo tee {RULES_FILE}\n\
         # then:    sudo udevadm control --reload && sudo udevadm trigger\n"
    );
    for p in probes {
        let product = match p.id.pid {
            Some(pid) => format!(", ATTRS{{idProduct}}==\"{pid:04x}\""),
            None => String::new(),
        };
        out.push_str(&format!(
            "\n# {}: {}\nATTRS{{idVendor}}==\"{:04x}\"{product}, MODE=\"660\", GROUP=\"{GROUP}\", \
             TAG+=\"uaccess\"\n",
            p.name, p.about, p.id.vid
        ));
    }
    out
}

/// Whether a rule line gives access to the probe: its vendor, its product or none named (a rule
/// for the whole vendor), and a mode, group or `uaccess`. A probe of any product of a vendor is
/// covered by a rule for the vendor whatever product it names.
fn covers(line: &str, p: &Probe) -> bool {
    let l: String = line
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if l.starts_with('#') || !l.contains(&format!("idvendor}}==\"{:04x}\"", p.id.vid)) {
        return false;
    }
    let product = match p.id.pid {
        Some(pid) => !l.contains("idproduct") || l.contains(&format!("idproduct}}==\"{pid:04x}\"")),
        None => true,
    };
    product && (l.contains("uaccess") || l.contains("mode=") || l.contains("group="))
}

/// The rules files in `dirs` that cover each probe, in udev's folders' order.
fn covering<'p>(probes: &[&'p Probe], dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<&'p Probe>) {
    let mut files = Vec::new();
    let mut missing: Vec<&Probe> = probes.to_vec();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for f in paths
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rules"))
        {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let before = missing.len();
            missing.retain(|p| !text.lines().any(|l| covers(l, p)));
            if missing.len() < before {
                files.push(f);
            }
        }
    }
    (files, missing)
}

/// Whether udev rules let the user open every probe; if not, the rules to write, or on NixOS the
/// package whose rules to add.
fn rules_check(probes: &[&Probe], m: &Machine) -> Check {
    let (files, missing) = covering(probes, &m.dirs);
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if missing.is_empty() {
        return Check::ok(format!(
            "debug probes: udev rules let you open them ({})",
            shown.join(", ")
        ));
    }
    // None covered: the kinds of probe; some: which are not, by id.
    let mut names: Vec<String> = Vec::new();
    for p in &missing {
        let name = match files.is_empty() {
            true => p.name.clone(),
            false => format!("{} {}", p.name, p.id),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let what = format!(
        "debug probes: no udev rule lets you open {}: probe-rs cannot reach them without root",
        names.join(", ")
    );
    if m.root {
        return Check::ok(
            "debug probes: running as root (other users need udev rules: `nixflash doctor \
             --udev-rules` prints them)",
        );
    }
    let fix = if m.nixos {
        "add `services.udev.packages = [ pkgs.probe-rs-tools ];` to /etc/nixos/configuration.nix \
         (nixpkgs' probe-rs-tools installs probe-rs' udev rules), then `sudo nixos-rebuild switch` \
         and plug the probe in again"
            .to_string()
    } else {
        format!(
            "`nixflash doctor --udev-rules | sudo tee {RULES_FILE}` (one rule per probe, \
             MODE=\"660\", GROUP=\"{GROUP}\", TAG+=\"uaccess\"), then `sudo udevadm control \
             --reload && sudo udevadm trigger` and plug the probe in again"
        )
    };
    if files.is_empty() {
        Check::fail(what, fix)
    } else {
        // Rules for some of them: the others are worth knowing, the user may have none of them.
        Check::warn(
            format!("{what} (rules for the others: {})", shown.join(", ")),
            fix,
        )
    }
}

/// The group the rules name: it must exist (newer systemd skips `uaccess` in a rule whose group
/// does not), and holds the user for access from outside a local login (SSH, services).
fn group_check(m: &Machine) -> Option<Check> {
    if m.root {
        return None;
    }
    let Some((_, gid)) = m.groups.iter().find(|(n, _)| n == GROUP) else {
        let fix = if m.nixos {
            format!(
                "add `users.groups.{GROUP} = {{ }};` and `users.users.<you>.extraGroups = \
                 [ \"{GROUP}\" ];` to /etc/nixos/configuration.nix, then `sudo nixos-rebuild switch`"
            )
        } else {
            format!(
                "`sudo groupadd --system {GROUP} && sudo usermod -aG {GROUP} $USER`, then log \
                 out and in again"
            )
        };
        return Some(Check::warn(
            format!(
                "debug probes: there is no {GROUP} group, which the probe rules name (newer \
                 systemd then ignores their TAG+=\"uaccess\" too)"
            ),
            fix,
        ));
    };
    if m.gids.contains(gid) {
        return Some(Check::ok(format!(
            "debug probes: you are in the {GROUP} group"
        )));
    }
    let fix = if m.nixos {
        format!(
            "add \"{GROUP}\" to `users.users.<you>.extraGroups` in /etc/nixos/configuration.nix, \
             then `sudo nixos-rebuild switch`"
        )
    } else {
        format!("`sudo usermod -aG {GROUP} $USER`, then log out and in again")
    };
    Some(Check::warn(
        format!(
            "debug probes: you are not in the {GROUP} group (a local login reaches the probes \
             through uaccess; SSH and services need the group)"
        ),
        fix,
    ))
}

#[cfg(test)]
#[path = "probes_tests.rs"]
mod tests;
