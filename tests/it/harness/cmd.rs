//! phasegate command lines for tests: one builder for the arguments every
//! test passes (`--database-url`, `--dir`, `--log-dir`), run in-process
//! (real argument parsing, captured output) or as a process of its own, and
//! helpers on what comes out.

use std::path::Path;

use super::{log_dir, Child, Report, TestDb, BIN};

/// A phasegate command line: its arguments, the input typed at prompts and,
/// for processes, environment variables.
#[derive(Debug, Clone, Default)]
pub struct Cmd {
    args: Vec<String>,
    url: Option<String>,
    dir: Option<String>,
    log_dir: Option<String>,
    stdin: String,
    env: Vec<(String, String)>,
}

/// `args` against the database at `url` (a `&TestDb` works too) with the
/// migration set in `dir`, logging to target/test-logs.
pub fn on(url: impl DbUrl, dir: &Path, args: &[&str]) -> Cmd {
    Cmd::new(args).url(url.db_url()).dir(dir).logs(log_dir())
}

/// Runs `args` in-process against `db` and the set in `dir`.
pub fn run(db: &TestDb, dir: &Path, args: &[&str], stdin: &str) -> Output {
    on(db, dir, args).stdin(stdin).run()
}

/// Runs `args` in-process as they are.
pub fn cli(args: &[&str], stdin: &str) -> Output {
    Cmd::new(args).stdin(stdin).run()
}

/// What a command can be pointed at: a URL, or a test database.
pub trait DbUrl {
    fn db_url(&self) -> &str;
}

impl DbUrl for &TestDb {
    fn db_url(&self) -> &str {
        &self.url
    }
}

impl DbUrl for &str {
    fn db_url(&self) -> &str {
        self
    }
}

impl DbUrl for &String {
    fn db_url(&self) -> &str {
        self
    }
}

impl Cmd {
    pub fn new(args: &[&str]) -> Cmd {
        Cmd { args: args.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    pub fn args(mut self, more: &[&str]) -> Cmd {
        self.args.extend(more.iter().map(|s| s.to_string()));
        self
    }

    /// `--database-url URL` (replacing an earlier one).
    pub fn url(mut self, url: &str) -> Cmd {
        self.url = Some(url.to_string());
        self
    }

    /// `--dir DIR` (replacing an earlier one).
    pub fn dir(mut self, dir: &Path) -> Cmd {
        self.dir = Some(dir.to_str().expect("a UTF-8 path").to_string());
        self
    }

    /// `--log-dir DIR` (replacing an earlier one).
    pub fn logs(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.log_dir = Some(dir.as_ref().to_str().expect("a UTF-8 path").to_string());
        self
    }

    /// The whole argument list, program name excluded.
    fn argv(&self) -> Vec<String> {
        let mut v = self.args.clone();
        for (flag, value) in [("--database-url", &self.url), ("--dir", &self.dir), ("--log-dir", &self.log_dir)] {
            if let Some(value) = value {
                v.extend([flag.to_string(), value.clone()]);
            }
        }
        v
    }

    /// What the operator types at prompts (in-process runs).
    pub fn stdin(mut self, text: &str) -> Cmd {
        self.stdin = text.to_string();
        self
    }

    /// An environment variable of the process (spawned runs).
    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs in this process: real argument parsing, output captured.
    pub fn run(&self) -> Output {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input = std::io::Cursor::new(self.stdin.as_bytes().to_vec());
        let env = phasegate_cli::testing::Env { os_user: "tester".into(), hostname: "test-host".into(), color: false, bin: "cargo xtask".into() };
        let mut io = phasegate_cli::testing::Io { out: &mut out, err: &mut err, input: &mut input };
        let argv = std::iter::once("xtask".to_string()).chain(self.argv());
        let code = phasegate_cli::testing::run_argv(argv, &mut io, &env);
        Output { code, stdout: String::from_utf8_lossy(&out).into_owned(), stderr: String::from_utf8_lossy(&err).into_owned() }
    }

    /// The `phasegate` process with a clean environment: no DATABASE_URL or
    /// PHASEGATE_TEST_DATABASE_URL, no colour, no log filter, stdin closed;
    /// stdout and stderr piped.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(BIN);
        c.args(self.argv())
            .env_remove("DATABASE_URL")
            .env_remove("PHASEGATE_TEST_DATABASE_URL")
            .env_remove("PHASEGATE_LOG")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Starts the process; its output is read as it comes.
    pub fn spawn(&self) -> Child {
        Child::spawn(self.command())
    }

    /// Runs the process to completion.
    pub fn process(&self) -> Output {
        self.spawn().wait()
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout as untyped JSON (see [`Output::report`]).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The command's JSON document (`--format json`), typed.
    #[track_caller]
    pub fn report(&self) -> Report {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not a command's JSON document ({e}): {self:?}"))
    }

    /// Asserts the exit code, showing the whole output when it differs.
    #[track_caller]
    pub fn expect_exit(&self, code: i32) -> &Output {
        assert_eq!(self.code, code, "exit code {} where {code} was expected: {self:?}", self.code);
        self
    }

    /// The one `error: ` line on stderr, without its prefix; panics unless
    /// there is exactly one.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        let errors: Vec<&str> = self.stderr.lines().filter_map(|l| l.strip_prefix("error: ")).collect();
        assert_eq!(errors.len(), 1, "one error line expected on stderr: {}", self.stderr);
        errors[0]
    }

    /// Every check of the JSON output (`--format json`), as objects
    /// (untyped; `report().checks` are typed).
    #[track_caller]
    #[allow(dead_code)] // kept for tests that read the untyped document
    pub fn checks(&self) -> Vec<serde_json::Value> {
        self.json()["checks"].as_array().cloned().unwrap_or_default()
    }
}

