//! `bench --only fleet-scale` (docs/targets.md): one set across 1000
//! databases spread over 4 servers, through the real command line
//! (`migrate --fleet FILE --phase 1` of this very binary, as a child
//! process), a canary then three waves, at parallel 1, 4 and 16, each run
//! on fresh databases. Per run: databases per second; where a database's
//! time goes (the `timings` of each database in the JSON the child
//! prints); the runner's own share of the wall time (the child's user +
//! system CPU time, from `wait4`, over the wall time from spawn to exit);
//! the most connections the child held to one server (the engine's own
//! count in the JSON, cross-checked by sampling `pg_stat_activity` on
//! every server from a separate connection); and the child's peak memory
//! (its maximum resident set, from the same `wait4`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use phasegate::Server;

use super::{figure, ms, Figure, Options};

const SERVERS: usize = 4;
const DATABASES: usize = 1000;
/// The widest first: its figures carry the targets.
const PARALLEL: [usize; 3] = [16, 4, 1];

/// The fleet file: databases from a discovery query on a catalog table (a
/// thousand `[[database]]` entries would need a thousand variables), a
/// canary, then waves of 99, 400 and 500 databases.
fn fleet_file(parallel: usize) -> String {
    format!(
        r#"[discovery]
catalog_env = "BENCH_FLEET_CATALOG_URL"
query = "SELECT name, url FROM bench_fleet_tenants ORDER BY name"

[[group]]
name = "canary"
databases = ["t0000"]

[[group]]
name = "wave-1"
match = "t00??"
parallel = {parallel}

[[group]]
name = "wave-2"
match = "t0[1-4]??"
parallel = {parallel}

[[group]]
name = "wave-3"
match = "*"
parallel = {parallel}
"#
    )
}

/// One run's measurements.
struct Measured {
    parallel: usize,
    wall_ms: f64,
    cpu_ms: f64,
    max_rss_kb: i64,
    /// The engine's count: the most connections held to any one server.
    peak_counted: usize,
    /// The most `phasegate` sessions one server showed at a sample.
    peak_sampled: i64,
    /// Each timing's sum over the databases, and the databases' own sum.
    timings: BTreeMap<String, f64>,
    duration_sum_ms: f64,
}

impl Measured {
    fn per_second(&self) -> f64 {
        DATABASES as f64 / (self.wall_ms / 1000.0)
    }
    fn share(&self) -> f64 {
        self.cpu_ms / self.wall_ms
    }
}

/// Starts the servers, one thread each.
fn start(o: &Options) -> Result<Vec<Server>> {
    std::thread::scope(|s| {
        let started: Vec<_> = (0..SERVERS).map(|_| s.spawn(|| Server::start(&o.backend))).collect();
        started.into_iter().map(|h| h.join().map_err(|_| anyhow!("a server start panicked"))?.map_err(Into::into)).collect()
    })
}

/// Database `i`'s server: interleaved, so neighbours in a wave sit on
/// different servers.
fn server_of(i: usize) -> usize {
    i % SERVERS
}

/// Creates the run's databases (each server's share on its own thread)
/// and the catalog rows naming them.
fn create(servers: &[Server], label: &str) -> Result<Vec<(String, String)>> {
    let made: Vec<Vec<(usize, String, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(si, server)| {
                s.spawn(move || -> Result<Vec<(usize, String, String)>> {
                    let mut out = Vec::new();
                    for i in (0..DATABASES).filter(|i| server_of(*i) == si) {
                        let name = format!("t{i:04}");
                        let url = server.create_database(&format!("bench_{label}_{name}"), None)?;
                        out.push((i, name, url));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| anyhow!("creating databases panicked"))?).collect::<Result<Vec<_>>>()
    })?;
    let mut all: Vec<(usize, String, String)> = made.into_iter().flatten().collect();
    all.sort();
    Ok(all.into_iter().map(|(_, n, u)| (n, u)).collect())
}

fn drop_all(servers: &[Server], label: &str) -> Result<()> {
    std::thread::scope(|s| {
        let handles: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(si, server)| {
                s.spawn(move || -> Result<()> {
                    for i in (0..DATABASES).filter(|i| server_of(*i) == si) {
                        server.drop_database(&format!("bench_{label}_t{i:04}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| anyhow!("dropping databases panicked"))?)
    })
}

/// Samples every server's phasegate sessions until `stop`; the most seen
/// on one server at once.
fn sample(servers: &[Server], stop: &AtomicBool) -> Result<i64> {
    let mut clients = servers.iter().map(|s| phasegate::connect(s.admin_url(), "bench sampler")).collect::<phasegate::Result<Vec<_>>>()?;
    let mut peak = 0;
    while !stop.load(Ordering::Relaxed) {
        for c in clients.iter_mut() {
            let n: i64 = c
                .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'phasegate %'", &[])
                .map(|r| r.get(0))
                .unwrap_or(0);
            peak = peak.max(n);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(peak)
}

/// One fleet run at `parallel` on fresh databases.
fn run_once(servers: &[Server], o: &Options, parallel: usize, say: &mut dyn FnMut(&str)) -> Result<Measured> {
    let label = format!("fs{parallel}_{}", std::process::id());
    let t = Instant::now();
    let dbs = create(servers, &label)?;
    say(&format!("fleet-scale: {DATABASES} databases created over {SERVERS} servers in {:.1} s", t.elapsed().as_secs_f64()));
    let catalog = servers[0].create_database(&format!("bench_{label}_catalog"), None)?;
    let mut c = phasegate::connect(&catalog, "phasegate bench")?;
    c.batch_execute("CREATE TABLE bench_fleet_tenants (name text PRIMARY KEY, url text NOT NULL)")?;
    for chunk in dbs.chunks(200) {
        let names: Vec<&str> = chunk.iter().map(|(n, _)| n.as_str()).collect();
        let urls: Vec<&str> = chunk.iter().map(|(_, u)| u.as_str()).collect();
        c.execute("INSERT INTO bench_fleet_tenants SELECT * FROM unnest($1::text[], $2::text[])", &[&names, &urls])?;
    }
    drop(c);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("fleet.toml");
    std::fs::write(&file, fleet_file(parallel))?;
    let out_path = dir.path().join("out.json");
    let stop = AtomicBool::new(false);
    let (child, peak_sampled) = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample(servers, &stop));
        let child = spawn_and_wait(o.clinic_dir, &file, &catalog, &out_path);
        stop.store(true, Ordering::Relaxed);
        (child, sampler.join().map_err(|_| anyhow!("the sampler panicked")).and_then(|r| r))
    });
    let child = child?;
    let peak_sampled = peak_sampled?;
    // Parsed as it is read, into the few fields used: a value tree of the
    // whole document would raise this process's peak memory, which the
    // next child's figure inherits (`reap`).
    let reader = std::io::BufReader::new(std::fs::File::open(&out_path)?);
    let doc: Doc = serde_json::from_reader(reader).with_context(|| format!("the child's JSON (exit {})", child.status))?;
    let Some(fleet) = doc.fleet else {
        bail!("fleet-scale: the fleet run failed (exit {}): {}", child.status, doc.error.as_deref().unwrap_or("no error in its JSON"));
    };
    if let Some(d) = fleet.databases.iter().find(|d| d.state != "done") {
        bail!("fleet-scale: database {} ended {}: {}", d.database, d.state, d.error.as_deref().unwrap_or(""));
    }
    let mut timings = BTreeMap::new();
    let mut duration_sum_ms = 0.0;
    for d in &fleet.databases {
        duration_sum_ms += d.duration_ms;
        for (k, v) in &d.timings {
            *timings.entry(k.clone()).or_insert(0.0) += v;
        }
    }
    let peak_counted = fleet.servers.iter().map(|s| s.peak_connections).max().unwrap_or(0);
    drop_all(servers, &label)?;
    servers[0].drop_database(&format!("bench_{label}_catalog"))?;
    let m = Measured {
        parallel,
        wall_ms: child.wall_ms,
        cpu_ms: child.cpu_ms,
        max_rss_kb: child.max_rss_kb,
        peak_counted,
        peak_sampled,
        timings,
        duration_sum_ms,
    };
    say(&format!(
        "fleet-scale: parallel {parallel}: {:.1} s, {:.1} databases/s, runner CPU {:.1}% of the wall time, peak {} connections per server (sampled {}), {:.0} MB",
        m.wall_ms / 1000.0,
        m.per_second(),
        100.0 * m.share(),
        m.peak_counted,
        m.peak_sampled,
        m.max_rss_kb as f64 / 1024.0
    ));
    Ok(m)
}

/// The fields of the child's JSON document the figures use.
#[derive(serde::Deserialize)]
struct Doc {
    /// None when the run failed before any database (its `error` says why).
    fleet: Option<DocFleet>,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct DocFleet {
    databases: Vec<DocDb>,
    servers: Vec<DocServer>,
}

#[derive(serde::Deserialize)]
struct DocDb {
    database: String,
    state: String,
    error: Option<String>,
    duration_ms: f64,
    timings: BTreeMap<String, f64>,
}

#[derive(serde::Deserialize)]
struct DocServer {
    peak_connections: usize,
}

/// What the child cost.
struct Child {
    status: i32,
    wall_ms: f64,
    cpu_ms: f64,
    max_rss_kb: i64,
}

/// Runs `migrate --fleet` as a child process of this binary (the same
/// command line an operator types) and reaps it with `wait4`, which gives
/// its CPU time and peak memory.
fn spawn_and_wait(set_dir: &Path, file: &Path, catalog: &str, out: &Path) -> Result<Child> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let stdout = std::fs::File::create(out)?;
    let t = Instant::now();
    let child = Command::new(exe)
        .args(["migrate", "--fleet"])
        .arg(file)
        .arg("--dir")
        .arg(set_dir)
        .args(["--phase", "1", "--accept-review", "--yes", "--format", "json"])
        .env("BENCH_FLEET_CATALOG_URL", catalog)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .context("starting the fleet run")?;
    let (status, usage) = reap(child.id() as i32)?;
    let wall_ms = ms(t.elapsed());
    let cpu = |tv: libc::timeval| tv.tv_sec as f64 * 1000.0 + tv.tv_usec as f64 / 1000.0;
    Ok(Child { status, wall_ms, cpu_ms: cpu(usage.ru_utime) + cpu(usage.ru_stime), max_rss_kb: usage.ru_maxrss })
}

/// Waits for `pid` and returns its exit status and resource usage. The
/// child was spawned sharing this process's memory until its exec, and
/// Linux carries that memory's high-water mark into the child's
/// `ru_maxrss`: this process keeps its own peak small (see `run_once`),
/// so the figure is the child's.
fn reap(pid: i32) -> Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((libc::WEXITSTATUS(status), usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(anyhow!("waiting for the fleet run: {e}"));
        }
    }
}

/// The figures: databases per second at each parallelism, where the time
/// goes, the runner's share, connections per server, memory.
pub(super) fn scale(o: &Options, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    // The child loads the set from the same directory: a missing one is
    // said now, not after four servers and a thousand databases.
    phasegate::load_set(o.clinic_dir)?;
    say(&format!("fleet-scale: starting {SERVERS} servers"));
    let servers = start(o)?;
    let runs = PARALLEL.iter().map(|&p| run_once(&servers, o, p, say)).collect::<Result<Vec<_>>>()?;
    let last = runs.iter().find(|m| m.parallel == 16).expect("a run at parallel 16");
    let rates: Vec<String> = runs.iter().map(|m| format!("parallel {}: {:.1} db/s ({:.1} s)", m.parallel, m.per_second(), m.wall_ms / 1000.0)).collect();
    let mut figures = vec![figure(
        "fleet at scale: 1000 databases over 4 servers through phase 1, databases per second",
        rates.join(", "),
        "(no target)",
        None,
        serde_json::json!(runs.iter().map(|m| serde_json::json!({"parallel": m.parallel, "wall_ms": m.wall_ms, "databases_per_second": m.per_second()})).collect::<Vec<_>>()),
    )];
    let spans: Vec<String> = last
        .timings
        .iter()
        .map(|(k, v)| format!("{} {:.1} ms ({:.0}%)", k.trim_end_matches("_ms"), v / DATABASES as f64, 100.0 * v / last.duration_sum_ms.max(0.001)))
        .collect();
    figures.push(figure(
        "fleet at scale: where a database's time goes at parallel 16 (mean per database)",
        format!("{} of {:.1} ms", spans.join(", "), last.duration_sum_ms / DATABASES as f64),
        "(no target)",
        None,
        serde_json::json!({"timings_sum_ms": last.timings, "duration_sum_ms": last.duration_sum_ms}),
    ));
    let shares: Vec<String> = runs.iter().map(|m| format!("parallel {}: {:.1}%", m.parallel, 100.0 * m.share())).collect();
    figures.push(figure(
        "fleet at scale: the runner's own share of the wall time (its user+system CPU / wall)",
        shares.join(", "),
        "< 10% at parallel 16",
        Some(last.share() < 0.10),
        serde_json::json!(runs.iter().map(|m| serde_json::json!({"parallel": m.parallel, "cpu_ms": m.cpu_ms, "wall_ms": m.wall_ms})).collect::<Vec<_>>()),
    ));
    let conns: Vec<String> = runs.iter().map(|m| format!("parallel {}: {} counted, {} sampled", m.parallel, m.peak_counted, m.peak_sampled)).collect();
    figures.push(figure(
        "fleet at scale: peak connections to one server",
        conns.join(", "),
        "<= parallel + 1",
        Some(runs.iter().all(|m| m.peak_counted <= m.parallel + 1 && m.peak_sampled <= m.parallel as i64 + 1)),
        serde_json::json!(runs.iter().map(|m| serde_json::json!({"parallel": m.parallel, "counted": m.peak_counted, "sampled": m.peak_sampled})).collect::<Vec<_>>()),
    ));
    let peak_kb = runs.iter().map(|m| m.max_rss_kb).max().unwrap_or(0);
    figures.push(figure(
        "fleet at scale: the runner's peak memory (maximum resident set)",
        runs.iter().map(|m| format!("parallel {}: {:.0} MB", m.parallel, m.max_rss_kb as f64 / 1024.0)).collect::<Vec<_>>().join(", "),
        "< 100 MB",
        Some(peak_kb < 100 * 1024),
        serde_json::json!(runs.iter().map(|m| serde_json::json!({"parallel": m.parallel, "max_rss_kb": m.max_rss_kb})).collect::<Vec<_>>()),
    ));
    Ok(figures)
}
