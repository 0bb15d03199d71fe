//! The flake inputs' pins (`templates/pins.toml`): the GitHub repository and commit of each
//! input a generated flake.nix names, and the flake.lock that locks them.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::templates::TEMPLATES;

/// One flake input as `templates/pins.toml` pins it: a GitHub repository at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pin {
    pub owner: String,
    pub repo: String,
    /// The branch flake.nix follows (`nixflash update` moves the pin along it).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub rev: String,
    pub nar_hash: String,
    pub last_modified: u64,
    /// Where the pin came from.
    pub from: String,
    /// Inputs of this input that follow the project's own (`nixpkgs = "nixpkgs"`).
    #[serde(default)]
    pub follows: BTreeMap<String, String>,
    /// The oldest Nix that can evaluate this input, if it says.
    pub min_nix: Option<crate::version::Version>,
    /// The flake reference flake.nix names, `github:<owner>/<repo>[/<ref>]`.
    #[serde(skip_deserializing)]
    pub url: String,
}

/// The pins of the flake inputs, by input name.
pub fn pins() -> Result<BTreeMap<String, Pin>> {
    let text = TEMPLATES
        .get_file("pins.toml")
        .and_then(|f| f.contents_utf8())
        .context("nixflash was built without templates/pins.toml")?;
    let mut pins: BTreeMap<String, Pin> =
        toml::from_str(text).context("templates/pins.toml is invalid")?;
    for pin in pins.values_mut() {
        pin.url = format!("github:{}/{}", pin.owner, pin.repo);
        if let Some(r) = &pin.git_ref {
            pin.url.push('/');
            pin.url.push_str(r);
        }
    }
    Ok(pins)
}

/// The flake.lock that locks every input to its pin, as Nix writes it (keys sorted, two-space
/// indent), so that Nix neither rewrites it nor downloads anything to check it.
pub fn flake_lock(pins: &BTreeMap<String, Pin>) -> String {
    use serde_json::{json, Map, Value};
    let mut nodes = Map::new();
    let mut root_inputs = Map::new();
    for (name, pin) in pins {
        let mut original = json!({ "owner": pin.owner, "repo": pin.repo, "type": "github" });
        if let Some(r) = &pin.git_ref {
            original["ref"] = json!(r);
        }
        let mut node = json!({
            "locked": {
                "lastModified": pin.last_modified,
                "narHash": pin.nar_hash,
                "owner": pin.owner,
                "repo": pin.repo,
                "rev": pin.rev,
                "type": "github",
            },
            "original": original,
        });
        if !pin.follows.is_empty() {
            let inputs: Map<String, Value> = pin
                .follows
                .iter()
                .map(|(input, target)| (input.clone(), json!([target])))
                .collect();
            node["inputs"] = Value::Object(inputs);
        }
        nodes.insert(name.clone(), node);
        root_inputs.insert(name.clone(), json!(name));
    }
    nodes.insert("root".into(), json!({ "inputs": root_inputs }));
    let lock = json!({ "nodes": nodes, "root": "root", "version": 7 });
    let mut text = serde_json::to_string_pretty(&lock).expect("JSON values serialize");
    text.push('\n');
    text
}
