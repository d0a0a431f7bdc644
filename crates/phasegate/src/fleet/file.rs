//! The fleet file (TOML): the databases, each a name and the environment
//! variable holding its URL (never the URL itself), an optional discovery
//! query on a catalog database, and the groups in the order they run. Every
//! broken rule is a load error naming the file and line.
//!
//! ```toml
//! [[database]]
//! name = "canary"
//! url_env = "CANARY_DATABASE_URL"
//!
//! [discovery]                      # optional: more databases from a catalog
//! catalog_env = "CATALOG_URL"
//! query = "SELECT name, url FROM tenants WHERE active ORDER BY name"
//!
//! [[group]]
//! name = "canary"
//! databases = ["canary"]
//!
//! [[group]]
//! name = "everyone else"
//! match = "*"                      # glob over names; the first group that has a database keeps it
//! parallel = 8                     # default 1
//! on_error = "continue"            # or "halt" (the default)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{display_path, Error, Location, Result};
use crate::sqltext;

/// What a group does when one of its databases fails (an error, an
/// unreachable server, a ROLLBACK verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Start no more databases of the group, and no later group.
    #[default]
    Halt,
    /// The group's other databases go on, and so do later groups (a
    /// ROLLBACK verdict still halts the groups after this one).
    Continue,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Halt => "halt",
            OnError::Continue => "continue",
        }
    }
}

/// A database the file names: its name and the variable holding its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub url_env: String,
    pub line: usize,
}

/// More databases from a query on a catalog database (rows of name, URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub catalog_env: String,
    pub query: String,
    pub line: usize,
    /// The line of the `query` value (errors of the query point there).
    pub query_line: usize,
}

/// How a group picks its databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// These names, each with the line it is written on.
    Names(Vec<(String, usize)>),
    /// Every database whose name matches this glob (`*`, `?`, `[a-z]`),
    /// compiled once when the file is read (`as_str` gives it back).
    Match(glob::Pattern),
}

/// A group of databases that run together, `parallel` at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub select: Select,
    pub parallel: usize,
    pub on_error: OnError,
    pub line: usize,
}

/// A fleet file as loaded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    pub path: PathBuf,
    pub databases: Vec<Listed>,
    pub discovery: Option<Discovery>,
    pub groups: Vec<Group>,
    /// Each name a group lists, and that group's index: what
    /// [`Fleet::group_of`] looks up, so sorting a fleet into groups costs
    /// the same per database whatever the fleet's size.
    listed: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetToml {
    #[serde(default)]
    database: Vec<Spanned<DatabaseToml>>,
    discovery: Option<Spanned<DiscoveryToml>>,
    #[serde(default)]
    group: Vec<Spanned<GroupToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseToml {
    name: Spanned<String>,
    url_env: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoveryToml {
    catalog_env: Spanned<String>,
    query: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupToml {
    name: Spanned<String>,
    databases: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(rename = "match")]
    pattern: Option<Spanned<String>>,
    parallel: Option<Spanned<i64>>,
    #[serde(default)]
    on_error: OnError,
}

/// An environment variable name as a shell would take it.
fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads and checks a fleet file.
pub fn load(path: &Path) -> Result<Fleet> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse(path, &text)
}

/// Checks a fleet file's text (`path` names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Fleet> {
    let lines = sqltext::LineIndex::new(text);
    let line_at = |offset: usize| lines.line(offset);
    let err = |line: usize, message: String| Error::FleetFile { at: Location::line(path, line), message };
    let file: FleetToml = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_at(s.start)).unwrap_or(1);
        err(line, e.message().trim().replace('\n', " "))
    })?;

    let mut databases = Vec::new();
    let mut names = BTreeSet::new();
    for d in &file.database {
        let d = d.get_ref();
        let line = line_at(d.name.span().start);
        let name = d.name.get_ref().trim();
        if name.is_empty() {
            return Err(err(line, "a database needs a name".into()));
        }
        if !names.insert(name.to_string()) {
            return Err(err(line, format!("database {name} is listed twice")));
        }
        let var = d.url_env.get_ref();
        if !is_var_name(var) {
            return Err(err(line_at(d.url_env.span().start), format!("url_env = {var:?} is not an environment variable name; name the variable that holds the URL, not the URL")));
        }
        databases.push(Listed { name: name.to_string(), url_env: var.clone(), line });
    }

    let discovery = match &file.discovery {
        None => None,
        Some(sp) => {
            let d = sp.get_ref();
            if !is_var_name(d.catalog_env.get_ref()) {
                return Err(err(line_at(d.catalog_env.span().start), format!("catalog_env = {:?} is not an environment variable name", d.catalog_env.get_ref())));
            }
            let query_line = line_at(d.query.span().start);
            if d.query.get_ref().trim().is_empty() {
                return Err(err(query_line, "the discovery query is empty".into()));
            }
            Some(Discovery { catalog_env: d.catalog_env.get_ref().clone(), query: d.query.get_ref().clone(), line: line_at(sp.span().start), query_line })
        }
    };
    if databases.is_empty() && discovery.is_none() {
        return Err(err(1, "a fleet needs [[database]] entries or a [discovery] query".into()));
    }
    if file.group.is_empty() {
        return Err(err(1, "a fleet needs at least one [[group]] (the first one is the canary)".into()));
    }

    let mut groups = Vec::new();
    let mut group_names = BTreeSet::new();
    let mut listed_in: BTreeMap<String, String> = BTreeMap::new();
    for sp in &file.group {
        let g = sp.get_ref();
        let line = line_at(g.name.span().start);
        let name = g.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(err(line, "a group needs a name".into()));
        }
        if !group_names.insert(name.clone()) {
            return Err(err(line, format!("group {name} is defined twice")));
        }
        let select = match (&g.databases, &g.pattern) {
            (Some(list), None) => {
                if list.get_ref().is_empty() {
                    return Err(err(line_at(list.span().start), format!("group {name} lists no databases")));
                }
                let mut picked = Vec::new();
                for n in list.get_ref() {
                    let nline = line_at(n.span().start);
                    let db = n.get_ref().trim().to_string();
                    if let Some(other) = listed_in.insert(db.clone(), name.clone()) {
                        return Err(err(nline, format!("database {db} is listed in group {other} and group {name}; a database belongs to one group")));
                    }
                    if discovery.is_none() && !names.contains(&db) {
                        return Err(err(nline, format!("group {name} lists database {db}, which no [[database]] names")));
                    }
                    picked.push((db, nline));
                }
                Select::Names(picked)
            }
            (None, Some(p)) => match glob::Pattern::new(p.get_ref()) {
                Ok(pattern) => Select::Match(pattern),
                Err(e) => return Err(err(line_at(p.span().start), format!("match = {:?} is not a valid pattern: {}", p.get_ref(), e.msg))),
            },
            _ => return Err(err(line, format!("group {name} needs exactly one of `databases = [...]` and `match = \"pattern\"`"))),
        };
        let parallel = match &g.parallel {
            None => 1,
            Some(p) if *p.get_ref() >= 1 => *p.get_ref() as usize,
            Some(p) => return Err(err(line_at(p.span().start), format!("group {name}: parallel must be at least 1, not {}", p.get_ref()))),
        };
        groups.push(Group { name, select, parallel, on_error: g.on_error, line });
    }
    let group_index: BTreeMap<&str, usize> = groups.iter().enumerate().map(|(i, g)| (g.name.as_str(), i)).collect();
    let listed = listed_in.iter().map(|(db, g)| (db.clone(), group_index[g.as_str()])).collect();
    let fleet = Fleet { path: path.to_path_buf(), databases, discovery, groups, listed };
    // Without discovery every database is known now: each must land in a group.
    if fleet.discovery.is_none() {
        for d in &fleet.databases {
            if fleet.group_of(&d.name).is_none() {
                return Err(err(d.line, format!("database {} belongs to no group; list it in a group, or end with a group that has match = \"*\"", d.name)));
            }
        }
    }
    Ok(fleet)
}

impl Fleet {
    /// The index of the group a database belongs to: the first that lists
    /// it by name or matches it.
    pub fn group_of(&self, name: &str) -> Option<usize> {
        if let Some(&i) = self.listed.get(name) {
            return Some(i);
        }
        self.groups.iter().position(|g| matches!(&g.select, Select::Match(p) if p.matches(name)))
    }

    /// The file as the operator named it.
    pub fn file(&self) -> String {
        display_path(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("fleet.toml"), text).unwrap_err().to_string()
    }

    const OK: &str = "[[database]]\nname = \"canary\"\nurl_env = \"CANARY_URL\"\n\n[[database]]\nname = \"t1\"\nurl_env = \"T1_URL\"\n\n[[group]]\nname = \"canary\"\ndatabases = [\"canary\"]\n\n[[group]]\nname = \"rest\"\nmatch = \"*\"\nparallel = 4\non_error = \"continue\"\n";

    #[test]
    fn loads_databases_and_groups_in_order() {
        let f = parse(Path::new("fleet.toml"), OK).unwrap();
        assert_eq!(f.databases.len(), 2);
        assert_eq!(f.databases[1], Listed { name: "t1".into(), url_env: "T1_URL".into(), line: 6 });
        assert_eq!(f.groups[0].parallel, 1);
        assert_eq!(f.groups[0].on_error, OnError::Halt);
        assert_eq!(f.groups[1].parallel, 4);
        assert_eq!(f.groups[1].on_error, OnError::Continue);
        // The canary is listed by name, so the catch-all group does not take it again.
        assert_eq!(f.group_of("canary"), Some(0));
        assert_eq!(f.group_of("t1"), Some(1));
    }

    #[test]
    fn fleet_file_errors_name_the_line() {
        assert_eq!(err("[[database]]\nname = \"a\"\nurl_env = \"postgres://u:pw@h/db\"\n"), "fleet.toml:3: url_env = \"postgres://u:pw@h/db\" is not an environment variable name; name the variable that holds the URL, not the URL");
        assert_eq!(err("[[database]]\nname = \"a\"\nurl_env = \"A\"\n"), "fleet.toml:1: a fleet needs at least one [[group]] (the first one is the canary)");
        assert_eq!(err("[[database]]\nname = \"a\"\nurl_env = \"A\"\n[[database]]\nname = \"a\"\nurl_env = \"B\"\n"), "fleet.toml:5: database a is listed twice");
        let text = "[[database]]\nname = \"a\"\nurl_env = \"A\"\n[[group]]\nname = \"g\"\ndatabases = [\"a\", \"b\"]\n";
        assert_eq!(err(text), "fleet.toml:6: group g lists database b, which no [[database]] names");
        let text = "[[database]]\nname = \"a\"\nurl_env = \"A\"\n[[group]]\nname = \"g\"\ndatabases = [\"a\"]\nparallel = 0\n";
        assert_eq!(err(text), "fleet.toml:7: group g: parallel must be at least 1, not 0");
        let text = "[[database]]\nname = \"a\"\nurl_env = \"A\"\n[[group]]\nname = \"g\"\ndatabases = [\"a\"]\non_error = \"retry\"\n";
        assert!(err(text).starts_with("fleet.toml:7: unknown variant `retry`"), "{}", err(text));
        let text = "[[database]]\nname = \"a\"\nurl_env = \"A\"\n[[database]]\nname = \"b\"\nurl_env = \"B\"\n[[group]]\nname = \"g\"\ndatabases = [\"a\"]\n";
        assert!(err(text).starts_with("fleet.toml:5: database b belongs to no group"), "{}", err(text));
        let text = "[[database]]\nname = \"a\"\nurl_env = \"A\"\n[[group]]\nname = \"g\"\n";
        assert_eq!(err(text), "fleet.toml:5: group g needs exactly one of `databases = [...]` and `match = \"pattern\"`");
        let text = "[[database]]\nname = \"a\"\nurl_env = \"A\"\ncolour = 1\n[[group]]\nname = \"g\"\nmatch = \"*\"\n";
        assert!(err(text).starts_with("fleet.toml:4: unknown field `colour`"), "{}", err(text));
        let text = "[[database]]\nname = \"a\"\nurl_env = \"A\"\n[[group]]\nname = \"g\"\ndatabases = [\"a\"]\n[[group]]\nname = \"h\"\ndatabases = [\"a\"]\n";
        assert_eq!(err(text), "fleet.toml:9: database a is listed in group g and group h; a database belongs to one group");
    }
}
