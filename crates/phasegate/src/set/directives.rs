//! A file's `-- phasegate:` directives (docs/directives.md), read from its
//! header when the set loads.

use std::path::Path;

use super::{parse_duration, Directives};
use crate::error::{Error, LoadError, Location, Result};

const DIRECTIVE: &str = "-- phasegate:";

pub(super) fn parse_directives(path: &Path, text: &str, migration: bool) -> Result<Directives> {
    let mut d = Directives::default();
    let mut in_header = true;
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let t = line.trim();
        let err = |kind: LoadError| Error::Load { at: Location::line(path, ln), kind };
        let bad = |message: String| err(LoadError::BadDirective { message });
        if let Some(rest) = t.strip_prefix(DIRECTIVE) {
            if !in_header {
                return Err(err(LoadError::DirectiveAfterSql));
            }
            if !migration {
                return Err(err(LoadError::DirectiveNotAllowed));
            }
            let rest = rest.trim();
            let (key, arg) = rest.split_once(char::is_whitespace).map_or((rest, ""), |(k, a)| (k, a.trim()));
            match key {
                "no-transaction" if arg.is_empty() => d.no_transaction = true,
                "batch" => {
                    d.batch = Some(super::batch::parse(arg).map_err(bad)?);
                }
                "lock-timeout" => d.lock_timeout = Some(parse_duration(arg).map_err(bad)?),
                "statement-timeout" => d.statement_timeout = Some(parse_duration(arg).map_err(bad)?),
                _ => return Err(err(LoadError::UnknownDirective { directive: rest.to_string() })),
            }
            continue;
        }
        if !(t.is_empty() || t.starts_with("--")) {
            in_header = false;
        }
    }
    if d.no_transaction && d.batch.is_some() {
        return Err(Error::Load { at: Location::line(path, 1), kind: LoadError::NoTransactionWithBatch });
    }
    Ok(d)
}
