//! phasegate's command line: clap arguments, one file per command, the
//! text / JSON / JUnit / Markdown renderers, exit codes and progress bars.
//! Mount it in another project's xtask with [`Args`] and [`run`].

pub mod bench;
pub mod cli;
pub mod commands;
pub mod report;

pub use commands::{main, main_process, Env, Io};
