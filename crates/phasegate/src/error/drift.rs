//! A disagreement between the ledger and the set's files (`ledger::drift`
//! finds them): a type of its own here so `Error::Drift` needs no ledger.

/// How the ledger and the files disagree about one applied migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The forward file of an applied migration is gone.
    MissingFile,
    /// The forward file changed since it was applied.
    ForwardChanged,
    /// The rollback file changed since (a rollback runs the SQL stored at apply time).
    RollbackChanged,
    /// The validation file changed since.
    ValidationChanged,
}

/// One disagreement between the ledger and the files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    pub version: i32,
    pub kind: DriftKind,
    /// The file concerned, as the set names it.
    pub file: String,
    /// One line for people.
    pub message: String,
}

impl Drift {
    /// Whether migrating must stop: an applied forward file changed or vanished.
    /// (Changed rollback and validation files are reported; the SQL stored at
    /// apply time is what runs.)
    pub fn blocks_migrate(&self) -> bool {
        matches!(self.kind, DriftKind::MissingFile | DriftKind::ForwardChanged)
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            DriftKind::MissingFile => write!(f, "{}; restore the file before migrating", self.message),
            DriftKind::ForwardChanged => write!(f, "{} ({}); restore the applied version or add a new migration", self.message, self.file),
            DriftKind::RollbackChanged | DriftKind::ValidationChanged => write!(f, "{} ({})", self.message, self.file),
        }
    }
}
