//! The `phasegate` binary: runs the command and exits with its code.

fn main() {
    std::process::exit(phasegate_cli::main_process());
}
