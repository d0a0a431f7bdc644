//! The `phasegate` binary.

fn main() -> std::process::ExitCode {
    phasegate_cli::main("phasegate")
}
