//! Generated migration projects for `verify --from`: hundreds of migrations
//! in the diesel or sqlx layout, deterministic, with defects planted where
//! the caller asks. The bench measures verify on one; the integration tests
//! check that verify finds exactly the planted defects in others.
//!
//! The clean migrations cycle through what real histories hold: tables with
//! keys, foreign keys, indexes and rows, added columns with defaults and
//! comments, enums, domains, functions, triggers, views, check constraints
//! added `NOT VALID` and validated, data fixes with exact inverses, and
//! indexes built `CONCURRENTLY` outside a transaction. Every down script of
//! a clean migration restores the prior state exactly, rows included, and
//! no clean migration writes `now()` into a row, so a clean migration gives
//! no finding at all.

use std::path::Path;

/// A defect to plant in a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The down script fails (it drops an index its table took with it).
    DownFails,
    /// The down script leaves an index behind.
    LeavesObject,
    /// The up script rewrites values its down script cannot restore.
    LosesRows,
    /// The down script leaves an object the snapshot does not cover (a text
    /// search configuration), so applying the up again fails.
    ReapplyFails,
    /// A view holds `'now'::timestamptz`, folded to a literal when the view
    /// is created: every re-creation differs. Not a defect.
    FoldedTime,
    /// The down script re-adds a dropped column at the end of the table.
    ColumnOrder,
}

impl Defect {
    /// The finding `verify` reports for it: kind, and the comparison it is
    /// found in (`None` for failures).
    pub fn finding(self) -> (&'static str, Option<&'static str>) {
        match self {
            Defect::DownFails => ("rollback_failed", None),
            Defect::LeavesObject => ("schema_differs", Some("before_phase")),
            Defect::LosesRows => ("rows_changed", Some("before_phase")),
            Defect::ReapplyFails => ("reapply_failed", None),
            Defect::FoldedTime => ("folded_constant", Some("first_forward")),
            Defect::ColumnOrder => ("column_order_only", Some("before_phase")),
        }
    }
}

/// One migration: its name (without version), SQL and whether it runs
/// outside a transaction.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub up: String,
    pub down: String,
    pub no_transaction: bool,
}

/// The layouts a project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<YYYY-MM-DD-HHMMSS>_<name>/up.sql, down.sql[, metadata.toml]`
    Diesel,
    /// `<version>_<name>.up.sql / .down.sql`, `-- no-transaction` first line
    Sqlx,
}

/// A table the generator created, and what of it later migrations may use.
struct Table {
    name: String,
    /// The `legacy` column is still there (a column-order defect drops it).
    has_legacy: bool,
}

/// `n` migrations with `defects` planted at the given (0-based) positions.
pub fn project(n: usize, defects: &[(usize, Defect)]) -> Vec<Migration> {
    let mut tables: Vec<Table> = Vec::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let planted = defects.iter().find(|(at, _)| *at == i).map(|(_, d)| *d);
        // The first migrations create tables for the others to use.
        let m = match planted {
            _ if tables.len() < 3 => create_table(i, &mut tables, false),
            Some(d) => defect(i, d, &mut tables),
            None => clean(i, &mut tables),
        };
        out.push(m);
    }
    out
}

fn mig(name: String, up: String, down: String) -> Migration {
    Migration { name, up, down, no_transaction: false }
}

/// A table picked by position `i` among the existing ones (deterministic).
fn pick(tables: &[Table], i: usize) -> &str {
    &tables[(i * 7 + 3) % tables.len()].name
}

fn create_table(i: usize, tables: &mut Vec<Table>, down_fails: bool) -> Migration {
    let name = format!("item_{i}");
    let parent = tables.last().map(|t| format!(",\n    parent_id bigint REFERENCES {}(id)", t.name)).unwrap_or_default();
    let up = format!(
        "CREATE TABLE {name} (\n    id bigint PRIMARY KEY,\n    name text NOT NULL,\n    legacy text,\n    qty integer NOT NULL DEFAULT 0,\n    \
         created_at timestamptz NOT NULL DEFAULT now(){parent}\n);\nCREATE INDEX {name}_name_idx ON {name} (name);\n\
         INSERT INTO {name} (id, name, qty, created_at)\nSELECT g, 'item ' || g, g % 7, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour'\n\
         FROM generate_series(1, 20) g;\n"
    );
    let down = if down_fails {
        // The index went with its table: this DROP INDEX fails.
        format!("DROP TABLE {name};\nDROP INDEX {name}_name_idx;\n")
    } else {
        format!("DROP TABLE {name};\n")
    };
    tables.push(Table { name: name.clone(), has_legacy: true });
    mig(format!("create_{name}"), up, down)
}

fn clean(i: usize, tables: &mut Vec<Table>) -> Migration {
    let t = pick(tables, i).to_string();
    match i % 12 {
        0 | 6 => create_table(i, tables, false),
        1 => mig(
            format!("add_{t}_note_{i}"),
            format!("ALTER TABLE {t} ADD COLUMN note_{i} text DEFAULT 'n{i}';\nCOMMENT ON COLUMN {t}.note_{i} IS 'added by migration {i}';\n"),
            format!("ALTER TABLE {t} DROP COLUMN note_{i};\n"),
        ),
        2 => mig(
            format!("add_status_{i}"),
            format!("CREATE TYPE status_{i} AS ENUM ('new', 'active', 'done');\nALTER TABLE {t} ADD COLUMN status_{i} status_{i} NOT NULL DEFAULT 'new';\n"),
            format!("ALTER TABLE {t} DROP COLUMN status_{i};\nDROP TYPE status_{i};\n"),
        ),
        3 => mig(
            format!("create_score_{i}"),
            format!(
                "CREATE FUNCTION score_{i}(q integer) RETURNS integer\nLANGUAGE sql IMMUTABLE AS $$ SELECT q * {i} $$;\n\
                 COMMENT ON FUNCTION score_{i}(integer) IS 'score of migration {i}';\n"
            ),
            format!("DROP FUNCTION score_{i}(integer);\n"),
        ),
        4 => mig(
            format!("create_{t}_summary_{i}"),
            format!("CREATE VIEW {t}_summary_{i} AS\nSELECT id, name, qty * 2 AS double_qty FROM {t} WHERE qty > 1;\n"),
            format!("DROP VIEW {t}_summary_{i};\n"),
        ),
        5 => mig(
            format!("fix_{t}_qty_{i}"),
            format!("UPDATE {t} SET qty = qty + {} WHERE id <= 5;\n", i % 5 + 1),
            format!("UPDATE {t} SET qty = qty - {} WHERE id <= 5;\n", i % 5 + 1),
        ),
        7 => mig(
            format!("check_{t}_qty_{i}"),
            format!(
                "ALTER TABLE {t} ADD CONSTRAINT {t}_qty_{i}_check CHECK (qty >= 0) NOT VALID;\nALTER TABLE {t} VALIDATE CONSTRAINT {t}_qty_{i}_check;\n"
            ),
            format!("ALTER TABLE {t} DROP CONSTRAINT {t}_qty_{i}_check;\n"),
        ),
        8 => mig(
            format!("touch_{t}_{i}"),
            format!(
                "CREATE FUNCTION touch_{i}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.qty := greatest(NEW.qty, 0);\n  RETURN NEW;\nEND\n$$;\n\
                 CREATE TRIGGER {t}_touch_{i} BEFORE UPDATE ON {t}\n  FOR EACH ROW EXECUTE FUNCTION touch_{i}();\n"
            ),
            format!("DROP TRIGGER {t}_touch_{i} ON {t};\nDROP FUNCTION touch_{i}();\n"),
        ),
        9 => mig(
            format!("create_quantity_{i}"),
            format!("CREATE DOMAIN quantity_{i} AS integer CHECK (VALUE >= 0);\n"),
            format!("DROP DOMAIN quantity_{i};\n"),
        ),
        10 if i % 48 == 10 => Migration {
            name: format!("index_{t}_qty_{i}"),
            up: format!("CREATE INDEX CONCURRENTLY IF NOT EXISTS {t}_qty_{i}_idx ON {t} (qty);\n"),
            down: format!("DROP INDEX CONCURRENTLY IF EXISTS {t}_qty_{i}_idx;\n"),
            no_transaction: true,
        },
        10 => mig(
            format!("index_{t}_created_{i}"),
            format!("CREATE INDEX {t}_created_{i}_idx ON {t} (created_at);\n"),
            format!("DROP INDEX {t}_created_{i}_idx;\n"),
        ),
        _ => mig(
            format!("seed_{t}_{i}"),
            format!(
                "INSERT INTO {t} (id, name, qty, created_at)\nSELECT 1000 * {i} + g, 'extra ' || g, g, timestamptz '2024-06-01 00:00:00+00'\n\
                 FROM generate_series(1, 5) g;\n"
            ),
            format!("DELETE FROM {t} WHERE id BETWEEN 1000 * {i} + 1 AND 1000 * {i} + 5;\n"),
        ),
    }
}

fn defect(i: usize, d: Defect, tables: &mut Vec<Table>) -> Migration {
    let t = pick(tables, i).to_string();
    match d {
        Defect::DownFails => create_table(i, tables, true),
        Defect::LeavesObject => mig(
            format!("add_{t}_extra_{i}"),
            format!("ALTER TABLE {t} ADD COLUMN extra_{i} text;\nCREATE INDEX IF NOT EXISTS {t}_name_{i}_idx ON {t} (name);\n"),
            format!("ALTER TABLE {t} DROP COLUMN extra_{i};\n"),
        ),
        Defect::LosesRows => mig(
            format!("upper_{t}_names_{i}"),
            format!("UPDATE {t} SET name = upper(name);\n"),
            "-- the original case of the names cannot be restored\nSELECT 1;\n".to_string(),
        ),
        Defect::ReapplyFails => mig(
            format!("create_search_{i}"),
            format!("CREATE TEXT SEARCH CONFIGURATION corpus_search_{i} (COPY = simple);\nCREATE TABLE search_{i} (id bigint PRIMARY KEY, body text);\n"),
            format!("DROP TABLE search_{i};\n"),
        ),
        Defect::FoldedTime => mig(
            format!("create_{t}_recent_{i}"),
            format!("CREATE VIEW {t}_recent_{i} AS\nSELECT id, name FROM {t} WHERE created_at > 'now'::timestamptz - interval '30 days';\n"),
            format!("DROP VIEW {t}_recent_{i};\n"),
        ),
        Defect::ColumnOrder => {
            let t = match tables.iter_mut().rev().find(|t| t.has_legacy) {
                Some(t) => {
                    t.has_legacy = false;
                    t.name.clone()
                }
                None => return create_table(i, tables, false),
            };
            mig(format!("drop_{t}_legacy"), format!("ALTER TABLE {t} DROP COLUMN legacy;\n"), format!("ALTER TABLE {t} ADD COLUMN legacy text;\n"))
        }
    }
}

/// The directory name (diesel) or file prefix (sqlx) of migration `i`.
fn version(layout: Layout, i: usize) -> String {
    let (day, rest) = (i / 1440, i % 1440);
    match layout {
        Layout::Diesel => format!("2024-{:02}-{:02}-{:02}{:02}00", 1 + day / 28, 1 + day % 28, rest / 60, rest % 60),
        Layout::Sqlx => format!("2024{:02}{:02}{:02}{:02}00", 1 + day / 28, 1 + day % 28, rest / 60, rest % 60),
    }
}

/// Writes the project into `dir` (which must exist) in `layout`.
pub fn write(migrations: &[Migration], layout: Layout, dir: &Path) -> std::io::Result<()> {
    for (i, m) in migrations.iter().enumerate() {
        let v = version(layout, i);
        match layout {
            Layout::Diesel => {
                let d = dir.join(format!("{v}_{}", m.name));
                std::fs::create_dir_all(&d)?;
                std::fs::write(d.join("up.sql"), &m.up)?;
                std::fs::write(d.join("down.sql"), &m.down)?;
                if m.no_transaction {
                    std::fs::write(d.join("metadata.toml"), "run_in_transaction = false\n")?;
                }
            }
            Layout::Sqlx => {
                let marker = if m.no_transaction { "-- no-transaction\n" } else { "" };
                std::fs::write(dir.join(format!("{v}_{}.up.sql", m.name)), format!("{marker}{}", m.up))?;
                std::fs::write(dir.join(format!("{v}_{}.down.sql", m.name)), format!("{marker}{}", m.down))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_deterministic_and_plant_what_was_asked() {
        let defects = [(9, Defect::ReapplyFails), (40, Defect::DownFails), (80, Defect::ColumnOrder)];
        let a = project(120, &defects);
        let b = project(120, &defects);
        assert_eq!(a.len(), 120);
        assert!(a.iter().zip(&b).all(|(x, y)| x.up == y.up && x.down == y.down && x.name == y.name));
        assert!(a[9].up.contains("TEXT SEARCH CONFIGURATION"));
        assert!(a[40].down.contains("DROP INDEX item_40_name_idx"));
        assert!(a[80].up.contains("DROP COLUMN legacy"));
        assert!(a.iter().any(|m| m.no_transaction), "some migrations run outside a transaction");
        let names: std::collections::HashSet<&str> = a.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), a.len(), "names are unique");
        assert!(version(Layout::Diesel, 0) < version(Layout::Diesel, 1439));
        assert!(version(Layout::Diesel, 1439) < version(Layout::Diesel, 1440));
        assert_eq!(version(Layout::Sqlx, 61), "20240101010100");
    }
}
