//! The generated flake's simulator outputs, as tests/it/flake_eval.rs evaluates them with the
//! fixture inputs (import-from-derivation off): `packages.<system>.simulator`, nixpkgs' simavr,
//! and `checks.<system>.sim`, which runs the firmware in it and expects what Cargo.toml's
//! `[package.metadata.nixflash.sim]` says. tests/nix_build.rs builds them.

/// Checks the simulator outputs of the project `name` on `sys`, whose firmware derivation is
/// `firmware`; `nix` runs nix with the fixture inputs and returns its stdout. With `sim` false
/// (a family without a simulator), the flake must have neither output.
pub fn check_outputs(
    nix: &dyn Fn(&[&str]) -> Vec<u8>,
    sys: &str,
    name: &str,
    firmware: &str,
    sim: bool,
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
    if !sim {
        assert_eq!((check, simulator), (None, None), "{name}");
        return;
    }
    let check = check.unwrap_or_else(|| panic!("{name} has no checks.{sys}.sim"));
    let simulator = simulator.unwrap_or_else(|| panic!("{name} has no packages.{sys}.simulator"));
    assert!(check.ends_with(&format!("-{name}-sim.drv")), "{check}");
    assert!(simulator.contains("-simavr-"), "{simulator}");
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
    for part in [
        format!("Hello from {name} on the Arduino Uno!"),
        "--mcu atmega328p --freq 16000000".to_string(),
        "avr_sadly_crashed".to_string(),
    ] {
        assert!(
            script.contains(&part),
            "checks.sim has no {part:?}: {script}"
        );
    }
}
