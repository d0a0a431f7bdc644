//! A command's result and how it is printed: the `Report` a command hands
//! back, the exit codes of docs/exit-codes.md, and the rendering of the one
//! format asked for (text, JSON, GitHub, Markdown, HTML).

use serde::Serialize;

use super::{json, Run};
use crate::cli::Format;
use crate::exit::Exit;
use crate::report::RunVerdict;
use phasegate::{rehearse, Verdict};

/// The exit code (docs/exit-codes.md) for a verdict.
pub fn exit_for(verdict: Verdict) -> Exit {
    Exit::of(verdict)
}

/// verify's exit code: 5 when a rollback does not restore the prior state,
/// 1 when a forward migration failed (4 when a check said ROLLBACK), else
/// by verdict.
pub fn verify_exit(r: &rehearse::Rehearsal) -> Exit {
    if r.mismatch() {
        return Exit::Mismatch;
    }
    if r.migrate_failed() {
        return if r.verdict() == Verdict::Rollback { Exit::Rollback } else { Exit::Failed };
    }
    exit_for(r.verdict())
}

/// What a command hands back to be printed and audited.
#[derive(Debug, Default)]
pub struct Report {
    pub verdict: Option<Verdict>,
    /// Set to override the verdict's exit code (a failure, a refusal).
    pub exit: Option<Exit>,
    pub error: Option<anyhow::Error>,
    /// The steps and checks, for the JSON document and the audit row.
    pub steps: serde_json::Value,
    pub checks: serde_json::Value,
    /// The command's own JSON fields (a `Serialize` struct per command).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// The command's own JSON fields already serialised, as one object,
    /// written into the document as they are: for a large body (a fleet
    /// of a thousand databases) whose value tree and pretty-printed copy
    /// would cost many times its size in memory. Instead of `body`.
    pub raw_body: Option<String>,
    /// Human output, printed in text mode.
    pub text: String,
    /// `--format github` (workflow commands) or `--format markdown` (tables
    /// for a step summary or a comment), whichever was asked: rendered only
    /// then ([`Run::ci`]).
    pub ci: String,
    /// `--format html` / `--html FILE`: the page (commands build it only
    /// when [`Run::wants_html`]).
    pub html: Option<String>,
}

impl Report {
    /// The report of a command that failed before it had anything else to
    /// say: the error, rendered as one line, and its exit code.
    pub fn failed(e: impl Into<anyhow::Error>) -> Report {
        Report { error: Some(e.into()), ..Default::default() }
    }

    pub fn exit_code(&self) -> Exit {
        if let Some(e) = self.exit {
            return e;
        }
        if self.error.is_some() {
            return Exit::Failed;
        }
        self.verdict.map(exit_for).unwrap_or(Exit::Ok)
    }

    /// The run's verdict as every output states it: ERROR when the run
    /// failed (exit 1, or a usage error it reports), else its checks'.
    pub fn run_verdict(&self) -> Option<RunVerdict> {
        if self.exit_code().is_error() {
            return Some(RunVerdict::Error);
        }
        self.verdict.map(RunVerdict::from)
    }

    /// Sets the command's own JSON fields from its `Serialize` struct.
    pub fn with_body(mut self, body: &impl Serialize) -> Report {
        self.set_body(body);
        self
    }

    /// Like [`Report::with_body`], serialised straight from the struct
    /// (no value tree) and kept compact: see `raw_body`.
    pub fn with_raw_body(mut self, body: &impl Serialize) -> Report {
        self.raw_body = Some(serde_json::to_string(body).expect("a command's JSON body serialises"));
        self
    }

    pub fn set_body(&mut self, body: &impl Serialize) {
        match json(body) {
            serde_json::Value::Object(m) => self.body = m,
            other => unreachable!("a command's JSON body is a struct, not {other}"),
        }
    }
}

/// The JSON document every command prints with `--format json`.
#[derive(Serialize)]
struct Document<'a> {
    command: &'a str,
    run_id: &'a str,
    verdict: Option<RunVerdict>,
    exit_code: i32,
    error: Option<&'a str>,
    steps: &'a serde_json::Value,
    checks: &'a serde_json::Value,
    /// How the run's connection travels (TLS or plaintext, what was
    /// verified), when it connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<phasegate::tls::Transport>,
    #[serde(flatten)]
    body: &'a serde_json::Map<String, serde_json::Value>,
}

impl Run<'_, '_, '_> {
    /// The CI output of a command that prints one: `github` or `markdown`
    /// rendered when that format was asked, nothing otherwise.
    pub fn ci(&self, github: impl FnOnce() -> String, markdown: impl FnOnce() -> String) -> String {
        match self.format {
            Format::Github => github(),
            Format::Markdown => markdown(),
            _ => String::new(),
        }
    }

    /// Prints the report in the one format the run was asked for (and
    /// writes the HTML page when `--html FILE` asked for it); `error` is
    /// the failure as shown, `code` the exit code.
    pub(super) fn print(&mut self, report: &mut Report, error: Option<&str>, code: Exit) {
        let error = error.map(str::to_string);
        let page = self.wants_html().then(|| {
            report.html.take().unwrap_or_else(|| match &error {
                Some(e) => crate::report::html::failed(&self.page_meta(None, None), e),
                None => crate::report::html::text(&self.page_meta(None, None), &report.text),
            })
        });
        if let (Some(path), Some(page)) = (self.html_file.clone(), &page) {
            match std::fs::write(&path, page) {
                Ok(()) => self.note(&format!("report: {}", phasegate::display_path(&path))),
                Err(e) => self.note(&format!("warning: could not write the HTML report {}: {e}", phasegate::display_path(&path))),
            }
        }
        match self.format {
            Format::Html => {
                let _ = write!(self.ctx.io.out, "{}", page.unwrap_or_default());
                if let Some(e) = &error {
                    let _ = writeln!(self.ctx.io.err, "error: {e}");
                }
            }
            Format::Text => {
                let text = std::mem::take(&mut report.text);
                if !text.is_empty() {
                    let _ = write!(self.ctx.io.out, "{text}");
                }
                self.log_line(&text);
                if let Some(e) = &error {
                    let _ = writeln!(self.ctx.io.err, "error: {e}");
                }
            }
            Format::Github => {
                let mut text = std::mem::take(&mut report.ci);
                if let (Some(e), Some(shown)) = (&report.error, &error) {
                    text.push_str(&crate::report::github::error(e, shown));
                    text.push('\n');
                }
                let _ = write!(self.ctx.io.out, "{text}");
                self.log_line(&text);
            }
            Format::Markdown => {
                let mut text = std::mem::take(&mut report.ci);
                if let Some(e) = &error {
                    text.push_str(&format!("\n> **error:** {}\n", crate::report::markdown::cell(e)));
                }
                let _ = write!(self.ctx.io.out, "{text}");
                self.log_line(&text);
            }
            Format::Json => {
                let doc = Document {
                    command: self.command,
                    run_id: &self.run_id,
                    verdict: report.run_verdict(),
                    exit_code: code.code(),
                    error: error.as_deref(),
                    steps: &report.steps,
                    checks: &report.checks,
                    connection: self.transport,
                    body: &report.body,
                };
                let mut text = serde_json::to_string_pretty(&doc).expect("the document serialises");
                // A raw body's fields follow the document's: both are objects.
                let raw = report.raw_body.take().filter(|r| r.len() > 2 && r.starts_with('{'));
                let tail = match &raw {
                    Some(r) => {
                        text.truncate(text.trim_end().trim_end_matches('}').trim_end().len());
                        text.push(',');
                        &r[1..]
                    }
                    None => "",
                };
                let _ = writeln!(self.ctx.io.out, "{text}{tail}");
                if let Some(f) = &mut self.log {
                    use std::io::Write as _;
                    let _ = writeln!(f, "{text}{tail}");
                }
            }
        }
    }
}
