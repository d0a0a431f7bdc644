//! The `cargo xtask` binary: gathers what the engine may not read itself
//! (arguments, environment, terminal), runs the command, exits with its code.

use std::io::IsTerminal;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PHASEGATE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let env = xtask::commands::Env {
        os_user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut io = xtask::commands::Io { out: &mut out, err: &mut err, input: &mut input };
    let code = xtask::commands::main(std::env::args_os(), &mut io, &env);
    std::process::exit(code);
}
