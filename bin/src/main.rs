//! The `autodisco` command: wires configuration, directory and server together.

mod admin;
mod args;
mod check;
mod dns;
mod probe;
mod tokens;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use autodisco_directory::{LiveDirectory, Store};
use autodisco_server::config::Config;
use autodisco_server::{RunningServer, bootstrap};
use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: every answer allocates and frees a few dozen small
/// strings, and `bench/run` measured glibc's malloc and free at about a tenth of the server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// AutoDiscover for mail hosters: one server answers Outlook, ActiveSync and other mail clients
/// for every hosted customer domain.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    /// Configuration file (TOML). Without one, the embedded defaults are used: hoster
    /// "hoster.test", SQLite file ./autodisco.sqlite, HTTP on 127.0.0.1:8080 and HTTPS on
    /// 127.0.0.1:8443 with a self-signed certificate.
    #[arg(
        long,
        short,
        global = true,
        env = "AUTODISCO_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// Log format on standard error: `text` for people, `json` (one object per line) for log
    /// collectors; `auto` picks text on a terminal and JSON otherwise.
    #[arg(
        long,
        global = true,
        env = "AUTODISCO_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Auto
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// The values of `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 failure, 2 usage or configuration error.
Logging: set RUST_LOG (for example RUST_LOG=autodisco=debug); default is info.";

#[derive(Subcommand)]
enum Command {
    /// Run the HTTPS AutoDiscover service and the plain-HTTP redirect site.
    ///
    /// SIGHUP re-reads the config file (profiles and public URL; a bad file is refused and the
    /// old one kept) and the certificates. SIGTERM or Ctrl-C stops accepting and lets requests
    /// in flight finish.
    Serve,
    /// Manage hosted domains and alias domains.
    #[command(subcommand)]
    Domain(admin::DomainCommand),
    /// Manage service profiles (the plans a hoster sells).
    #[command(subcommand)]
    Profile(admin::ProfileCommand),
    /// Manage per-user overrides (display name, login name, redirects for moved mailboxes).
    #[command(subcommand)]
    User(admin::UserCommand),
    /// The DNS records customer domains publish.
    #[command(subcommand)]
    Dns(dns::DnsCommand),
    /// Import domains (CSV) or profiles, domains and user overrides (JSON), all or nothing.
    ///
    /// Existing objects are updated, nothing is removed. Every row is checked first; each bad
    /// one is named by its line (CSV) or place (JSON), and then nothing is written.
    Import(transfer::ImportArgs),
    /// Export the domains (CSV) or the whole directory without passwords (JSON).
    Export(transfer::ExportArgs),
    /// Manage the admin API's bearer tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Show the log of directory changes (who, what, when), newest first.
    Audit(tokens::AuditArgs),
    /// Discover an address's settings as Outlook does and explain every step (needs no config
    /// file and no database). Exit codes: 0 settings found, 1 not found, 2 usage or
    /// configuration error.
    Probe(probe::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The probe is a client: it needs no config file and no database.
    let command = match cli.command {
        Command::Probe(args) => return runtime.block_on(probe::run(args)),
        command => command,
    };
    let config = match load_config(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    // `domain check` has exit codes of its own: 1 means findings, 2 a usage error.
    let command = match command {
        Command::Domain(admin::DomainCommand::Check(args)) => {
            return runtime.block_on(check::run(&config, args));
        }
        command => command,
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve => serve(config).await,
            Command::Domain(command) => admin::domain(&config, command).await,
            Command::Profile(command) => admin::profile(&config, command).await,
            Command::User(command) => admin::user(&config, command).await,
            Command::Dns(command) => dns::dns(&config, command).await,
            Command::Import(args) => transfer::import(&config, args).await,
            Command::Export(args) => transfer::export(&config, args).await,
            Command::Token(command) => tokens::token(&config, command).await,
            Command::Audit(args) => tokens::audit(&config, args).await,
            Command::Probe(_) => unreachable!("dispatched before the config is loaded"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // rustls warns once per handshake that names an IP address in SNI (health checks, scanners):
        // noise at that volume, so only its errors reach the default log.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error"));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match (format, terminal) {
        (LogFormat::Json, _) | (LogFormat::Auto, false) => builder.json().init(),
        (LogFormat::Text, _) | (LogFormat::Auto, true) => builder.with_ansi(terminal).init(),
    }
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::embedded_defaults()),
    }
}

/// Opens the directory named by the config, creating a SQLite file on first use.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database)
        .await
        .with_context(|| format!("cannot open the directory {}", redact(&config.database)))
}

/// The database URL without its password (in the user part or a `password=` parameter).
fn redact(url: &str) -> String {
    let (url, query) = url
        .split_once('?')
        .map_or((url, None), |(u, q)| (u, Some(q)));
    let mut redacted = redact_userinfo(url);
    if let Some(query) = query {
        let params: Vec<&str> = query
            .split('&')
            .map(|p| {
                if p.to_ascii_lowercase().starts_with("password=") {
                    "password=***"
                } else {
                    p
                }
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&params.join("&"));
    }
    redacted
}

fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _password)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(config = %config.origin(), hoster = %config.hoster, "starting");
    let store = open_store(&config).await?;
    bootstrap::prepare_directory(&config, &store).await?;
    let directory = LiveDirectory::load(store)
        .await
        .context("cannot load the directory")?;
    let refresher = directory.spawn_refresher(config.directory_poll);
    // Without a usable resolver configuration the service still runs; only the admin API's
    // live checks are off (503), and `domain check --dns` still works.
    let checker: Option<std::sync::Arc<dyn autodisco_server::DomainChecker>> =
        match check::ApiChecker::new(&config) {
            Ok(checker) => Some(std::sync::Arc::new(checker)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "the admin API's live checks are off");
                None
            }
        };
    let server = RunningServer::start_with_checker(&config, directory.clone(), checker).await?;
    tracing::info!(
        directory = ?directory.snapshot().counts(),
        "ready; add a customer domain with: autodisco domain add customer.example"
    );
    wait_for_signals(&server).await;
    tracing::info!("shutting down: finishing requests in flight");
    server.shutdown().await;
    refresher.abort();
    tracing::info!("stopped");
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signals(server: &RunningServer) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading configuration and certificates");
                server.reload().await;
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_server: &RunningServer) {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn log_format_is_a_global_flag() {
        let cli = Cli::try_parse_from(["autodisco", "serve", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        let cli = Cli::try_parse_from(["autodisco", "serve"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Auto);
        assert!(Cli::try_parse_from(["autodisco", "--log-format", "xml", "serve"]).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:secret@db.example/dir"),
            "postgres://app:***@db.example/dir"
        );
        assert_eq!(redact("sqlite://./a.sqlite"), "sqlite://./a.sqlite");
        assert_eq!(
            redact("postgres://u@h/d?sslmode=require&password=x"),
            "postgres://u@h/d?sslmode=require&password=***"
        );
    }
}
