//! What a phase does to a live database (`plan`, docs/commands.md): the lock level each
//! statement takes, whether it changes or destroys data, and the phase's
//! risk: low (additive), medium (data changes), high (destructive),
//! catastrophic (irreversible); beside it, the phase's lint findings.

use serde::Serialize;

use crate::set::{Phase, SqlFile};
use crate::sqltext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Catastrophic,
}

/// One statement's effect.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    pub file: String,
    pub line: usize,
    pub statement: String,
    /// The strongest table lock it takes, or "none".
    pub lock: &'static str,
    pub risk: Risk,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhasePlan {
    pub id: u32,
    pub name: String,
    pub reversible: bool,
    pub risk: Risk,
    /// The phase itself destroys data that exists nowhere else.
    pub data_loss: bool,
    /// Its rollback drops or overwrites data (whatever was written to the
    /// phase's objects since it was applied is discarded).
    pub rollback_discards: bool,
    pub locks: Vec<&'static str>,
    pub effects: Vec<Effect>,
    pub rollback_effects: Vec<Effect>,
    /// The lint findings of the phase's forward and rollback files.
    pub findings: Vec<crate::lint::Finding>,
    /// For an irreversible phase: what `migrate` keeps before each migration
    /// (and what it cannot keep), read from the files; sizes need a
    /// database (`migrate` and `recover --dry-run` show them).
    pub keeps: Vec<KeepPreview>,
}

/// One thing an irreversible phase destroys, and what is kept of it.
#[derive(Debug, Clone, Serialize)]
pub struct KeepPreview {
    pub file: String,
    pub line: usize,
    pub what: crate::backup::Destroys,
    /// One line: what is kept (or "NOT KEPT: ...").
    pub kept: String,
}

/// Classifies one statement by its leading keywords.
pub fn classify(stmt: &str) -> (&'static str, Risk) {
    let s = sqltext::strip_comments(stmt).to_uppercase();
    let has = |k: &str| s.contains(k);
    let starts = |k: &str| s.starts_with(k);
    if starts("CREATE INDEX CONCURRENTLY") || starts("CREATE UNIQUE INDEX CONCURRENTLY") || starts("DROP INDEX CONCURRENTLY") || starts("REINDEX INDEX CONCURRENTLY") {
        return ("SHARE UPDATE EXCLUSIVE", if starts("DROP") { Risk::High } else { Risk::Low });
    }
    if starts("CREATE INDEX") || starts("CREATE UNIQUE INDEX") {
        return ("SHARE", Risk::Low);
    }
    if starts("CREATE TRIGGER") || starts("CREATE OR REPLACE TRIGGER") {
        return ("SHARE ROW EXCLUSIVE", Risk::Low);
    }
    if starts("CREATE") || starts("COMMENT") || starts("GRANT") || starts("SELECT") {
        return ("none", Risk::Low);
    }
    // Session settings (`SET LOCAL lock_timeout`, the `SET`s pg_dump opens
    // a baseline with) lock nothing.
    if starts("SET ") || starts("RESET ") || starts("SHOW ") {
        return ("none", Risk::Low);
    }
    // On the sequence (PostgreSQL's AlterSequence): nextval waits on it.
    if starts("ALTER SEQUENCE") {
        return ("SHARE ROW EXCLUSIVE", Risk::Low);
    }
    if starts("ANALYZE") || starts("VACUUM") {
        return ("SHARE UPDATE EXCLUSIVE", Risk::Low);
    }
    if starts("ALTER TABLE") {
        if has(" DROP COLUMN") || has(" DROP CONSTRAINT") {
            return ("ACCESS EXCLUSIVE", if has(" DROP COLUMN") { Risk::High } else { Risk::Low });
        }
        if has("VALIDATE CONSTRAINT") {
            return ("SHARE UPDATE EXCLUSIVE", Risk::Low);
        }
        if has("FOREIGN KEY") || has(" REFERENCES ") {
            return ("SHARE ROW EXCLUSIVE", Risk::Low);
        }
        if has(" TYPE ") {
            return ("ACCESS EXCLUSIVE", Risk::Medium);
        }
        return ("ACCESS EXCLUSIVE", Risk::Low);
    }
    if starts("DROP TABLE") || starts("DROP TYPE") || starts("DROP SCHEMA") || starts("TRUNCATE") {
        return ("ACCESS EXCLUSIVE", Risk::High);
    }
    if starts("DROP TRIGGER") || starts("DROP INDEX") {
        return ("ACCESS EXCLUSIVE", Risk::Low);
    }
    if starts("DROP") {
        return ("none", Risk::Low);
    }
    if starts("DELETE") {
        return ("ROW EXCLUSIVE", Risk::High);
    }
    // An INSERT adds rows and changes none: additive.
    if starts("INSERT") {
        return ("ROW EXCLUSIVE", Risk::Low);
    }
    if starts("UPDATE") || starts("WITH") || starts("MERGE") {
        return ("ROW EXCLUSIVE", Risk::Medium);
    }
    // DO blocks, procedures: assume they change data.
    ("unknown", Risk::Medium)
}

fn file_effects(f: &SqlFile) -> Vec<Effect> {
    sqltext::statements(&f.text)
        .into_iter()
        .map(|st| {
            let text = &f.text[st.start..st.end];
            let (lock, risk) = classify(text);
            let first = sqltext::strip_comments(text);
            let statement: String = first.chars().take(80).collect();
            Effect { file: crate::error::display_path(&f.path), line: st.line, statement, lock, risk }
        })
        .collect()
}

pub fn plan_phase(p: &Phase) -> PhasePlan {
    let effects: Vec<Effect> = p.steps.iter().flat_map(|s| file_effects(&s.forward)).collect();
    let rollback_effects: Vec<Effect> = p.steps.iter().filter_map(|s| s.rollback.as_ref()).flat_map(file_effects).collect();
    let worst = effects.iter().map(|e| e.risk).max().unwrap_or(Risk::Low);
    let risk = if !p.is_reversible() && !p.is_baseline() { Risk::Catastrophic } else { worst };
    let data_loss = !p.is_baseline() && worst >= Risk::High;
    let rollback_discards = rollback_effects.iter().any(|e| e.risk >= Risk::Medium || e.statement.to_uppercase().contains("DROP COLUMN"));
    let mut locks: Vec<&'static str> = effects.iter().map(|e| e.lock).filter(|l| *l != "none").collect();
    locks.sort();
    locks.dedup();
    let findings = crate::lint::phase(p);
    let keeps = if crate::apply::keeps_what_it_destroys(p) {
        p.steps
            .iter()
            .flat_map(|s| {
                crate::backup::destroys(&s.forward.text).into_iter().map(|d| KeepPreview {
                    file: crate::error::display_path(&s.forward.path),
                    line: d.line,
                    kept: d.what.describe(),
                    what: d.what,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    PhasePlan { id: p.id, name: p.name.clone(), reversible: p.is_reversible(), risk, data_loss, rollback_discards, locks, effects, rollback_effects, findings, keeps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_statements() {
        assert_eq!(classify("CREATE TABLE t (x int)"), ("none", Risk::Low));
        assert_eq!(classify("create index concurrently i on t(x)"), ("SHARE UPDATE EXCLUSIVE", Risk::Low));
        assert_eq!(classify("ALTER TABLE t DROP COLUMN x"), ("ACCESS EXCLUSIVE", Risk::High));
        assert_eq!(classify("UPDATE t SET x = 1"), ("ROW EXCLUSIVE", Risk::Medium));
        assert_eq!(classify("ALTER TABLE t VALIDATE CONSTRAINT c"), ("SHARE UPDATE EXCLUSIVE", Risk::Low));
        assert_eq!(classify("DROP TYPE \"ServiceType\""), ("ACCESS EXCLUSIVE", Risk::High));
        assert_eq!(classify("SET LOCAL lock_timeout = '2s'"), ("none", Risk::Low));
        assert_eq!(classify("set client_min_messages = warning"), ("none", Risk::Low));
        assert_eq!(classify("ANALYZE orders"), ("SHARE UPDATE EXCLUSIVE", Risk::Low));
        assert_eq!(classify("ALTER SEQUENCE s OWNED BY t.id"), ("SHARE ROW EXCLUSIVE", Risk::Low));
        assert_eq!(classify("DO $$ BEGIN PERFORM 1; END $$"), ("unknown", Risk::Medium));
    }
}
