//! A file's `-- phasegate:` directives (docs/directives.md), read from its
//! header when the set loads.

use std::path::Path;

use super::{parse_duration, Directives};
use crate::error::{Error, Location, Result};

const DIRECTIVE: &str = "-- phasegate:";

pub(super) fn parse_directives(path: &Path, text: &str, migration: bool) -> Result<Directives> {
    let mut d = Directives::default();
    let mut in_header = true;
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let t = line.trim();
        let err = |m: String| Error::Load { at: Location::line(path, ln), message: m };
        if let Some(rest) = t.strip_prefix(DIRECTIVE) {
            if !in_header {
                return Err(err("directives go at the top of the file, before any SQL".into()));
            }
            if !migration {
                return Err(err("directives are only allowed in migration and rollback files".into()));
            }
            let rest = rest.trim();
            let (key, arg) = rest.split_once(char::is_whitespace).map_or((rest, ""), |(k, a)| (k, a.trim()));
            match key {
                "no-transaction" if arg.is_empty() => d.no_transaction = true,
                "batch" => {
                    d.batch = Some(super::batch::parse(arg).map_err(err)?);
                }
                "lock-timeout" => d.lock_timeout = Some(parse_duration(arg).map_err(err)?),
                "statement-timeout" => d.statement_timeout = Some(parse_duration(arg).map_err(err)?),
                _ => {
                    return Err(err(format!(
                        "unknown directive `{rest}` (expected no-transaction, batch [N or D [max N]], lock-timeout D, statement-timeout D)"
                    )))
                }
            }
            continue;
        }
        if !(t.is_empty() || t.starts_with("--")) {
            in_header = false;
        }
    }
    if d.no_transaction && d.batch.is_some() {
        return Err(Error::Load { at: Location::line(path, 1), message: "`no-transaction` and `batch` cannot be combined".into() });
    }
    Ok(d)
}
