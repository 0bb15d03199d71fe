//! The `nixflash` command line; everything it does is in the library (`nixflash::cmd`).

fn main() -> std::process::ExitCode {
    nixflash::cmd::cli::main()
}
