//! The discovery query: run read-only on the catalog database, it returns
//! one row per database, its name and its URL (the first two columns, as
//! text). A wrong shape, a NULL, a duplicate name or a SQL error is an
//! error naming the fleet file's line of the query.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Discovery, Member};
use crate::db;
use crate::error::{db_err, pg_message, Error, Location, Result};

pub fn run(file: &Path, d: &Discovery, catalog_url: &str) -> Result<Vec<Member>> {
    let at = || Location::line(file, d.query_line);
    let err = |message: String| Error::Discovery { at: at(), message };
    let mut client = db::connect(catalog_url, "phasegate fleet discovery")?;
    let mut tx = client.transaction().map_err(db_err("starting a transaction on the catalog"))?;
    tx.batch_execute("SET TRANSACTION READ ONLY").map_err(db_err("starting a read-only transaction on the catalog"))?;
    let rows = tx.query(d.query.as_str(), &[]).map_err(|e| err(pg_message(&e)))?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if row.len() < 2 {
            return Err(err(format!("it returned {} column(s); it must return a database's name and its URL", row.len())));
        }
        let cell = |c: usize| -> Result<String> {
            match row.try_get::<_, Option<String>>(c) {
                Ok(Some(v)) if !v.trim().is_empty() => Ok(v),
                Ok(_) => Err(err(format!("row {} has an empty {}", i + 1, if c == 0 { "name" } else { "URL" }))),
                Err(_) => Err(err(format!("column {} is of type {}; cast it to text", c + 1, row.columns()[c].type_()))),
            }
        };
        let (name, url) = (cell(0)?.trim().to_string(), cell(1)?);
        if !seen.insert(name.clone()) {
            return Err(err(format!("it returned database {name} twice")));
        }
        out.push(Member { name, url, url_env: None });
    }
    tx.rollback().map_err(db_err("ending the catalog's read-only transaction"))?;
    Ok(out)
}
