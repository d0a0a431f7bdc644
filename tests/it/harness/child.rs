//! phasegate as a process of its own, for tests that need one: concurrent
//! migrators, kill -9, the real stdout and stderr.

use super::Output;

/// The `phasegate` binary (the same CLI as `cargo xtask`), for tests that
/// need processes of their own: concurrent migrators, kill -9, real output.
pub const BIN: &str = env!("CARGO_BIN_EXE_phasegate-it");

/// How long a child process may run before the harness calls it hung.
pub const PROCESS_BOUND: std::time::Duration = std::time::Duration::from_secs(300);

/// A running child whose output is read line by line on threads, so it never
/// blocks on a full pipe and the test can act on what it prints.
pub struct Child {
    pub child: std::process::Child,
    pub pid: u32,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
    stdout_done: bool,
}

impl Child {
    pub fn spawn(mut cmd: std::process::Command) -> Child {
        use std::io::BufRead;
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {BIN}: {e}"));
        let pid = child.id();
        let out = child.stdout.take().expect("stdout is piped");
        let mut err = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Bytes, not lines: a line that is not UTF-8 must not end the
            // output a test reads (its checks would pass on nothing).
            for line in std::io::BufReader::new(out).split(b'\n') {
                let line = line.expect("reading the child's stdout");
                if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut err, &mut b).expect("reading the child's stderr");
            String::from_utf8_lossy(&b).into_owned()
        });
        Child { child, pid, lines, stdout: Vec::new(), stderr, stdout_done: false }
    }

    /// Waits for the next stdout line, up to `timeout`; `None` at the end of
    /// the output or when the timeout passes.
    pub fn next_line(&mut self, timeout: std::time::Duration) -> Option<&str> {
        if self.stdout_done {
            return None;
        }
        match self.lines.recv_timeout(timeout) {
            Ok(l) => {
                self.stdout.push(l);
                self.stdout.last().map(String::as_str)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                self.stdout_done = true;
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        }
    }

    /// SIGKILL; false when the process had already exited.
    pub fn kill9(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.child.kill().is_ok()
    }

    /// Waits for the exit (killing the process if it outlives
    /// [`PROCESS_BOUND`]) and returns its code (-9 when killed) and output.
    pub fn wait(mut self) -> Output {
        let deadline = std::time::Instant::now() + PROCESS_BOUND;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for the child") {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{BIN} (pid {}) hung for {PROCESS_BOUND:?}; killed. stdout so far: {:?}", self.pid, self.stdout);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        while let Ok(l) = self.lines.recv() {
            self.stdout.push(l);
        }
        let stderr = self.stderr.join().expect("the stderr reader");
        let code = status.code().unwrap_or_else(|| -std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
        let mut stdout = self.stdout.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Output { code, stdout, stderr }
    }
}

