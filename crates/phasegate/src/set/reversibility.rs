//! Whether a phase can be rolled back (docs/migration-set.md): one value
//! for what phases.toml says in `reversible`, `reason` and `baseline`.

/// How a phase goes back, if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reversibility {
    /// Every step has a rollback file.
    Reversible,
    /// No step has a rollback file; `reason` says why it cannot have one.
    Irreversible { reason: String },
    /// The schema that already exists: irreversible without being a point
    /// of no return, so entering it asks for no confirmation.
    Baseline { reason: String },
}

impl Reversibility {
    /// Reversible or not, with the reason given for an irreversible phase.
    pub(crate) fn new(reversible: bool, reason: Option<String>, baseline: bool) -> Reversibility {
        match (reversible, baseline) {
            (true, _) => Reversibility::Reversible,
            (false, true) => Reversibility::Baseline { reason: reason.unwrap_or_default() },
            (false, false) => Reversibility::Irreversible { reason: reason.unwrap_or_default() },
        }
    }

    pub fn is_reversible(&self) -> bool {
        matches!(self, Reversibility::Reversible)
    }

    pub fn is_baseline(&self) -> bool {
        matches!(self, Reversibility::Baseline { .. })
    }

    /// Why the phase cannot be rolled back, when phases.toml says.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Reversibility::Reversible => None,
            Reversibility::Irreversible { reason } | Reversibility::Baseline { reason } => Some(reason.as_str()),
        }
    }
}

impl super::Phase {
    pub fn reversibility(&self) -> &Reversibility {
        &self.reversibility
    }
    /// Every step has a rollback file.
    pub fn is_reversible(&self) -> bool {
        self.reversibility.is_reversible()
    }
    /// The schema that already existed when the set was started.
    pub fn is_baseline(&self) -> bool {
        self.reversibility.is_baseline()
    }
    /// Why an irreversible phase cannot be rolled back.
    pub fn reason(&self) -> Option<&str> {
        self.reversibility.reason()
    }
    /// Entering this phase asks the operator to type its name.
    pub fn needs_confirmation(&self) -> bool {
        matches!(self.reversibility, Reversibility::Irreversible { .. })
    }
}
