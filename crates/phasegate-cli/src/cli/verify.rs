//! The arguments of `verify` (and the disposable servers `bench` and
//! `demo` start too): where the rehearsal's PostgreSQL comes from, and
//! another tool's folder to audit; and `--html FILE`, which verify shares
//! with migrate, rollback, recover and bench. Part of `cli`, split off to
//! keep files short.

use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};

use super::{LockHoldArgs, SetArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The server URL when one is given; else Docker when the engine answers
    /// and the image is there or can be pulled; else initdb and pg_ctl
    Auto,
    /// A container (testcontainers; PHASEGATE_PG_IMAGE names the image)
    Docker,
    /// An existing server (--server-url / PHASEGATE_TEST_DATABASE_URL); a database is created and dropped
    Url,
    /// initdb and pg_ctl from this machine, in a temporary folder
    Local,
}

impl BackendArg {
    /// The engine's backend for this choice (`auto`: the server URL when
    /// one is given, else Docker or the local binaries).
    pub fn backend(self, server: &ServerArgs) -> anyhow::Result<phasegate::Backend> {
        Ok(match self {
            BackendArg::Auto => server.backend(),
            BackendArg::Docker => phasegate::Backend::Docker { image: server.image.clone() },
            BackendArg::Local => phasegate::Backend::Local,
            BackendArg::Url => phasegate::Backend::Url(server.server_url.clone().ok_or_else(|| anyhow::anyhow!("--backend url needs --server-url or PHASEGATE_TEST_DATABASE_URL"))?),
        })
    }
}

/// What `--from` names: another tool's layout (the folder follows), `auto`
/// (the folder follows), or the folder itself (layout detected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromArg {
    Layout(phasegate::foreign::Layout),
    Auto,
    Dir(PathBuf),
}

fn layout_names() -> String {
    phasegate::foreign::Layout::ALL.iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
}

/// `--from`: a layout name, `auto`, or an existing folder.
pub(super) fn parse_from(s: &str) -> Result<FromArg, String> {
    if s == "auto" {
        return Ok(FromArg::Auto);
    }
    if let Some(l) = phasegate::foreign::Layout::parse(s) {
        return Ok(FromArg::Layout(l));
    }
    let dir = PathBuf::from(s);
    if dir.is_dir() {
        return Ok(FromArg::Dir(dir));
    }
    Err(format!("`{s}` is neither a layout ({}, auto) nor a folder", layout_names()))
}

/// `--placeholder KEY=VALUE`.
pub(super) fn parse_placeholder(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// Where disposable databases come from.
#[derive(Debug, Clone, ClapArgs)]
pub struct ServerArgs {
    /// Image for the docker backend
    #[arg(long, env = "PHASEGATE_PG_IMAGE", default_value = phasegate::DEFAULT_IMAGE)]
    pub image: String,
    /// Server for the url backend (a database is created and dropped on it)
    #[arg(long, env = "PHASEGATE_TEST_DATABASE_URL", hide_env_values = true)]
    pub server_url: Option<String>,
}

impl ServerArgs {
    /// The url backend when a server is named, else Docker or the local
    /// binaries, whichever starts (`Backend::Auto`).
    pub fn backend(&self) -> phasegate::Backend {
        match self.server_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(u) => phasegate::Backend::Url(u.to_string()),
            None => phasegate::Backend::Auto { image: self.image.clone() },
        }
    }
}

#[derive(Debug, Clone, ClapArgs)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// Rehearse only this phase (earlier ones are applied first)
    #[arg(long)]
    pub phase: Option<u32>,
    /// Where the disposable PostgreSQL comes from
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Rehearse another tool's migrations folder where it lies (each migration is a phase, its
    /// down script the rollback): a layout and the folder (`--from goose db/migrations`), or just
    /// the folder (`--from db/migrations`, same as `--from auto db/migrations`: the layout is
    /// detected). Layouts: diesel, sqlx, golang-migrate, refinery, goose, dbmate, flyway, sqitch,
    /// liquibase, files (<prefix><version><sep><name>.up.sql / .down.sql pairs)
    #[arg(long, value_name = "LAYOUT|DIR", value_parser = parse_from)]
    pub from: Option<FromArg>,
    /// The foreign migrations folder for --from LAYOUT
    #[arg(value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// A value for a Flyway `${KEY}` placeholder or a goose ENVSUBST variable (repeatable)
    #[arg(long = "placeholder", value_name = "KEY=VALUE", value_parser = parse_placeholder)]
    pub placeholders: Vec<(String, String)>,
    /// SQL to run in the disposable database before the first migration: extensions, roles,
    /// tables the project keeps outside its migrations (repeatable, run in order; with --from, before
    /// the tool's own ledger table is created). Roles it or a migration creates are dropped afterwards
    #[arg(long, value_name = "FILE")]
    pub setup: Vec<PathBuf>,
    /// A column-order-only difference fails (it is a warning otherwise)
    #[arg(long)]
    pub strict: bool,
    /// Snapshot every object and table in full before and after each step, instead of only those a
    /// step changed (and their dependents); slower on a large catalog. Without it, one full snapshot
    /// at the end checks the incremental ones
    #[arg(long)]
    pub full_compare: bool,
    #[command(flatten)]
    pub locks: LockHoldArgs,
    /// Write a JUnit XML report here
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Reservations (or other rows) the seed generates (sets phasegate.seed_rows)
    #[arg(long)]
    pub seed_rows: Option<u64>,
    /// Where the run log goes (default: <dir>/logs)
    #[arg(long, value_name = "PATH")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub html: HtmlArgs,
}

/// `--html FILE` (verify, migrate, rollback, recover, bench).
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct HtmlArgs {
    /// Also write the run's HTML report (one self-contained page with charts) to FILE, whatever --format prints
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}
