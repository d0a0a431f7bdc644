//! What a run shows on the terminal while it works: confirmations typed
//! on stdin, progress lines, check results, and a backfill's progress bar
//! (the engine's `Ui`, implemented by the run).


use phasegate::{BatchProgress, CheckResult, Ui};

use super::Run;

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
