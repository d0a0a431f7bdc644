//! What a change adds to a set, built phase by phase: the phases (named
//! after the change: "rename accounts.full_name: expand"), numbered after
//! the set's last phase, each with its migrations (forward, rollback,
//! validation), numbered after the set's last version; and the probes of
//! the old and new application versions.

use serde::Serialize;

/// A generated change: everything `write` puts into the set.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `rename accounts.full_name`: the prefix of its phases' names.
    pub title: String,
    /// `rename_accounts_full_name`: the prefix of its files' names.
    pub slug: String,
    pub phases: Vec<NewPhase>,
    pub probes: Vec<NewProbe>,
    /// What the operator should know (a probe statement left out, a lossy
    /// conversion); printed with the files.
    pub notes: Vec<String>,
    /// The set's probes declared without `until` that the change closes:
    /// its old application version must be gone after that phase, and an
    /// application version declared earlier is no newer (file, phase).
    pub closes: Vec<(String, u32)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewPhase {
    pub id: u32,
    /// `rename accounts.full_name: expand`.
    pub name: String,
    pub summary: String,
    /// An irreversible phase's reason (`reversible = false`).
    pub irreversible: Option<String>,
    pub migrations: Vec<NewMigration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewMigration {
    pub version: i32,
    /// The `name` of `V{version}__{name}.sql`.
    pub name: String,
    pub forward: String,
    /// `None` in an irreversible phase.
    pub rollback: Option<String>,
    pub validation: String,
}

impl NewMigration {
    pub fn file_name(&self) -> String {
        format!("V{}__{}.sql", self.version, self.name)
    }
}

/// A probe file and its `[[probe]]` table (docs/probes.md).
#[derive(Debug, Clone, Serialize)]
pub struct NewProbe {
    /// `probes/rename_accounts_full_name_old.sql`.
    pub file: String,
    /// The application version it speaks for (its file's name says so too).
    #[serde(skip)]
    pub version: Version,
    pub text: String,
    pub from: u32,
    pub until: Option<u32>,
}

/// Which application version a probe file speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Old,
    New,
}

impl Version {
    /// The end of its probe file's name: `<slug>_old.sql`, `<slug>_new.sql`.
    pub fn suffix(self) -> &'static str {
        match self {
            Version::Old => "old",
            Version::New => "new",
        }
    }
}

/// Builds a change's phases in order.
#[derive(Debug)]
pub struct Builder {
    pub title: String,
    pub slug: String,
    /// The set's last phase before the change: the old application runs
    /// in its state now.
    pub before: u32,
    next_phase: u32,
    next_version: i32,
    phases: Vec<NewPhase>,
    probes: Vec<NewProbe>,
    notes: Vec<String>,
}

impl Builder {
    /// A change titled `title` after phase `before` and version `last_version`.
    pub fn new(title: String, slug: String, before: u32, last_version: i32) -> Builder {
        Builder { title, slug, before, next_phase: before + 1, next_version: last_version + 1, phases: Vec::new(), probes: Vec::new(), notes: Vec::new() }
    }

    /// Opens the next phase, `<title>: <stage>`; returns its id.
    pub fn phase(&mut self, stage: &str, summary: impl Into<String>) -> u32 {
        self.open(stage, summary.into(), None)
    }

    /// Opens the next phase as irreversible, with the reason.
    pub fn irreversible(&mut self, stage: &str, summary: impl Into<String>, reason: impl Into<String>) -> u32 {
        self.open(stage, summary.into(), Some(reason.into()))
    }

    fn open(&mut self, stage: &str, summary: String, irreversible: Option<String>) -> u32 {
        let id = self.next_phase;
        self.next_phase += 1;
        self.phases.push(NewPhase { id, name: format!("{}: {stage}", self.title), summary, irreversible, migrations: Vec::new() });
        id
    }

    /// Adds a migration `<slug>_<what>` to the open phase. `rollback` is
    /// required in a reversible phase and dropped in an irreversible one.
    pub fn migration(&mut self, what: &str, forward: String, rollback: Option<String>, validation: String) {
        let version = self.next_version;
        self.next_version += 1;
        let phase = self.phases.last_mut().expect("a phase is open");
        debug_assert_eq!(phase.irreversible.is_none(), rollback.is_some(), "{}: a reversible migration has a rollback, an irreversible one none", phase.name);
        let rollback = if phase.irreversible.is_some() { None } else { rollback };
        phase.migrations.push(NewMigration { version, name: format!("{}_{what}", self.slug), forward, rollback, validation });
    }

    /// The id of the last phase opened.
    pub fn last_phase(&self) -> u32 {
        self.next_phase - 1
    }

    pub fn probes_empty(&self) -> bool {
        self.probes.is_empty()
    }

    pub fn probe(&mut self, version: Version, text: String, from: u32, until: Option<u32>) {
        let file = format!("{}/{}_{}.sql", crate::set::probe::PROBES, self.slug, version.suffix());
        self.probes.push(NewProbe { file, version, text, from, until });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The last phase the change's old application version must work
    /// after, when it must be gone after one.
    pub fn old_version_ends(&self) -> Option<u32> {
        self.probes.iter().filter(|p| p.version == Version::Old).filter_map(|p| p.until).min()
    }

    pub fn finish(self) -> Change {
        Change { title: self.title, slug: self.slug, phases: self.phases, probes: self.probes, notes: self.notes, closes: Vec::new() }
    }
}
