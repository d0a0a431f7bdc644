//! `cargo xtask` as a plain binary for the integration tests that need a
//! process of their own (CARGO_BIN_EXE_phasegate).

fn main() {
    std::process::exit(xtask::commands::main_process());
}
