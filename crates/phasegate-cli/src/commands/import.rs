//! `import --from LAYOUT|auto DIR [--dir SET]`: another tool's history
//! written as a phasegate set (`phasegate::import`), read by the readers
//! `verify --from` uses.

use serde::Serialize;

use super::verify::{foreign_source, layout_of};
use crate::exit::Exit;
use crate::cli::Shape;
use super::{Ctx, Report, Run};
use crate::cli::ImportArgs;
use phasegate::{display_path, foreign};

/// `import --format json`.
#[derive(Serialize)]
struct ImportJson<'a> {
    layout: foreign::Layout,
    files: &'a [String],
    migrations: usize,
    irreversible: usize,
    no_transaction: usize,
    setup: Option<String>,
}

pub fn run(a: ImportArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, ImportArgs::NAME, None, a.set.format, None);
    run.audit = false;
    let report = match write(&a, &mut run) {
        Ok((layout, got)) => {
            let files: Vec<String> = got.files.iter().map(|p| display_path(p)).collect();
            let bin = run.bin().to_string();
            let dir = super::migrate::dir_flag(&a.set.dir);
            let mut text: String = files.iter().map(|f| format!("created {f}\n")).collect();
            text.push_str(&format!(
                "imported {} {layout} migrations as phases ({} irreversible: no down; {} run outside a transaction)\n\
                 next: `{bin} lint{dir}` and `{bin} verify{dir}{}`; add checks of your own to validations/\n",
                got.migrations,
                got.irreversible,
                got.no_transaction,
                got.setup.as_ref().map(|p| format!(" --setup {}", display_path(p))).unwrap_or_default()
            ));
            if let Some(p) = &got.setup {
                text.push_str(&format!("some migrations refer to {layout}'s ledger table: {} creates it for verify (--setup)\n", display_path(p)));
            }
            let body = ImportJson { layout, files: &files, migrations: got.migrations, irreversible: got.irreversible, no_transaction: got.no_transaction, setup: got.setup.as_ref().map(|p| display_path(p)) };
            Ok(Report { text, ..Default::default() }.with_body(&body))
        }
        Err(e) => Err(e),
    };
    run.finish(report)
}

fn write(a: &ImportArgs, run: &mut Run) -> anyhow::Result<(foreign::Layout, phasegate::Imported)> {
    let (from, named) = foreign_source(&a.from, &a.from_dir)?.expect("--from is required");
    let (layout, _) = layout_of(&from, named, run)?;
    let opts = foreign::Options { placeholders: a.placeholders.iter().cloned().collect() };
    Ok((layout, phasegate::import(layout, &from, &opts, &a.set.dir)?))
}
