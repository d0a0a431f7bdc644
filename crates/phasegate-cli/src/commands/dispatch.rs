//! From parsed arguments to a command: the real process's streams, argv
//! parsed as the caller's program, and the checks every command shares
//! before it runs (a target database, a format it prints, a writable log).

use std::ffi::OsString;

use clap::FromArgMatches;

use super::*;
use crate::cli::{shape::printing, Args, Command, Format, Info};
use crate::exit::Exit;

/// Runs `args` on the real stdin, stdout and stderr.
pub fn run_process(args: Args, env: &Env) -> Exit {
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
        Ok(args) => dispatch(args, &mut Ctx { io, env }).code(),
        Err(e) => {
            let code = e.exit_code();
            let text = e.render().to_string();
            let _ = if e.use_stderr() { write!(io.err, "{text}") } else { write!(io.out, "{text}") };
            code
        }
    }
}

/// Runs one parsed command.
pub fn dispatch(args: Args, ctx: &mut Ctx) -> Exit {
    let info = args.command.info();
    if let Some(e) = missing_target(&info, &ctx.env.bin) {
        let _ = write!(ctx.io.err, "{}", e.render());
        return if e.use_stderr() { Exit::Usage } else { Exit::Ok };
    }
    let (name, format) = (info.name, info.format);
    if !info.prints(format) {
        let listed = if format == Format::Html { "html".to_string() } else { format!("{format:?}") };
        let _ = writeln!(ctx.io.err, "error: --format {listed} is for {}; `{name}` prints text or json", printing(format).join(", "));
        return Exit::Usage;
    }
    if info.fleet == Some(true) && (format == Format::Html || info.html_file) {
        let _ = writeln!(ctx.io.err, "error: the HTML report is of one database's run; with --fleet use --format text or json");
        return Exit::Usage;
    }
    // Before anything runs: a log that cannot be written is an error, not
    // a run without its record.
    if let Some(dir) = logs::of(&args.command) {
        if let Err(e) = logs::writable(&dir) {
            let run = Run::new(ctx, name, None, format, None);
            return run.finish(Err(e));
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
        #[cfg(feature = "bench")]
        Command::Bench(a) => bench::run(a, ctx),
        Command::Verify(a) => verify::run(a, ctx),
    }
}

/// The usage error (exit 2) of a command that talks to a database but was
/// given none: no `--database-url` (nor `DATABASE_URL`) and, where the
/// command takes one, no `--fleet`. (Checked here rather than by clap, so
/// that `--fleet` can stand in for the URL.)
fn missing_target(info: &Info, bin: &str) -> Option<clap::Error> {
    let (name, connect, fleet) = (info.name, info.connect?, info.fleet);
    if connect.database_url.is_some() || fleet == Some(true) {
        return None;
    }
    let wanted = if fleet.is_some() { "--database-url <URL> (or DATABASE_URL), or --fleet <FILE>" } else { "--database-url <URL> (or DATABASE_URL)" };
    let mut cmd = crate::cli::command(bin);
    cmd.build();
    let sub = cmd.find_subcommand_mut(name).expect("every command is a subcommand");
    Some(sub.error(clap::error::ErrorKind::MissingRequiredArgument, format!("the following required argument was not provided: {wanted}")))
}
