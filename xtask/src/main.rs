//! This repository's `cargo xtask`: phasegate's CLI, and its exit code.

fn main() {
    std::process::exit(phasegate_cli::main_process());
}
