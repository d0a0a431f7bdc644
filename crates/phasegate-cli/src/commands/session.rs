//! One command run's session: its log file, its connection (and the
//! migration lock), its audit row, and the end of the run (`finish`).

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use postgres::Client;

use super::{migrate, Ctx, Env, Report};
use crate::cli::{ConnectArgs, Format, Shape};
use crate::exit::Exit;
use crate::report::Style;

/// One command run: its log file, its connection, its audit row.
pub struct Run<'c, 'a, 'b> {
    pub(super) ctx: &'c mut Ctx<'a, 'b>,
    pub command: &'static str,
    pub phase: Option<u32>,
    pub run_id: String,
    pub format: Format,
    pub yes: bool,
    pub(super) started: Instant,
    pub(super) started_at: time::OffsetDateTime,
    pub(super) log: Option<File>,
    pub(super) log_path: Option<PathBuf>,
    pub client: Option<Client>,
    /// How `client` travels (TLS or plaintext).
    pub(super) transport: Option<phasegate::tls::Transport>,
    pub style: Style,
    /// Whether to write an audit row (not for dry runs).
    pub audit: bool,
    /// Options worth recording in the audit row (e.g. `--no-backup`).
    pub args: Vec<String>,
    /// The progress bar of a running backfill, and its label.
    pub(super) bar: Option<(indicatif::ProgressBar, String)>,
    /// `--html FILE`, and the set the page names.
    pub(super) html_file: Option<PathBuf>,
    pub(super) set_dir: PathBuf,
}

impl<'c, 'a, 'b> Run<'c, 'a, 'b> {
    pub fn new(ctx: &'c mut Ctx<'a, 'b>, command: &'static str, phase: Option<u32>, format: Format, log_dir: Option<PathBuf>) -> Self {
        let started_at = time::OffsetDateTime::now_utc();
        let style = Style { color: ctx.env.color && format == Format::Text };
        let mut run = Run {
            ctx,
            command,
            phase,
            run_id: phasegate::ledger::new_run_id(),
            format,
            yes: false,
            started: Instant::now(),
            started_at,
            log: None,
            log_path: None,
            client: None,
            transport: None,
            style,
            audit: true,
            args: Vec::new(),
            bar: None,
            html_file: None,
            set_dir: PathBuf::from("."),
        };
        if let Some(dir) = log_dir {
            let stamp = started_at
                .format(&time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
                .unwrap_or_default();
            let phase = phase.map(|p| format!("-phase{p}")).unwrap_or_default();
            let path = dir.join(format!("{command}{phase}-{stamp}-{}.log", &run.run_id[..8]));
            // `dispatch` checked the folder; if it failed since, say so.
            match std::fs::create_dir_all(&dir).and_then(|_| File::create(&path)) {
                Ok(f) => {
                    run.log = Some(f);
                    run.log_path = Some(path);
                }
                Err(e) => run.note(&format!("warning: no log written: {}: {e}", phasegate::display_path(&path))),
            }
            run.log_line(&format!(
                "phasegate {command} run {} by {}@{} at {}",
                run.run_id,
                run.ctx.env.os_user,
                run.ctx.env.hostname,
                started_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
            ));
        }
        run
    }

    /// `--html FILE` (none: not asked) and the migration set the page names.
    pub fn html_to(&mut self, file: Option<PathBuf>, set_dir: &std::path::Path) {
        self.html_file = file;
        self.set_dir = set_dir.to_path_buf();
    }

    /// Whether the run's HTML page is wanted (`--format html` or `--html`).
    pub fn wants_html(&self) -> bool {
        self.format == Format::Html || self.html_file.is_some()
    }

    /// What the HTML page says about this run: the command, the set, when,
    /// how long so far, who; `database` is redacted here.
    pub fn page_meta(&self, database: Option<&str>, lock_limit: Option<Duration>) -> crate::report::html::Meta {
        let (duration_s, started_at) = self.started();
        let phase = self.phase.map(|p| format!(" --phase {p}")).unwrap_or_default();
        crate::report::html::Meta {
            command: format!("{} {}{phase}{}", self.ctx.env.bin, self.command, migrate::dir_flag(&self.set_dir)),
            set: phasegate::display_path(&self.set_dir),
            started_at,
            duration_s,
            operator: self.operator(),
            database: database.map(phasegate::redact),
            run_id: self.run_id.clone(),
            lock_limit_ms: lock_limit.map(|d| d.as_secs_f64() * 1000.0),
        }
    }

    /// The run's log file, when one could be created.
    pub fn log_path(&self) -> Option<&std::path::Path> {
        self.log_path.as_deref()
    }

    /// How the user runs phasegate (`cargo xtask`, `phasegate`), for the
    /// commands printed as hints.
    pub fn bin(&self) -> &str {
        &self.ctx.env.bin
    }

    /// The caller's user, host and program name.
    pub fn env(&self) -> &Env {
        self.ctx.env
    }

    /// Who runs this: `user@host`.
    pub fn operator(&self) -> String {
        format!("{}@{}", self.ctx.env.os_user, self.ctx.env.hostname)
    }

    /// Seconds since the run started, and when it started (UTC).
    pub fn started(&self) -> (f64, String) {
        let at = self.started_at.format(&time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).unwrap_or_default();
        (self.started.elapsed().as_secs_f64(), at)
    }

    /// Writes a line to stderr (notes that are not the command's output).
    pub fn note(&mut self, line: &str) {
        self.log_line(line);
        let _ = self.ctx.io.err.write_all(format!("{line}\n").as_bytes());
    }

    /// Appends a line to the run's log, in one write (the file is not
    /// buffered, so what a run logged is there if it dies).
    pub fn log_line(&mut self, line: &str) {
        if let Some(f) = &mut self.log {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }

    /// Prints a line for humans (text mode) and logs it.
    pub fn say(&mut self, line: &str) {
        self.log_line(line);
        if self.format == Format::Text {
            let _ = writeln!(self.ctx.io.out, "{line}");
        }
    }

    /// Connects (and, for commands that change the database, takes the
    /// migration lock first). A run refused the lock keeps its connection,
    /// so its audit row records who tried and who held the lock.
    pub fn connect(&mut self, c: &ConnectArgs, lock_wait: Option<Duration>) -> phasegate::Result<&mut Client> {
        let app = format!("phasegate {} ({}@{} pid {})", self.command, self.ctx.env.os_user, self.ctx.env.hostname, std::process::id());
        self.log_line(&format!("connecting to {}", phasegate::redact(c.url())));
        let (client, transport) = phasegate::connect_reporting(c.url(), &app)?;
        self.transport = Some(transport);
        if transport.fell_back() {
            self.note(&format!("warning: connected in {transport}"));
        } else {
            self.log_line(&format!("connected over {transport}"));
        }
        let client = self.client.insert(client);
        if let Some(wait) = lock_wait {
            phasegate::acquire_lock(client, wait)?;
            self.log_line("holding the migration lock");
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Prints the report (a command's error becomes a report carrying it),
    /// writes the audit row and returns the exit code.
    pub fn finish(mut self, report: anyhow::Result<Report>) -> Exit {
        let mut report = report.unwrap_or_else(Report::failed);
        let code = report.exit_code();
        let error = report.error.as_ref().map(|e| crate::errors::render(e, &self.ctx.env.bin));
        let duration_ms = self.started.elapsed().as_millis() as i64;
        self.print(&mut report, error.as_deref(), code);
        if let Some(e) = &error {
            self.log_line(&format!("error: {e}"));
        }
        self.log_line(&format!("exit {code} after {duration_ms} ms"));
        if self.audit {
            if let Some(client) = self.client.as_mut() {
                let record = phasegate::ledger::RunRecord {
                    run_id: self.run_id.clone(),
                    command: self.command.to_string(),
                    args: self.args.clone(),
                    phase: self.phase.map(|p| p as i32),
                    started_at: self.started_at,
                    duration_ms,
                    client_host: self.ctx.env.hostname.clone(),
                    os_user: self.ctx.env.os_user.clone(),
                    verdict: report.run_verdict().map(|v| v.to_string()),
                    exit_code: code.code(),
                    error: error.clone(),
                    steps: if report.steps.is_null() { serde_json::json!([]) } else { report.steps.clone() },
                    checks: if report.checks.is_null() { serde_json::json!([]) } else { report.checks.clone() },
                    log_file: self.log_path.as_ref().map(|p| phasegate::display_path(p)),
                    fleet_run: None,
                    fleet_member: None,
                };
                // The ledger may not exist yet for read-only commands.
                let res = phasegate::ledger::ensure(client).and_then(|_| phasegate::ledger::audit(client, &record));
                if let Err(e) = res {
                    self.log_line(&format!("warning: audit row not written: {e}"));
                    let _ = writeln!(self.ctx.io.err, "warning: audit row not written: {e}");
                }
            }
        }
        // The migration lock is released before the run counts as finished.
        if let Some(client) = self.client.take() {
            phasegate::end_session(client);
        }
        if let Some(p) = &self.log_path {
            if self.format == Format::Text && self.command != crate::cli::SnapshotArgs::NAME {
                let _ = writeln!(self.ctx.io.err, "log: {}", phasegate::display_path(p));
            }
        }
        code
    }
}
