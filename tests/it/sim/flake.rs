//! The generated flake's simulator outputs, as tests/it/flake_eval.rs evaluates them with the
//! fixture inputs (import-from-derivation off): `packages.<system>.simulator`, nixpkgs' simavr,
//! and `checks.<system>.sim`, which runs the firmware in it and expects what Cargo.toml's
//! `[package.metadata.nixflash.sim]` says. tests/nix_build.rs builds them.

/// What a board's `checks.sim` must be made of.
pub struct Expect {
    /// In the simulator derivation's name (`-simavr-`).
    pub simulator: &'static str,
    /// The board's name, in the greeting checks.sim expects.
    pub board: &'static str,
    /// What its script must say besides the greeting (the simulator's arguments).
    pub script: &'static [&'static str],
}

/// The Uno's: simavr on its MCU at its clock, watching for a crash.
pub const UNO: Expect = Expect {
    simulator: "-simavr-",
    board: "Arduino Uno",
    script: &["--mcu atmega328p --freq 16000000", "avr_sadly_crashed"],
};

/// The micro:bit v1's: QEMU's machine, stopped by `timeout` after the duration.
pub const MICROBIT_V1: Expect = Expect {
    simulator: "-qemu-",
    board: "BBC micro:bit v1",
    script: &[
        "qemu-system-arm -M microbit -kernel",
        "timeout --signal=INT",
        "-nographic",
    ],
};

/// Checks the simulator outputs of the project `name` on `sys`, whose firmware derivation is
/// `firmware`; `nix` runs nix with the fixture inputs and returns its stdout. With `sim` None
/// (a board without a simulator), the flake must have neither output.
pub fn check_outputs(
    nix: &dyn Fn(&[&str]) -> Vec<u8>,
    sys: &str,
    name: &str,
    firmware: &str,
    sim: Option<&Expect>,
) {
    let drv = |output: &str, attr: &str| -> Option<String> {
        let out = nix(&[
            "eval",
            "--json",
            &format!(".#{output}.{sys}"),
            "--apply",
            &format!("o: o.{attr}.drvPath or null"),
        ]);
        serde_json::from_slice(&out).unwrap()
    };
    let (check, simulator) = (drv("checks", "sim"), drv("packages", "simulator"));
    let Some(sim) = sim else {
        assert_eq!((check, simulator), (None, None), "{name}");
        return;
    };
    let check = check.unwrap_or_else(|| panic!("{name} has no checks.{sys}.sim"));
    let simulator = simulator.unwrap_or_else(|| panic!("{name} has no packages.{sys}.simulator"));
    assert!(check.ends_with(&format!("-{name}-sim.drv")), "{check}");
    assert!(simulator.contains(sim.simulator), "{simulator}");
    // The check runs the firmware built by packages.default in that simulator, and expects the
    // greeting `nixflash new` wrote into Cargo.toml.
    let shown = String::from_utf8(nix(&["derivation", "show", &check])).unwrap();
    let drv: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let drv = drv.as_object().unwrap().values().next().unwrap();
    let inputs = drv["inputDrvs"].as_object().unwrap();
    assert!(
        inputs.contains_key(firmware) && inputs.contains_key(&simulator),
        "checks.sim does not run the firmware in the simulator: {shown}"
    );
    let script = drv["env"]["buildCommand"].as_str().unwrap_or_default();
    let greeting = format!("Hello from {name} on the {}!", sim.board);
    for part in std::iter::once(greeting.as_str()).chain(sim.script.iter().copied()) {
        assert!(
            script.contains(part),
            "checks.sim has no {part:?}: {script}"
        );
    }
}
