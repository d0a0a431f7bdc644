//! Errors as the command line shows them: the engine's message, plus the
//! hint only a command line can give (a flag to pass, the command to run
//! next, under the caller's program name).

use phasegate::{change, Confirmation, Error, RestoreBlock};

/// The three ways to a PostgreSQL for rehearsals, said when none worked.
pub const INSTALL_HINT: &str = "to get a server, start a Docker engine (Debian: apt-get install docker.io && dockerd &) with a PostgreSQL image (docker pull postgres:15, or without a registry `bash ci/build-pg-image.sh` and export PHASEGATE_PG_IMAGE=phasegate/postgres:15), or install PostgreSQL's server binaries for the local backend (Debian: apt-get install postgresql), or set PHASEGATE_TEST_DATABASE_URL (--server-url) to a server where phasegate may create databases";

/// One line for an error; `bin` is the program name (`cargo xtask`,
/// `phasegate`, `cargo xtask db`).
pub fn render(e: &anyhow::Error, bin: &str) -> String {
    let Some(err) = e.downcast_ref::<Error>() else {
        return one_line(&format!("{e:#}"));
    };
    if let Error::Adopt { problems } = err {
        // One line per problem, each an error line of its own.
        return problems.iter().map(|p| one_line(p)).collect::<Vec<_>>().join("\nerror: ");
    }
    let hint = match err {
        Error::NotConfirmed(Confirmation::EnterIrreversible { .. } | Confirmation::Rollback { .. } | Confirmation::Restore { .. } | Confirmation::Recover { .. }) => {
            " or pass --yes".to_string()
        }
        Error::Irreversible { phase, .. } => format!(" (`{bin} recover --phase {phase} --dry-run` shows the way back)"),
        Error::PastPointOfNoReturn { later, .. } => format!(" (`{bin} recover --phase {later} --dry-run` shows the way back)"),
        Error::BackupTooLarge { .. } => " (raise it with --max-backup-rows N, or take your own backup and pass --no-backup)".to_string(),
        Error::Reversible { phase, .. } => format!(": {bin} rollback --phase {phase}"),
        Error::LaterPhaseApplied { later, .. } => format!(": {bin} rollback --phase {later}"),
        Error::NotARunId { .. } => format!("; `{bin} history` lists them"),
        Error::RunHasNoBackups { .. } => format!(" (`{bin} history` lists runs and their backups)"),
        Error::RestoreBlocked { reason: RestoreBlock::TableGone { .. } | RestoreBlock::ColumnsGone { .. }, .. } => {
            format!(" (`{bin} migrate --phase N`)")
        }
        Error::Backend { backend: phasegate::BackendKind::Docker, .. } | Error::NoServer { .. } => format!("; {INSTALL_HINT}"),
        Error::NoMigrationSet { .. } => "; pass --dir".to_string(),
        Error::UnknownLayout { .. } => {
            format!("; name the layout: {bin} verify --from LAYOUT DIR ({})", phasegate::foreign::Layout::ALL.map(|l| l.name()).join(", "))
        }
        Error::MissingPlaceholder { name, .. } => format!("; give it a value with --placeholder {name}=VALUE"),
        Error::ReplicaLagHidden { .. } => ", or run without --max-replica-lag".to_string(),
        Error::Change(c) => match c.as_ref() {
            change::ChangeError::NeedsValue { .. } => " (--default EXPR or --fill EXPR)".to_string(),
            change::ChangeError::NullRows { .. } => " (--fill EXPR)".to_string(),
            change::ChangeError::Behind { .. } => format!(" (`{bin} status` shows what is pending)"),
            _ => String::new(),
        },
        _ => String::new(),
    };
    one_line(&format!("{err}{hint}"))
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_program() {
        let e = anyhow::Error::from(Error::LaterPhaseApplied { phase: 1, later: 2, later_name: "data".into() });
        assert_eq!(render(&e, "cargo xtask db"), "phase 2 (data) is applied after phase 1; roll it back first: cargo xtask db rollback --phase 2");
        let e = anyhow::Error::from(Error::NotConfirmed(Confirmation::Rollback { phase: 3 }));
        assert!(render(&e, "phasegate").ends_with("at the prompt or pass --yes"));
        let e = anyhow::Error::from(Error::Irreversible { phase: 4, name: "cleanup".into(), reason: "drops columns".into() });
        assert!(render(&e, "cargo xtask").ends_with("(`cargo xtask recover --phase 4 --dry-run` shows the way back)"));
        let e = anyhow::Error::from(Error::PastPointOfNoReturn { phase: 3, later: 4, later_name: "cleanup".into() });
        assert!(render(&e, "phasegate").contains("recover phase 4 first") && render(&e, "phasegate").ends_with("(`phasegate recover --phase 4 --dry-run` shows the way back)"));
        let e = anyhow::anyhow!("plain\nmessage");
        assert_eq!(render(&e, "phasegate"), "plain message");
    }
}
