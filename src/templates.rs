//! The built-in templates (`templates/`), compiled into nixflash: what [`crate::render`] renders
//! a project from, the flake inputs' pins ([`crate::pins`]), and what the board database checks
//! a family's option files against.

use include_dir::{include_dir, Dir};

/// The `templates/` folder.
pub static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Whether templates/<family>/ has a template that renders to `path` (each option choice's
/// `files` must name one).
pub fn family_has_template(family: &str, path: &str) -> bool {
    TEMPLATES
        .get_file(format!("{family}/{path}.jinja"))
        .is_some()
}
