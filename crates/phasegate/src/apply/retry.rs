//! Lock-timeout retries (docs/safety.md): exponential backoff with full jitter,
//! each retry printed, and a watcher on a second connection that names the
//! sessions blocking the run when the retries run out.

use std::time::Duration;

use postgres::Client;

use super::exec::{fmt_ms, is_lock_timeout};
use super::outcome::Options;
use crate::error::{Error, Result};
use crate::ui::Ui;

/// Who blocks this run's session: a watcher on a connection of its own.
pub(super) struct Watch(Option<crate::db::BlockerWatch>);

impl Watch {
    pub(super) fn start(client: &mut Client, opts: &Options) -> Watch {
        let Some(url) = &opts.monitor_url else { return Watch(None) };
        let pid: Option<i32> = client.query_one("SELECT pg_backend_pid()", &[]).ok().map(|r| r.get(0));
        Watch(pid.and_then(|pid| crate::db::BlockerWatch::start(url, pid)))
    }
    fn reset(&self) {
        if let Some(w) = &self.0 {
            w.reset();
        }
    }
    fn describe(&self) -> String {
        let seen = self.0.as_ref().map(|w| w.seen()).unwrap_or_default();
        if seen.is_empty() {
            return "a session the lock monitor did not catch (see pg_locks / pg_stat_activity)".into();
        }
        seen.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("; ")
    }
}

/// Retries `attempt` after lock timeouts (SQLSTATE 55P03) with exponential
/// backoff and full jitter, printing each retry; the last failure names the
/// blocking sessions the watcher saw.
pub(super) fn with_lock_retries<T>(opts: &Options, ui: &mut dyn Ui, what: &str, watch: &Watch, mut attempt: impl FnMut(&mut dyn Ui) -> Result<T>) -> (Result<T>, u32) {
    let mut retries = 0;
    watch.reset();
    loop {
        match attempt(ui) {
            Err(e) if is_lock_timeout(&e) && retries < opts.lock_retries => {
                retries += 1;
                let base = 250u64 << retries.min(6);
                let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % (base + 1);
                let wait = Duration::from_millis(base / 2 + jitter / 2);
                ui.progress(&format!("  {what}: lock not available within {}; blocked by {}; retry {retries}/{} in {}", fmt_ms(opts.lock_timeout), watch.describe(), opts.lock_retries, fmt_ms(wait)));
                std::thread::sleep(wait);
            }
            Err(e) if is_lock_timeout(&e) => {
                let err = Error::LockTimeout { what: what.to_string(), retries, lock_timeout: fmt_ms(opts.lock_timeout), blockers: watch.describe() };
                return (Err(err), retries);
            }
            other => return (other, retries),
        }
    }
}

