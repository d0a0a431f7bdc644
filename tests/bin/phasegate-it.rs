//! The `phasegate` CLI as a binary of the test package, for the integration
//! tests that need a process of their own (CARGO_BIN_EXE_phasegate-it). It
//! calls itself `cargo xtask`, like the in-process runs, so both print the
//! same hints.

fn main() -> std::process::ExitCode {
    phasegate_cli::main("cargo xtask")
}
