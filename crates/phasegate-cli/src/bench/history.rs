//! A generated history shaped like a real application's (issue 24): the
//! catalog grows to 70+ tables, 45+ views of 50 to 150 columns that later
//! migrations re-create, 100+ functions and triggers, enum types altered,
//! indexes added and dropped, and data migrations on tables of 10,000 rows.
//! One migration in ten is broken the way real down scripts break: a
//! column left behind, a view or a function restored to an older
//! definition, an index not recreated, a down that fails. Every other
//! down restores the prior state exactly, rows included, so verify must
//! flag the broken ones and nothing else.
//!
//! The migrations are plain diesel-shaped SQL (`Migration` of `corpus`),
//! deterministic for a given count.

use super::corpus::Migration;

/// How a broken migration's down script breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// The down drops a column its table took with it: it fails.
    DownFails,
    /// The up adds a column and an index on it; the down drops only the index.
    ColumnLeftBehind,
    /// The up drops an index (and adds a column); the down drops the
    /// column and does not recreate the index.
    IndexNotRecreated,
    /// The up re-creates a view; the down restores the definition before
    /// the one it replaced.
    OlderView,
    /// The up changes a function's body; the down restores an older body.
    OlderFunction,
}

const ROTATION: [Broken; 5] = [Broken::DownFails, Broken::ColumnLeftBehind, Broken::IndexNotRecreated, Broken::OlderView, Broken::OlderFunction];

/// The generated history and where its broken migrations are (0-based).
#[derive(Debug, Clone)]
pub struct History {
    pub migrations: Vec<Migration>,
    pub broken: Vec<(usize, Broken)>,
}

/// Rows of a big table (the data migrations run on these).
pub const BIG_ROWS: usize = 10_000;
/// Rows of the other tables.
const SMALL_ROWS: usize = 50;

struct Table {
    name: String,
    big: bool,
    /// Indexes later migrations may drop: name and definition.
    indexes: Vec<(String, String)>,
    /// The enum column's type and its labels, when the table has one.
    kind: Option<(String, Vec<String>)>,
}

struct View {
    name: String,
    table: String,
    version: usize,
}

struct Function {
    name: String,
    version: usize,
}

#[derive(Default)]
struct Catalog {
    tables: Vec<Table>,
    views: Vec<View>,
    functions: Vec<Function>,
}

fn mig(name: String, up: String, down: String) -> Migration {
    Migration { name, up, down, no_transaction: false }
}

/// `n` migrations; the first ten create tables, then every tenth one
/// (positions 9, 19, ...) is broken.
pub fn history(n: usize) -> History {
    let mut c = Catalog::default();
    let mut migrations = Vec::with_capacity(n);
    let mut broken = Vec::new();
    for i in 0..n {
        let m = if i < 9 {
            create_table(&mut c, i, i % 4 == 1, i % 3 == 2)
        } else if i % 10 == 9 {
            let b = ROTATION[(i / 10) % ROTATION.len()];
            broken.push((i, b));
            broken_one(&mut c, i, b)
        } else {
            clean(&mut c, i)
        };
        migrations.push(m);
    }
    History { migrations, broken }
}

/// Picks an index among `len` deterministically from `i`.
fn at(i: usize, len: usize) -> usize {
    (i * 7919 + 13) % len
}

fn create_table(c: &mut Catalog, i: usize, big: bool, with_kind: bool) -> Migration {
    let t = format!("entity_{i}");
    let rows = if big { BIG_ROWS } else { SMALL_ROWS };
    let parent = c.tables.last().map(|p| format!("    parent_id bigint REFERENCES {}(id),\n", p.name)).unwrap_or_default();
    let parent_value = if c.tables.is_empty() { "" } else { ", parent_id" };
    let parent_expr = if c.tables.is_empty() { "" } else { ", g % 50 + 1" };
    let kind_type = format!("{t}_kind");
    let (kind_ddl, kind_col, kind_drop) = if with_kind {
        (format!("CREATE TYPE {kind_type} AS ENUM ('draft', 'active', 'closed');\n"), format!("    kind {kind_type} NOT NULL DEFAULT 'draft',\n"), format!("DROP TYPE {kind_type};\n"))
    } else {
        Default::default()
    };
    let up = format!(
        "{kind_ddl}CREATE TABLE {t} (\n    id bigint PRIMARY KEY,\n    name text NOT NULL,\n    qty integer NOT NULL DEFAULT 0,\n    \
         price numeric(12,2) NOT NULL DEFAULT 0,\n{kind_col}{parent}    created_at timestamptz NOT NULL DEFAULT now(),\n    updated_at timestamptz\n);\n\
         CREATE INDEX {t}_name_idx ON {t} (name);\nCREATE INDEX {t}_created_idx ON {t} (created_at);\n\
         COMMENT ON TABLE {t} IS 'entities of migration {i}';\n\
         INSERT INTO {t} (id, name, qty, price, created_at{parent_value})\n\
         SELECT g, 'name ' || g, g % 17, (g % 100) * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'{parent_expr}\n\
         FROM generate_series(1, {rows}) g;\n\
         CREATE FUNCTION {t}_touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.name := coalesce(NEW.name, '');\n  RETURN NEW;\nEND\n$$;\n\
         CREATE TRIGGER {t}_touch BEFORE INSERT OR UPDATE ON {t}\n  FOR EACH ROW EXECUTE FUNCTION {t}_touch();\n{}",
        view_sql(&t, &format!("{t}_report"), 1, false)
    );
    let down = format!("DROP VIEW {t}_report;\nDROP TABLE {t};\nDROP FUNCTION {t}_touch();\n{kind_drop}");
    let indexes = vec![(format!("{t}_name_idx"), format!("CREATE INDEX {t}_name_idx ON {t} (name)")), (format!("{t}_created_idx"), format!("CREATE INDEX {t}_created_idx ON {t} (created_at)"))];
    let kind = with_kind.then(|| (kind_type, vec!["draft".to_string(), "active".into(), "closed".into()]));
    c.tables.push(Table { name: t.clone(), big, indexes, kind });
    c.views.push(View { name: format!("{t}_report"), table: t.clone(), version: 1 });
    c.functions.push(Function { name: format!("{t}_touch"), version: 0 });
    mig(format!("create_{t}"), up, down)
}

/// The definition of view `name` over table `t` at `version`: 50 to 110
/// columns (by table) plus 10 a version, at most 150, and a filter that
/// changes with the version.
fn view_body(t: &str, version: usize) -> String {
    let seed: usize = t.bytes().map(usize::from).sum();
    let n = (38 + seed * 37 % 60 + 10 * version).min(148);
    let mut cols = vec!["t.id".to_string(), "t.name".to_string()];
    for j in 0..n {
        cols.push(match j % 4 {
            0 => format!("t.qty + {j} AS q_{j}"),
            1 => format!("t.price * {j} AS p_{j}"),
            2 => format!("t.name || '-{j}' AS s_{j}"),
            _ => format!("t.created_at + interval '{j} days' AS d_{j}"),
        });
    }
    format!("SELECT {}\nFROM {t} t\nWHERE t.qty >= {}", cols.join(",\n       "), version % 3)
}

/// SQL creating (or, with `replace`, replacing) a view.
fn view_sql(t: &str, name: &str, version: usize, replace: bool) -> String {
    let verb = if replace { "CREATE OR REPLACE VIEW" } else { "CREATE VIEW" };
    format!("{verb} {name} AS\n{};\n", view_body(t, version))
}

/// Re-creates a view at its next version; the down restores `back` versions
/// before the new one (1: exactly the prior one).
fn recreate_view(c: &mut Catalog, i: usize, back: usize) -> Migration {
    let k = at(i, c.views.len());
    let v = &mut c.views[k];
    let next = v.version + 1;
    let up = if i.is_multiple_of(2) { view_sql(&v.table, &v.name, next, true) } else { format!("DROP VIEW {};\n{}", v.name, view_sql(&v.table, &v.name, next, false)) };
    // Columns cannot be dropped from a view by replacing it.
    let down = format!("DROP VIEW {};\n{}", v.name, view_sql(&v.table, &v.name, next - back, false));
    v.version = next;
    mig(format!("recreate_{}_v{next}_{i}", v.name), up, down)
}

fn function_sql(name: &str, version: usize) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {name}(q integer, p numeric) RETURNS numeric\nLANGUAGE sql IMMUTABLE AS $$ SELECT q * p + {version} $$;\n"
    )
}

/// Creates a function (even `i`) or changes the body of one (odd); the
/// down restores `back` versions before (1: exactly the prior one).
fn function_change(c: &mut Catalog, i: usize, back: usize) -> Migration {
    let scalar: Vec<usize> = c.functions.iter().enumerate().filter(|(_, f)| f.version > 0).map(|(k, _)| k).collect();
    if back == 1 && (i.is_multiple_of(2) || scalar.is_empty()) {
        let name = format!("calc_{i}");
        c.functions.push(Function { name: name.clone(), version: 1 });
        let up = format!("{}COMMENT ON FUNCTION {name}(integer, numeric) IS 'calculation of migration {i}';\n", function_sql(&name, 1));
        return mig(format!("create_{name}"), up, format!("DROP FUNCTION {name}(integer, numeric);\n"));
    }
    let f = &mut c.functions[scalar[at(i, scalar.len())]];
    let next = f.version + 1;
    f.version = next;
    mig(format!("change_{}_v{next}_{i}", f.name), function_sql(&f.name, next), function_sql(&f.name, next - back))
}

fn big_table(c: &Catalog, i: usize) -> &Table {
    let big: Vec<&Table> = c.tables.iter().filter(|t| t.big).collect();
    big[at(i, big.len())]
}

fn clean(c: &mut Catalog, i: usize) -> Migration {
    match i % 10 {
        0 => create_table(c, i, i % 40 == 20, false),
        2 => create_table(c, i, false, true),
        6 => create_table(c, i, false, i % 20 == 16),
        1 | 8 => recreate_view(c, i, 1),
        3 => function_change(c, i, 1),
        4 => alter_enum_or_column(c, i),
        5 => index_change(c, i),
        _ => data_migration(c, i),
    }
}

fn alter_enum_or_column(c: &mut Catalog, i: usize) -> Migration {
    let with_kind: Vec<usize> = c.tables.iter().enumerate().filter(|(_, t)| t.kind.is_some()).map(|(k, _)| k).collect();
    if i % 20 == 4 && !with_kind.is_empty() {
        let table = &mut c.tables[with_kind[at(i, with_kind.len())]];
        let (ty, labels) = table.kind.as_mut().expect("filtered above");
        let old = labels.iter().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(", ");
        let label = format!("state_{i}");
        labels.push(label.clone());
        let t = &table.name;
        let up = format!("ALTER TYPE {ty} ADD VALUE '{label}';\n");
        // An enum value cannot be dropped: the type is swapped for one without it.
        let down = format!(
            "ALTER TYPE {ty} RENAME TO {ty}_old;\nCREATE TYPE {ty} AS ENUM ({old});\nALTER TABLE {t} ALTER COLUMN kind DROP DEFAULT;\n\
             ALTER TABLE {t} ALTER COLUMN kind TYPE {ty} USING kind::text::{ty};\nALTER TABLE {t} ALTER COLUMN kind SET DEFAULT 'draft';\nDROP TYPE {ty}_old;\n"
        );
        return mig(format!("add_{ty}_{label}"), up, down);
    }
    let t = &c.tables[at(i, c.tables.len())].name;
    mig(
        format!("add_{t}_note_{i}"),
        format!("ALTER TABLE {t} ADD COLUMN note_{i} text NOT NULL DEFAULT 'n{i}';\nCOMMENT ON COLUMN {t}.note_{i} IS 'added by migration {i}';\n"),
        format!("ALTER TABLE {t} DROP COLUMN note_{i};\n"),
    )
}

fn index_change(c: &mut Catalog, i: usize) -> Migration {
    let k = at(i, c.tables.len());
    let table = &mut c.tables[k];
    let t = table.name.clone();
    if i % 20 == 15 && !table.indexes.is_empty() {
        let (name, def) = table.indexes.remove(0);
        return mig(format!("drop_{name}_{i}"), format!("DROP INDEX {name};\n"), format!("{def};\n"));
    }
    let name = format!("{t}_qty_{i}_idx");
    let def = format!("CREATE INDEX {name} ON {t} (qty, price)");
    table.indexes.push((name.clone(), def.clone()));
    if i % 50 == 25 {
        return Migration {
            name: format!("index_{name}"),
            up: format!("CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t} (qty, price);\n"),
            down: format!("DROP INDEX CONCURRENTLY IF EXISTS {name};\n"),
            no_transaction: true,
        };
    }
    mig(format!("index_{name}"), format!("{def};\n"), format!("DROP INDEX {name};\n"))
}

fn data_migration(c: &mut Catalog, i: usize) -> Migration {
    let t = big_table(c, i).name.clone();
    if i % 20 == 7 {
        return mig(
            format!("backfill_{t}_score_{i}"),
            format!("ALTER TABLE {t} ADD COLUMN score_{i} numeric;\nUPDATE {t} SET score_{i} = qty * price WHERE id % 3 = {};\n", i % 3),
            format!("ALTER TABLE {t} DROP COLUMN score_{i};\n"),
        );
    }
    let (d, r) = (i % 5 + 1, i % 7);
    mig(format!("fix_{t}_qty_{i}"), format!("UPDATE {t} SET qty = qty + {d} WHERE id % 7 = {r};\n"), format!("UPDATE {t} SET qty = qty - {d} WHERE id % 7 = {r};\n"))
}

fn broken_one(c: &mut Catalog, i: usize, b: Broken) -> Migration {
    let k = at(i, c.tables.len());
    let table = &mut c.tables[k];
    let t = table.name.clone();
    match b {
        Broken::DownFails => mig(
            format!("add_{t}_ref_{i}"),
            format!("ALTER TABLE {t} ADD COLUMN ref_{i} bigint;\nCREATE INDEX {t}_ref_{i}_idx ON {t} (ref_{i});\n"),
            // The index went with its column: this DROP INDEX fails.
            format!("ALTER TABLE {t} DROP COLUMN ref_{i};\nDROP INDEX {t}_ref_{i}_idx;\n"),
        ),
        Broken::ColumnLeftBehind => mig(
            format!("add_{t}_flag_{i}"),
            format!("ALTER TABLE {t} ADD COLUMN flag_{i} boolean NOT NULL DEFAULT false;\nCREATE INDEX {t}_flag_{i}_idx ON {t} (flag_{i});\n"),
            format!("DROP INDEX {t}_flag_{i}_idx;\n"),
        ),
        Broken::IndexNotRecreated if !table.indexes.is_empty() => {
            let (name, _) = table.indexes.remove(0);
            mig(
                format!("replace_{name}_{i}"),
                format!("DROP INDEX {name};\nALTER TABLE {t} ADD COLUMN tag_{i} text;\n"),
                format!("ALTER TABLE {t} DROP COLUMN tag_{i};\n"),
            )
        }
        Broken::IndexNotRecreated => broken_one(c, i, Broken::ColumnLeftBehind),
        Broken::OlderView => recreate_view(c, i, 2),
        Broken::OlderFunction => function_change(c, i, 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_has_the_shape_of_a_real_one() {
        let h = history(250);
        assert_eq!(h.migrations.len(), 250);
        let all: String = h.migrations.iter().map(|m| m.up.as_str()).collect();
        let count = |s: &str| all.matches(s).count();
        assert!(count("CREATE TABLE ") >= 60, "tables: {}", count("CREATE TABLE "));
        assert!(count("CREATE VIEW ") + count("CREATE OR REPLACE VIEW ") >= 100);
        assert!(count("CREATE FUNCTION ") + count("CREATE OR REPLACE FUNCTION ") + count("CREATE TRIGGER ") >= 100);
        assert!(count("ALTER TYPE ") >= 5 && count("DROP INDEX ") >= 5 && count("CREATE INDEX ") >= 100);
        assert!(h.migrations.iter().any(|m| m.no_transaction));
        assert_eq!(h.broken.len(), 25, "one in ten is broken");
        for b in ROTATION {
            assert!(h.broken.iter().any(|(_, x)| *x == b), "{b:?} planted");
        }
        let names: std::collections::HashSet<&str> = h.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), 250, "names are unique");
        let widest = h.migrations.iter().filter_map(|m| m.up.find("VIEW").map(|_| m.up.matches(" AS ").count())).max().unwrap();
        assert!(widest >= 100, "views grow to 100+ columns: {widest}");
        let again = history(250);
        assert!(h.migrations.iter().zip(&again.migrations).all(|(a, b)| a.up == b.up && a.down == b.down));
    }
}
