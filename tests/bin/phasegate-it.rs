//! The `phasegate` CLI as a binary of the test package, for the integration
//! tests that need a process of their own (CARGO_BIN_EXE_phasegate-it).

fn main() {
    std::process::exit(phasegate_cli::main_process());
}
