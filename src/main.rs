use clap::Parser;

// Compilation allocates many small strings and maps on every thread; mimalloc
// handles that without the contention and consolidation cost of glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use pm::cli::{Cli, Command};
use pm_core::output::Log;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, the
/// same in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The exit code of a crash (a bug in pm): EX_SOFTWARE of sysexits.h.
const CRASHED: i32 = 70;

/// A panic is a bug in pm: a short diagnostic saying so, where, and how to
/// report it, then exit 70, from whichever thread panicked. The backtrace
/// only with RUST_BACKTRACE set.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "an unknown place".to_string());
        let args: Vec<String> = std::env::args().collect();
        eprintln!(
            "pm crashed: this is a bug in pm {}, not a problem with your project.\n  \
             what: {message}\n  where: {place}\n  command: {}\n\
             Please report it with the command and this message (RUST_BACKTRACE=1 adds a backtrace).",
            env!("CARGO_PKG_VERSION"),
            args.join(" ")
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        std::process::exit(CRASHED);
    }));
}

fn main() {
    install_panic_hook();
    // A deliberate crash, for the test of the hook above.
    if std::env::var_os("PM_TEST_CRASH").is_some() {
        panic!("PM_TEST_CRASH is set");
    }
    // By default mimalloc hands freed memory back to the OS after 10 ms, and
    // pm, which frees and allocates in waves, then pays the kernel for zeroing
    // the same pages again: 40,000 page faults and a third of the CPU of a
    // 10,000-model compile. A command lives for seconds: keep the memory.
    // MIMALLOC_PURGE_DELAY in the environment still decides when it is set.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a documented option to a documented value (-1: never purge).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let env = pm_core::settings::Environment::read();
    let log = Log::new(
        cli.global.log_format.into(),
        cli.global.quiet,
        cli.global.no_color || env.no_color,
        env.dumb_terminal,
    );
    let settings = cli.global.settings(env);
    pm_core::output::PhaseTimer::enable(settings.env.timings);
    let g = &settings;
    let color = log.color;
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .terminal_links(false)
                .context_lines(2)
                .build(),
        )
    }));
    let result = match &cli.command {
        Command::Parse => pm::commands::parse(g, log),
        Command::Compile(args) => pm::commands::compile::run(g, args, log),
        Command::Ls(args) => pm::commands::ls::run(g, args, log),
        Command::Seed(args) => pm::commands::run::seed(g, args, log),
        Command::Run(args) => pm::commands::run::run(g, args, log),
        Command::Test(args) => pm::commands::run::test(g, args, log),
        Command::Build(args) => pm::commands::run::build(g, args, log),
        Command::Snapshot(args) => pm::commands::run::snapshot(g, args, log),
        Command::Db { action } => pm::commands::db::run(g, action, log),
        Command::Debug => pm::commands::db::debug(g, log),
        Command::Docs(args) => pm::commands::docs::run(g, args, log),
        #[cfg(feature = "generate")]
        Command::Generate(args) => pm::commands::generate::run(g, args, log),
        #[cfg(feature = "report")]
        Command::Report(args) => pm::commands::report::run(g, args, log),
        Command::Deps(args) => pm::commands::deps::run(g, args, log),
        Command::RunOperation(args) => pm::commands::operation::run(g, args, log),
        Command::Show(args) => pm::commands::show::run(g, args, log),
        Command::Query(args) => pm::commands::query::run(g, args, log),
        Command::Serve(args) => pm::commands::serve::run(g, args, log),
        Command::Clean => pm::commands::clean::run(g, log),
        Command::Retry => pm::commands::run::retry(g, log),
        Command::Init { name } => pm::commands::init::run(name, log),
        Command::Source {
            action: pm::cli::SourceAction::Freshness { select, output },
        } => pm::commands::freshness::run(g, select, output.as_deref(), log),
    };
    let code = match result {
        Ok(code) => code,
        Err(problems) => {
            log.problems(problems);
            2
        }
    };
    std::process::exit(code);
}
