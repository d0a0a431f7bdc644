//! The arguments of `import`. Part of `cli`, split off to keep files short.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use super::verify::{parse_from, parse_placeholder, FromArg};
use super::SetArgs;

/// `import`: another tool's history as a phasegate set.
#[derive(Debug, Clone, ClapArgs)]
pub struct ImportArgs {
    /// Where the set is written (`--dir`, created when missing; refused when it holds a set)
    #[command(flatten)]
    pub set: SetArgs,
    /// The history to convert: a layout and its folder (`--from goose db/migrations`), `auto` and the
    /// folder, or the folder alone (layout detected). Layouts: as `verify --from`
    #[arg(long, value_name = "LAYOUT|DIR", value_parser = parse_from, required = true)]
    pub from: Option<FromArg>,
    /// The other tool's migrations folder for --from LAYOUT
    #[arg(value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// A value for a Flyway `${KEY}` placeholder or a goose ENVSUBST variable (repeatable), written
    /// into the imported files
    #[arg(long = "placeholder", value_name = "KEY=VALUE", value_parser = parse_placeholder)]
    pub placeholders: Vec<(String, String)>,
}
