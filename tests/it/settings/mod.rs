//! Settings that never enter the Nix store: the firmware's reader ([`reader`]), `nixflash image`
//! with a real ESP32-C3 ELF ([`image`]), and what `flash --set` and `image` refuse ([`refused`]).

mod reader;
