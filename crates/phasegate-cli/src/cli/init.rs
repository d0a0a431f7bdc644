//! The arguments of `init`. Part of `cli`, split off to keep files short.

use clap::Args as ClapArgs;

use super::SetArgs;

/// `init`: start a migration set.
#[derive(Debug, Clone, ClapArgs)]
pub struct InitArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// Read this database's schema (pg_dump --schema-only; the client must be at least the server's
    /// version) and write it as the baseline, phase 0: `migrate` on a database that holds it records it as
    /// applied without running it
    #[arg(long, value_name = "URL")]
    pub baseline_from: Option<String>,
}
