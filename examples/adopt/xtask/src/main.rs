//! This project's `cargo xtask`: its own tasks, with phasegate's commands
//! mounted as `cargo xtask db ...`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
enum Xtask {
    /// Database migrations: migrate, rollback, verify, lint, status, ... (phasegate)
    Db(phasegate_cli::Args),
}

fn main() -> std::process::ExitCode {
    match Xtask::parse() {
        Xtask::Db(args) => phasegate_cli::run(args, "cargo xtask db"),
    }
}
