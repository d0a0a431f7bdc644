//! The `cargo xtask` binary: runs the command and exits with its code.

fn main() {
    std::process::exit(xtask::commands::main_process());
}
