//! phasegate's command line: clap arguments, one file per command, the
//! text / JSON / JUnit / Markdown renderers, exit codes (docs/exit-codes.md) and
//! progress bars, on top of the `phasegate` engine.
//!
//! Mount it in another project's xtask:
//!
//! ```no_run
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! enum Xtask {
//!     /// Database migrations (phasegate)
//!     Db(phasegate_cli::Args),
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     match Xtask::parse() {
//!         Xtask::Db(args) => phasegate_cli::run(args, "cargo xtask db"),
//!     }
//! }
//! ```
//!
//! or make it the whole program: `fn main() -> ExitCode { phasegate_cli::main("cargo xtask") }`.

/// The measurements of docs/targets.md (`cargo xtask bench`): this
/// repository's own benchmarks on its example sets, built only with the
/// `bench` feature (this repository's xtask and tests turn it on), so an
/// adopter's build carries none of it.
#[cfg(feature = "bench")]
pub mod bench;
mod cli;
mod commands;
mod errors;
mod exit;
mod fmt;
mod report;

use std::process::ExitCode;

pub use cli::{command, Args};
use commands::Env;

/// What this repository's own integration tests drive the CLI with (argv
/// in, exit code and output back, no process) and check against; not part
/// of the API an adopter mounts.
#[doc(hidden)]
pub mod testing {
    pub use crate::commands::{run_argv, Env, Io};
    pub use crate::errors::INSTALL_HINT;
    #[cfg(feature = "browser")]
    pub use crate::report::html::browser;
}

/// Parses the process's arguments as program `bin` (the name help, usage
/// and hints show, e.g. `cargo xtask`) and runs the command.
pub fn main(bin: &str) -> ExitCode {
    let env = Env::of_process(bin);
    let matches = command(bin).get_matches();
    match <Args as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(args) => exit_code(commands::run_process(args, &env)),
        Err(e) => e.exit(),
    }
}

/// Runs arguments the caller parsed (phasegate mounted in its own CLI);
/// `bin` is how the user reaches phasegate there (`cargo xtask db`), for
/// the commands that hints and reports name.
pub fn run(args: Args, bin: &str) -> ExitCode {
    exit_code(commands::run_process(args, &Env::of_process(bin)))
}

fn exit_code(code: exit::Exit) -> ExitCode {
    code.into()
}
