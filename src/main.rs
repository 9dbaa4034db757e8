//! The `pypowerwall-server` binary: serve (default), `setup` (alias `--setup`), `sim`,
//! `healthcheck`.

use std::process::ExitCode;

use pypowerwall_server::{app, config, sim};

fn init_logging(debug: bool) {
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    // tiny_http and rustls are chatty at debug level; keep them at warn unless asked.
    let _ = simple_logger::SimpleLogger::new()
        .with_level(level)
        .with_module_level("tiny_http", log::LevelFilter::Warn)
        .with_module_level("rustls", log::LevelFilter::Warn)
        .with_module_level("ureq", log::LevelFilter::Warn)
        .init();
}

/// `healthcheck [URL]`: exit 0 when URL answers 2xx (for Docker's HEALTHCHECK in a scratch image).
fn healthcheck(url: Option<String>) -> ExitCode {
    // The listen port's key from the configuration table (`PW_PORT`, its alias, the default).
    let port = config::keys::PORT
        .env
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .unwrap_or_else(|| config::DEFAULT_PORT.to_string());
    let url = url.unwrap_or_else(|| format!("http://127.0.0.1:{port}/health"));
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    match agent.get(&url).call() {
        Ok(r) if (200..300).contains(&r.status()) => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("healthcheck: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `setup`: Tesla Owner API login that writes pypowerwall's token files.
fn setup(args: pico_args::Arguments) -> ExitCode {
    match pypowerwall_server::cloud::setup::run_cli(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pypowerwall-server setup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let mut args = pico_args::Arguments::from_env();
    // `sim --help` is the simulator's own help.
    let sim = std::env::args_os().nth(1).is_some_and(|a| a == "sim");
    if !sim && args.contains(["-h", "--help"]) {
        print!("{}", config::help());
        return ExitCode::SUCCESS;
    }
    if args.contains(["-V", "--version"]) {
        println!("pypowerwall-server {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    // `--setup` is the Python server's flag for the same thing.
    let setup_flag = args.contains("--setup");
    match args.subcommand() {
        Ok(Some(cmd)) if cmd == "setup" || setup_flag => {
            // With `--setup` the first free word was not a command: put nothing back, refuse it.
            if cmd != "setup" {
                eprintln!("pypowerwall-server --setup: unexpected argument '{cmd}'");
                return ExitCode::from(2);
            }
            return setup(args);
        }
        Ok(None) if setup_flag => return setup(args),
        Ok(Some(cmd)) if cmd == "sim" => {
            init_logging(args.contains("--debug"));
            return match sim::run_cli(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pypowerwall-server sim: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Ok(Some(cmd)) if cmd == "healthcheck" => {
            let url = args.opt_free_from_str::<String>().ok().flatten();
            return healthcheck(url);
        }
        Ok(Some(cmd)) => {
            eprintln!("pypowerwall-server: unknown command '{cmd}' (try --help)");
            return ExitCode::from(2);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("pypowerwall-server: {e}");
            return ExitCode::from(2);
        }
    }
    // Every flag comes from the configuration-key table.
    let cli = (|| -> Result<config::CliOverrides, pico_args::Error> {
        let mut cli = config::CliOverrides::default();
        for flag in config::KEYS.iter().filter_map(|k| k.flag) {
            match flag.value {
                Some(_) => {
                    if let Some(v) = args.opt_value_from_str::<_, String>(flag.name)? {
                        cli.set(flag.name, v);
                    }
                }
                None => {
                    if args.contains(flag.name) {
                        cli.switch(flag.name);
                    }
                }
            }
        }
        Ok(cli)
    })();
    let cli = match cli {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pypowerwall-server: {e} (try --help)");
            return ExitCode::from(2);
        }
    };
    let rest = args.finish();
    if !rest.is_empty() {
        eprintln!(
            "pypowerwall-server: unexpected argument {:?} (try --help)",
            rest[0]
        );
        return ExitCode::from(2);
    }
    let cfg = match config::load(&|k| std::env::var(k).ok(), &cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pypowerwall-server: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(cfg.server.debug);
    match app::start(cfg) {
        Ok(app) => {
            app.wait();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pypowerwall-server: {e}");
            ExitCode::from(2)
        }
    }
}
