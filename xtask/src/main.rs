//! This repository's `cargo xtask`: phasegate's command line under that name.

fn main() -> std::process::ExitCode {
    phasegate_cli::main("cargo xtask")
}
