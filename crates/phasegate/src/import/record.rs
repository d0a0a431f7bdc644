//! `imported.toml`: what `import` wrote each step from, so `migrate --adopt`
//! can map the tool's ledger rows to the set's versions: the tool, and per
//! migration its version in the set, its label in the tool (`Origin::id`),
//! its file relative to the imported folder and, where the tool keeps one,
//! the tool's checksum of that file as it was imported (`foreign::checksum`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, LoadError, Location, Result};
use crate::foreign::Layout;

/// The record's file name, in the set's folder.
pub const RECORD: &str = "imported.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The layout's name (`sqlx`, `golang-migrate`, ...).
    pub tool: String,
    /// The folder imported, as given to `import`.
    pub from: String,
    #[serde(default, rename = "migration")]
    pub migrations: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The step's version in the set.
    pub version: i32,
    /// The migration's label in its tool.
    pub id: String,
    /// Its forward file, relative to the imported folder.
    pub file: String,
    /// The tool's checksum of that file at import, where the tool keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Record {
    pub fn text(&self) -> String {
        let body = toml::to_string(self).expect("a record serialises");
        format!(
            "# Written by `phasegate import`: where each step came from, for `phasegate migrate\n\
             # --adopt {}` on a database {} already migrated. `checksum` is {}'s own checksum of\n\
             # the file as imported, where {} keeps one. Keep this file with the set.\n{body}",
            self.tool, self.tool, self.tool, self.tool
        )
    }

    /// Reads the record of the set in `dir`.
    pub fn read(dir: &Path) -> Result<Record> {
        let path = dir.join(RECORD);
        if !path.is_file() {
            return Err(Error::Load {
                at: Location::file(&path),
                kind: LoadError::Import { message: "not found: `migrate --adopt` adopts the ledger of a set `phasegate import` wrote (it writes this file)".into() },
            });
        }
        let text = crate::set::read_regular(&path)?;
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1)).unwrap_or(0);
            Error::Load { at: Location::line(&path, line), kind: LoadError::Toml { message: e.message().to_string() } }
        })
    }

    pub fn layout(&self) -> Option<Layout> {
        Layout::parse(&self.tool)
    }
}

/// The record of a foreign set read from `from`.
pub(crate) fn of(layout: Layout, from: &Path, set: &crate::set::MigrationSet) -> Result<Record> {
    let mut migrations = Vec::new();
    for step in set.phases.iter().flat_map(|p| &p.steps) {
        let origin = step.origin.as_ref().expect("a foreign step keeps its origin");
        let checksum = match crate::foreign::checksum::computed(layout) {
            true => {
                let bytes = std::fs::read(&origin.file).map_err(|e| Error::Io { path: origin.file.clone(), source: e })?;
                crate::foreign::checksum::of(layout, &origin.file, &bytes)
            }
            false => None,
        };
        migrations.push(Entry { version: step.version, id: origin.id.clone(), file: super::rel(from, &origin.file), checksum });
    }
    Ok(Record { tool: layout.name().to_string(), from: crate::error::display_path(from), migrations })
}
