//! The commands, one file each. Every command is `run(args, ctx) -> i32`
//! (the exit code of docs/exit-codes.md); the shared `Run` gives each one its log
//! file, its audit row, its confirmations and its output format.

pub mod bench;
pub mod change;
mod flags;
mod logs;
pub mod demo;
pub mod fleet;
pub mod health;
pub mod import;
pub mod init;
pub mod history;
pub mod lint;
pub mod migrate;
pub mod new;
pub mod plan;
pub mod recover;
pub mod restore;
pub mod rollback;
pub mod snapshot;
pub mod status;
pub mod validate;
pub mod verify;

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::FromArgMatches;
use postgres::Client;
use serde::Serialize;

use crate::cli::{Args, Command, ConnectArgs, Format, TimeoutArgs};
use crate::report::{RunVerdict, Style};
use phasegate::{BatchProgress, CheckResult, Rehearsal, RunOutcome, Ui, Verdict};

pub use logs::{log_dir, logs_for};

/// Where a command reads and writes.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub input: &'a mut dyn BufRead,
}

/// Facts about the caller the binary gathers (the engine reads no
/// environment), and the program name help, usage and hints show.
#[derive(Debug, Clone)]
pub struct Env {
    pub os_user: String,
    pub hostname: String,
    /// Colour human output (a terminal, and NO_COLOR unset).
    pub color: bool,
    /// `phasegate`, `cargo xtask`, `cargo xtask db`: how the user runs us.
    pub bin: String,
}

impl Env {
    /// The real process's user, host and terminal.
    pub fn of_process(bin: &str) -> Env {
        use std::io::IsTerminal;
        Env {
            os_user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            bin: bin.to_string(),
        }
    }
}

pub struct Ctx<'a, 'b> {
    pub io: &'a mut Io<'b>,
    pub env: &'a Env,
}

/// Runs `args` on the real stdin, stdout and stderr.
pub fn run_process(args: Args, env: &Env) -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PHASEGATE_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut io = Io { out: &mut out, err: &mut err, input: &mut input };
    dispatch(args, &mut Ctx { io: &mut io, env })
}

/// Parses `argv` (program name first) as `env.bin` and runs the command;
/// usage errors and `--help` are printed and give clap's exit code.
pub fn run_argv(argv: impl IntoIterator<Item = impl Into<OsString> + Clone>, io: &mut Io, env: &Env) -> i32 {
    let parsed = crate::cli::command(&env.bin).try_get_matches_from(argv).and_then(|m| Args::from_arg_matches(&m));
    match parsed {
        Ok(args) => dispatch(args, &mut Ctx { io, env }),
        Err(e) => {
            let code = e.exit_code();
            let text = e.render().to_string();
            let _ = if e.use_stderr() { write!(io.err, "{text}") } else { write!(io.out, "{text}") };
            code
        }
    }
}

/// Runs one parsed command.
pub fn dispatch(args: Args, ctx: &mut Ctx) -> i32 {
    if let Some(e) = missing_target(&args.command, &ctx.env.bin) {
        let _ = write!(ctx.io.err, "{}", e.render());
        return e.exit_code();
    }
    let (name, format) = args.command.name_and_format();
    if matches!(format, Format::Github | Format::Markdown) && !Format::CI_COMMANDS.contains(&name) {
        let _ = writeln!(ctx.io.err, "error: --format {format:?} is for {}; `{name}` prints text or json", Format::CI_COMMANDS.join(", ").to_lowercase());
        return 2;
    }
    if format == Format::Html && !Format::HTML_COMMANDS.contains(&name) {
        let _ = writeln!(ctx.io.err, "error: --format html is for {}; `{name}` prints text or json", Format::HTML_COMMANDS.join(", "));
        return 2;
    }
    if html_with_fleet(&args.command) {
        let _ = writeln!(ctx.io.err, "error: the HTML report is of one database's run; with --fleet use --format text or json");
        return 2;
    }
    // Before anything runs: a log that cannot be written is an error, not
    // a run without its record.
    if let Some(dir) = logs::of(&args.command) {
        if let Err(e) = logs::writable(&dir) {
            let run = Run::new(ctx, name, None, format, None);
            return run.finish(failed(e));
        }
    }
    match args.command {
        Command::Migrate(a) => migrate::run(a, ctx),
        Command::Rollback(a) => rollback::run(a, ctx),
        Command::Restore(a) => restore::run(a, ctx),
        Command::Recover(a) => recover::run(a, ctx),
        Command::Health(a) => health::run(a, ctx),
        Command::Validate(a) => validate::run(a, ctx),
        Command::Status(a) => status::run(a, ctx),
        Command::Plan(a) => plan::run(a, ctx),
        Command::Lint(a) => lint::run(a, ctx),
        Command::New(a) => new::run(a, ctx),
        Command::Init(a) => init::run(a, ctx),
        Command::Import(a) => import::run(a, ctx),
        Command::Change(a) => change::run(a, ctx),
        Command::Snapshot(a) => snapshot::run(a, ctx),
        Command::History(a) => history::run(a, ctx),
        Command::Demo(a) => demo::run(a, ctx),
        Command::Bench(a) => bench::run(a, ctx),
        Command::Verify(a) => verify::run(a, ctx),
    }
}

/// `--format html` or `--html` asked of a fleet run.
fn html_with_fleet(command: &Command) -> bool {
    let (fleet, format, html) = match command {
        Command::Migrate(a) => (&a.fleet, a.connect.set.format, &a.html),
        Command::Rollback(a) => (&a.fleet, a.connect.set.format, &a.html),
        _ => return false,
    };
    fleet.is_some() && (format == Format::Html || html.html.is_some())
}

/// The usage error (exit 2) of a command that talks to a database but was
/// given none: no `--database-url` (nor `DATABASE_URL`) and, where the
/// command takes one, no `--fleet`. (Checked here rather than by clap, so
/// that `--fleet` can stand in for the URL.)
fn missing_target(command: &Command, bin: &str) -> Option<clap::Error> {
    let (name, connect, fleet) = match command {
        Command::Migrate(a) => ("migrate", &a.connect, Some(a.fleet.is_some())),
        Command::Rollback(a) => ("rollback", &a.connect, Some(a.fleet.is_some())),
        Command::Validate(a) => ("validate", &a.connect, Some(a.fleet.is_some())),
        Command::Status(a) => ("status", &a.connect, Some(a.fleet.is_some())),
        Command::Restore(a) => ("restore", &a.connect, None),
        Command::Recover(a) => ("recover", &a.connect, None),
        Command::Health(a) => ("health", &a.connect, None),
        Command::Snapshot(a) => ("snapshot", &a.connect, None),
        Command::History(a) => ("history", &a.connect, None),
        _ => return None,
    };
    if connect.database_url.is_some() || fleet == Some(true) {
        return None;
    }
    let wanted = if fleet.is_some() { "--database-url <URL> (or DATABASE_URL), or --fleet <FILE>" } else { "--database-url <URL> (or DATABASE_URL)" };
    let mut cmd = crate::cli::command(bin);
    cmd.build();
    let sub = cmd.find_subcommand_mut(name).expect("every command is a subcommand");
    Some(sub.error(clap::error::ErrorKind::MissingRequiredArgument, format!("the following required argument was not provided: {wanted}")))
}

/// The exit code (docs/exit-codes.md) for a verdict.
pub fn exit_for(verdict: Verdict) -> i32 {
    match verdict {
        Verdict::Proceed => 0,
        Verdict::Review => 3,
        Verdict::Rollback => 4,
    }
}

/// verify's exit code: 5 when a rollback does not restore the prior state,
/// 1 when a forward migration failed (4 when a check said ROLLBACK), else
/// by verdict.
pub fn verify_exit(r: &Rehearsal) -> i32 {
    if r.mismatch() {
        return 5;
    }
    if r.migrate_failed() {
        return if r.verdict() == Verdict::Rollback { 4 } else { 1 };
    }
    exit_for(r.verdict())
}

/// A value of a derived `Serialize` type as JSON (it cannot fail: no maps
/// with non-string keys, no failing custom serialisers).
pub fn json(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("a derived Serialize value serialises")
}

/// What a command hands back to be printed and audited.
#[derive(Debug, Default)]
pub struct Report {
    pub verdict: Option<Verdict>,
    /// Set to override the verdict's exit code (a failure, a refusal).
    pub exit: Option<i32>,
    pub error: Option<anyhow::Error>,
    /// The steps and checks, for the JSON document and the audit row.
    pub steps: serde_json::Value,
    pub checks: serde_json::Value,
    /// The command's own JSON fields (a `Serialize` struct per command).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// Human output, printed in text mode.
    pub text: String,
    /// `--format github`: workflow commands (commands that support it).
    pub github: String,
    /// `--format markdown`: tables for a step summary or a comment.
    pub markdown: String,
    /// `--format html` / `--html FILE`: the page (commands build it only
    /// when [`Run::wants_html`]).
    pub html: Option<String>,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        if let Some(e) = self.exit {
            return e;
        }
        if self.error.is_some() {
            return 1;
        }
        self.verdict.map(exit_for).unwrap_or(0)
    }

    /// The run's verdict as every output states it: ERROR when the run
    /// failed (exit 1, or a usage error it reports), else its checks'.
    pub fn run_verdict(&self) -> Option<RunVerdict> {
        if matches!(self.exit_code(), 1 | 2) {
            return Some(RunVerdict::Error);
        }
        self.verdict.map(RunVerdict::from)
    }

    /// Sets the command's own JSON fields from its `Serialize` struct.
    pub fn with_body(mut self, body: &impl Serialize) -> Report {
        self.set_body(body);
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
    connection: Option<phasegate::Transport>,
    #[serde(flatten)]
    body: &'a serde_json::Map<String, serde_json::Value>,
}

/// One command run: its log file, its connection, its audit row.
pub struct Run<'c, 'a, 'b> {
    ctx: &'c mut Ctx<'a, 'b>,
    pub command: &'static str,
    pub phase: Option<u32>,
    pub run_id: String,
    pub format: Format,
    pub yes: bool,
    started: Instant,
    started_at: time::OffsetDateTime,
    log: Option<File>,
    log_path: Option<PathBuf>,
    pub client: Option<Client>,
    /// How `client` travels (TLS or plaintext).
    transport: Option<phasegate::Transport>,
    pub style: Style,
    /// Whether to write an audit row (not for dry runs).
    pub audit: bool,
    /// Options worth recording in the audit row (e.g. `--no-backup`).
    pub args: Vec<String>,
    /// The progress bar of a running backfill, and its label.
    bar: Option<(indicatif::ProgressBar, String)>,
    /// `--html FILE`, and the set the page names.
    html_file: Option<PathBuf>,
    set_dir: PathBuf,
}

impl<'c, 'a, 'b> Run<'c, 'a, 'b> {
    pub fn new(ctx: &'c mut Ctx<'a, 'b>, command: &'static str, phase: Option<u32>, format: Format, log_dir: Option<PathBuf>) -> Self {
        let started_at = time::OffsetDateTime::now_utc();
        let style = Style { color: ctx.env.color && format == Format::Text };
        let mut run = Run {
            ctx,
            command,
            phase,
            run_id: phasegate::new_run_id(),
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
        let _ = writeln!(self.ctx.io.err, "{line}");
    }

    pub fn log_line(&mut self, line: &str) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{line}");
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

    /// Prints the report, writes the audit row and returns the exit code.
    pub fn finish(mut self, mut report: Report) -> i32 {
        let code = report.exit_code();
        let error = report.error.as_ref().map(|e| crate::errors::render(e, &self.ctx.env.bin));
        let duration_ms = self.started.elapsed().as_millis() as i64;
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
                let mut text = std::mem::take(&mut report.github);
                if let (Some(e), Some(shown)) = (&report.error, &error) {
                    text.push_str(&crate::report::github::error(e, shown));
                    text.push('\n');
                }
                let _ = write!(self.ctx.io.out, "{text}");
                self.log_line(&text);
            }
            Format::Markdown => {
                let mut text = std::mem::take(&mut report.markdown);
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
                    exit_code: code,
                    error: error.as_deref(),
                    steps: &report.steps,
                    checks: &report.checks,
                    connection: self.transport,
                    body: &report.body,
                };
                let text = serde_json::to_string_pretty(&doc).expect("the document serialises");
                let _ = writeln!(self.ctx.io.out, "{text}");
                self.log_line(&text);
            }
        }
        if let Some(e) = &error {
            self.log_line(&format!("error: {e}"));
        }
        self.log_line(&format!("exit {code} after {duration_ms} ms"));
        if self.audit {
            if let Some(client) = self.client.as_mut() {
                let record = phasegate::RunRecord {
                    run_id: self.run_id.clone(),
                    command: self.command.to_string(),
                    args: self.args.clone(),
                    phase: self.phase.map(|p| p as i32),
                    started_at: self.started_at,
                    duration_ms,
                    client_host: self.ctx.env.hostname.clone(),
                    os_user: self.ctx.env.os_user.clone(),
                    verdict: report.run_verdict().map(|v| v.to_string()),
                    exit_code: code,
                    error: error.clone(),
                    steps: if report.steps.is_null() { serde_json::json!([]) } else { report.steps.clone() },
                    checks: if report.checks.is_null() { serde_json::json!([]) } else { report.checks.clone() },
                    log_file: self.log_path.as_ref().map(|p| phasegate::display_path(p)),
                    fleet_run: None,
                    fleet_member: None,
                };
                // The ledger may not exist yet for read-only commands.
                let res = phasegate::ensure_ledger(client).and_then(|_| phasegate::audit(client, &record));
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
            if self.format == Format::Text && self.command != "snapshot" {
                let _ = writeln!(self.ctx.io.err, "log: {}", phasegate::display_path(p));
            }
        }
        code
    }
}

impl Ui for Run<'_, '_, '_> {
    fn confirm(&mut self, prompt: &str, expected: &str) -> bool {
        if self.yes {
            self.log_line(&format!("{prompt}: confirmed by --yes"));
            return true;
        }
        let _ = write!(self.ctx.io.err, "{prompt}\n> ");
        let _ = self.ctx.io.err.flush();
        let mut line = String::new();
        let ok = matches!(self.ctx.io.input.read_line(&mut line), Ok(n) if n > 0) && line.trim() == expected;
        self.log_line(&format!("{prompt}: typed {:?} -> {}", line.trim(), if ok { "confirmed" } else { "refused" }));
        ok
    }

    fn progress(&mut self, line: &str) {
        self.say(line);
    }

    fn check_done(&mut self, r: &CheckResult) {
        self.say(&format!("    check {:<40} {:>12} {}", r.check, crate::report::fmt_value(r.value, &r.unit), r.verdict));
    }

    fn batch(&mut self, p: BatchProgress<'_>) {
        match p {
            BatchProgress::Started { label, total, done, .. } => {
                let bar = indicatif::ProgressBar::with_draw_target(total.map(|t| t + done), indicatif::ProgressDrawTarget::stderr());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("  {msg} [{bar:30}] {human_pos}/{human_len} rows {per_sec} ETA {eta}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_message(label.to_string());
                bar.set_position(done);
                bar.reset_eta();
                self.bar = Some((bar, label.to_string()));
            }
            BatchProgress::Advanced { rows, .. } => {
                if let Some((b, _)) = &self.bar {
                    b.inc(rows);
                }
            }
            BatchProgress::Waiting { replica, lag, limit, .. } => {
                if let Some((b, label)) = &self.bar {
                    b.set_message(format!("{label} waiting for replica {replica} · lag {lag}, limit {limit:?}"));
                }
            }
            BatchProgress::Waited { .. } => {
                if let Some((b, label)) = &self.bar {
                    b.set_message(label.clone());
                }
            }
            BatchProgress::Finished { .. } => {
                if let Some((b, _)) = self.bar.take() {
                    b.finish_and_clear();
                }
            }
        }
    }
}

/// The engine options from the timeout flags; the lock monitor connects to
/// the same database.
pub fn apply_options(t: &TimeoutArgs, accept_review: bool, run_id: &str, url: &str) -> phasegate::ApplyOptions {
    phasegate::ApplyOptions {
        lock_timeout: t.lock_timeout,
        statement_timeout: t.statement_timeout,
        lock_retries: t.lock_retries,
        accept_review,
        run_id: run_id.to_string(),
        monitor_url: Some(url.to_string()),
        backup: true,
        max_backup_rows: phasegate::DEFAULT_MAX_BACKUP_ROWS,
        max_replica_lag: None,
        max_lock_hold: None,
    }
}

/// A report for an error before anything ran.
pub fn failed(e: impl Into<anyhow::Error>) -> Report {
    Report { error: Some(e.into()), ..Default::default() }
}

/// The JSON body of a migrate or rollback run.
#[derive(Serialize)]
struct RunJson {
    stopped_for_review: Option<u32>,
}

/// The report of a migrate or rollback run; `title` heads its Markdown.
pub fn outcome_report(outcome: RunOutcome, style: Style, title: &str) -> Report {
    let mut text = Vec::new();
    let _ = crate::report::run_summary(&mut text, &outcome, style);
    Report {
        verdict: Some(outcome.verdict()),
        exit: None,
        steps: json(&outcome.steps),
        checks: json(&outcome.checks().collect::<Vec<_>>()),
        text: String::from_utf8_lossy(&text).into_owned(),
        github: crate::report::github::run(&outcome),
        markdown: crate::report::markdown::run(title, &outcome),
        error: outcome.failure.map(anyhow::Error::from),
        ..Default::default()
    }
    .with_body(&RunJson { stopped_for_review: outcome.stopped_for_review })
}
