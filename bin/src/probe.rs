//! `autodisco probe ADDRESS`: discovers an account's settings as Outlook does and explains every
//! step. The engine is `autodisco-client`; this module parses flags, asks for consent on the
//! terminal, shows progress, and prints the report.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use autodisco_client::{
    Client, ClientConfig, Consent, ConsentDecision, ConsentRequest, Credentials, Dialect,
    DnsServer, InFlight, Observer, Pin, TraceEntry, TrustedHosts, normalise_host, render,
};
use autodisco_proto::EmailAddress;
use clap::{Args, ValueEnum};

/// The environment variable the password is read from.
pub(crate) const PASSWORD_ENV: &str = "AUTODISCO_PASSWORD";
/// The environment variable that overrides the trust file's location.
pub(crate) const TRUST_FILE_ENV: &str = "AUTODISCO_TRUST_FILE";

/// Exit code: settings found.
const FOUND: u8 = 0;
/// Exit code: no settings found.
const NOT_FOUND: u8 = 1;
/// Exit code: usage or configuration error.
const USAGE: u8 = 2;

/// The flags of `autodisco probe`.
#[derive(Args, Debug)]
#[command(after_help = PROBE_AFTER_HELP)]
pub(crate) struct ProbeArgs {
    /// The email address to discover settings for.
    #[arg(value_name = "ADDRESS")]
    address: String,

    #[command(flatten)]
    net: NetArgs,

    /// Allow redirects to this host without asking. Repeatable.
    #[arg(long, value_name = "HOST")]
    trust: Vec<String>,

    /// Allow every redirect that needs consent, without asking (scripts).
    #[arg(long, short = 'y')]
    yes: bool,

    /// User name for HTTP Basic; the password comes from AUTODISCO_PASSWORD or a prompt.
    /// Credentials go only to trusted hosts over verified HTTPS, in answer to a challenge.
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// Print one JSON document (the trace and the settings) instead of text.
    #[arg(long)]
    json: bool,

    /// How long one request (DNS, connect, TLS, answer) may take: 10s, 500ms, 1.5s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, overrides_with = "step_timeout")]
    step_timeout: Duration,

    /// How long the whole discovery may take, not counting consent prompts.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, overrides_with = "timeout")]
    timeout: Duration,

    /// Do not ask the ActiveSync (mobilesync) question after finding the settings.
    #[arg(long)]
    no_activesync: bool,

    /// How to ask: pox (Outlook), soap (the EWS libraries), json (Autodiscover v2, current
    /// Outlook), autoconfig (Thunderbird, with the MX path), or all of them compared.
    #[arg(long, value_enum, default_value_t = DialectArg::Pox)]
    dialect: DialectArg,
}

/// How the probe and the checks reach the network: the DNS server, pinned names, extra CAs.
#[derive(Args, Debug)]
pub(crate) struct NetArgs {
    /// Ask this DNS server (IP:PORT) instead of the system's resolver.
    #[arg(long, value_name = "IP:PORT")]
    dns: Option<SocketAddr>,

    /// Pin a name as curl does: connections to HOST:PORT go to ADDR. ADDR may carry its own
    /// port (IP:PORT or [IPv6]:PORT). Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    resolve: Vec<String>,

    /// Also trust the CA certificates in this PEM file (a private CA). Repeatable.
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
}

impl NetArgs {
    /// Puts the DNS server, the pins and the extra CAs into `config`.
    pub(crate) fn apply(&self, config: &mut ClientConfig) -> anyhow::Result<()> {
        config.dns = self.dns.map_or(DnsServer::System, DnsServer::At);
        for pin in &self.resolve {
            config.pins.push(parse_pin(pin)?);
        }
        for path in &self.ca {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            config.extra_roots_pem.push(pem);
        }
        Ok(())
    }
}

/// The values of `--dialect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DialectArg {
    /// Outlook's POX AutoDiscover (autodiscover.xml).
    Pox,
    /// SOAP GetUserSettings (autodiscover.svc), as the EWS libraries ask.
    Soap,
    /// Autodiscover v2 JSON (autodiscover.json), then POX at the AutodiscoverV1 URL.
    #[value(alias = "v2")]
    Json,
    /// Mozilla autoconfig (config-v1.1.xml), as Thunderbird asks, with the MX path.
    Autoconfig,
    /// Every dialect at once, side by side, with their disagreements.
    All,
}

impl DialectArg {
    fn dialect(self) -> Option<Dialect> {
        match self {
            Self::Pox => Some(Dialect::Pox),
            Self::Soap => Some(Dialect::Soap),
            Self::Json => Some(Dialect::V2),
            Self::Autoconfig => Some(Dialect::Autoconfig),
            Self::All => None,
        }
    }
}

const PROBE_AFTER_HELP: &str = "\
Candidates, in Outlook's order: 1. POST https://DOMAIN/autodiscover/autodiscover.xml,
2. POST https://autodiscover.DOMAIN/..., 3. GET http://autodiscover.DOMAIN/... and its 302
(needs consent), 4. DNS SRV _autodiscover._tcp.DOMAIN (needs consent). They start staggered;
the result follows that priority.

Dialects (--dialect): pox as above. soap: POST GetUserSettings to the same candidates at
/autodiscover/autodiscover.svc (the step-3 redirect gives the host). json: GET
/autodiscover/autodiscover.json?Email=ADDRESS&Protocol=AutodiscoverV1 (and EWS) at
https://DOMAIN, then https://autodiscover.DOMAIN; then the POX request to the AutodiscoverV1
URL. autoconfig: https://autoconfig.DOMAIN/mail/config-v1.1.xml, then
https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml, the same over http://, then
autoconfig.MXBASE from the MX record; never with credentials. all: every dialect at once,
side by side, and where they disagree.

Consent: on a terminal you are asked (y = this time, a = always for this host, saved in the
trust file; AUTODISCO_TRUST_FILE overrides its location). Without a terminal, redirects that
need consent are refused unless --yes or --trust HOST allows them.

Exit codes: 0 settings found (with all: by any dialect), 1 not found, 2 usage or configuration
error.";

/// Runs the probe and maps the outcome to the exit code.
pub(crate) async fn run(args: ProbeArgs) -> ExitCode {
    match probe(args).await {
        Ok(true) => ExitCode::from(FOUND),
        Ok(false) => ExitCode::from(NOT_FOUND),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(USAGE)
        }
    }
}

/// `Ok(found)`, or a usage or configuration error.
async fn probe(args: ProbeArgs) -> anyhow::Result<bool> {
    let address = EmailAddress::parse(&args.address)
        .with_context(|| format!("{:?} is not an email address", args.address))?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut config = ClientConfig {
        step_timeout: args.step_timeout,
        total_timeout: args.timeout,
        ask_activesync: !args.no_activesync,
        ..ClientConfig::default()
    };
    args.net.apply(&mut config)?;
    if let Some(user) = &args.user {
        let password = match std::env::var(PASSWORD_ENV) {
            Ok(password) => password,
            Err(_) if interactive => rpassword::prompt_password(format!("Password for {user}: "))
                .context("cannot read the password")?,
            Err(_) => bail!("--user needs a password: set {PASSWORD_ENV} or run on a terminal"),
        };
        config.credentials = Some(Credentials {
            user: user.clone(),
            password,
        });
    }
    let client = Client::new(config).context("cannot set up the probe")?;
    let progress = Arc::new(Progress::new(std::io::stderr().is_terminal() && !args.json));
    let consent = CliConsent {
        allowed: Mutex::new(BTreeSet::new()),
        prompting: Mutex::new(()),
        yes: args.yes,
        trusted: TrustedHosts::new(&args.trust),
        trust_file: TrustFile::locate(),
        interactive,
        progress: progress.clone(),
    };
    let ticker = progress.clone().spawn_ticker();
    let observer = Some(progress.clone() as Arc<dyn Observer>);
    let Some(dialect) = args.dialect.dialect() else {
        let result = client
            .discover_all(&address, Arc::new(consent), observer)
            .await;
        ticker.abort();
        progress.clear();
        let comparison = result.context("the address cannot be probed")?;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &comparison)
                .context("cannot write the report")?;
            writeln!(out)?;
        } else {
            render::comparison(&mut out, &comparison, &client.config().dns)?;
        }
        return Ok(comparison.found());
    };
    let result = client
        .discover_in(dialect, &address, Arc::new(consent), observer)
        .await;
    ticker.abort();
    progress.clear();
    let report = result.context("the address cannot be probed")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).context("cannot write the report")?;
        writeln!(out)?;
    } else {
        render::report(&mut out, &report, &client.config().dns)?;
    }
    Ok(report.found)
}

/// `10s`, `500ms`, `1.5s`, `2m`, or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (10s, 500ms, 1.5s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    if !(seconds > 0.0 && seconds < 86_400.0) {
        return Err(format!(
            "{text:?} must be more than zero and less than a day"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `HOST:PORT:ADDR`, ADDR being `IP`, `[IPv6]`, `IP:PORT` or `[IPv6]:PORT`.
fn parse_pin(text: &str) -> anyhow::Result<Pin> {
    let usage = || format!("--resolve {text:?}: expected HOST:PORT:ADDR");
    let (host, rest) = text.split_once(':').with_context(usage)?;
    let (port, address) = rest.split_once(':').with_context(usage)?;
    let port: u16 = port.parse().with_context(usage)?;
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    let address = match bare.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => address
            .parse::<SocketAddr>()
            .with_context(|| format!("--resolve {text:?}: {address:?} is not an address"))?,
    };
    if host.is_empty() {
        bail!("{}", usage());
    }
    Ok(Pin {
        host: host.to_owned(),
        port,
        address,
    })
}

/// The hosts the user allowed "always": one per line in a small file under the user's config
/// folder (`~/.config/autodisco/trusted-hosts` on Linux).
struct TrustFile {
    path: Option<PathBuf>,
}

impl TrustFile {
    fn locate() -> Self {
        let path = std::env::var_os(TRUST_FILE_ENV)
            .map(PathBuf::from)
            .or_else(|| {
                use etcetera::BaseStrategy;
                etcetera::choose_base_strategy()
                    .ok()
                    .map(|s| s.config_dir().join("autodisco").join("trusted-hosts"))
            });
        Self { path }
    }

    fn hosts(&self) -> BTreeSet<String> {
        let Some(path) = &self.path else {
            return BTreeSet::new();
        };
        let Ok(file) = std::fs::File::open(path) else {
            return BTreeSet::new();
        };
        std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .map(|line| normalise_host(&line))
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    }

    fn contains(&self, host: &str) -> bool {
        self.hosts().contains(&normalise_host(host))
    }

    fn add(&self, host: &str) -> std::io::Result<PathBuf> {
        let path = self
            .path
            .clone()
            .ok_or_else(|| std::io::Error::other("no config folder for the trust file"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        writeln!(file, "{}", normalise_host(host))?;
        Ok(path)
    }
}

/// Consent from flags, the trust file, or a prompt on the terminal.
struct CliConsent {
    /// Hosts allowed "this time" at the prompt: with `--dialect all`, every dialect's
    /// discovery is one probe, asked once.
    allowed: Mutex<BTreeSet<String>>,
    /// One prompt at a time, also across concurrent dialects.
    prompting: Mutex<()>,
    yes: bool,
    trusted: TrustedHosts,
    trust_file: TrustFile,
    interactive: bool,
    progress: Arc<Progress>,
}

impl Consent for CliConsent {
    fn decide(&self, request: &ConsentRequest) -> ConsentDecision {
        let allow = |how: String| ConsentDecision::Allow { how };
        if self.yes {
            return allow("--yes".to_owned());
        }
        if self.trusted.contains(&request.host) {
            return allow(format!("--trust {}", request.host));
        }
        if self.trust_file.contains(&request.host) {
            let file = self
                .trust_file
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string());
            return allow(format!("{} is trusted in {file}", request.host));
        }
        if !self.interactive {
            return ConsentDecision::Deny {
                why: format!(
                    "no terminal to ask, and neither --yes nor --trust {} was given",
                    request.host
                ),
            };
        }
        let _turn = self.prompting.lock().unwrap_or_else(|e| e.into_inner());
        let host = normalise_host(&request.host);
        if self
            .allowed
            .lock()
            .map(|a| a.contains(&host))
            .unwrap_or(false)
        {
            return allow("yes at the prompt, earlier in this probe".to_owned());
        }
        self.progress.pause(true);
        let decision = self.prompt(request);
        self.progress.pause(false);
        if matches!(decision, ConsentDecision::Allow { .. })
            && let Ok(mut allowed) = self.allowed.lock()
        {
            allowed.insert(host);
        }
        decision
    }
}

impl CliConsent {
    fn prompt(&self, request: &ConsentRequest) -> ConsentDecision {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}", render::consent_prompt(request));
        let _ = err.flush();
        drop(err);
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            answer.clear();
        }
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => ConsentDecision::Allow {
                how: "yes at the prompt".to_owned(),
            },
            "a" | "always" => match self.trust_file.add(&request.host) {
                Ok(path) => ConsentDecision::Allow {
                    how: format!("always for {}, saved in {}", request.host, path.display()),
                },
                Err(e) => {
                    eprintln!("warning: cannot save the trust file: {e}");
                    ConsentDecision::Allow {
                        how: "always at the prompt, but the trust file could not be written"
                            .to_owned(),
                    }
                }
            },
            _ => ConsentDecision::Deny {
                why: "refused at the prompt".to_owned(),
            },
        }
    }
}

/// A status line on the terminal showing what the probe is waiting for.
struct Progress {
    enabled: bool,
    started: Instant,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    in_flight: Vec<InFlight>,
    done: usize,
    paused: bool,
    shown: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            started: Instant::now(),
            state: Mutex::new(ProgressState::default()),
        }
    }

    fn spawn_ticker(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if !self.enabled {
                return;
            }
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                self.draw();
            }
        })
    }

    fn draw(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.paused {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let line = render::progress_line(elapsed, state.done, &state.in_flight, terminal_width());
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
        state.shown = true;
    }

    fn pause(&self, paused: bool) {
        if paused {
            self.clear();
        }
        if let Ok(mut state) = self.state.lock() {
            state.paused = paused;
        }
    }

    fn clear(&self) {
        if let Ok(mut state) = self.state.lock()
            && state.shown
        {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            state.shown = false;
        }
    }
}

impl Observer for Progress {
    fn entry(&self, _entry: &TraceEntry) {
        if let Ok(mut state) = self.state.lock() {
            state.done += 1;
        }
    }

    fn in_flight(&self, requests: &[InFlight]) {
        if let Ok(mut state) = self.state.lock() {
            state.in_flight = requests.to_vec();
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn pins() {
        let pin = parse_pin("autodiscover.hoster.example:443:127.0.0.2").unwrap();
        assert_eq!(pin.host, "autodiscover.hoster.example");
        assert_eq!(pin.address, "127.0.0.2:443".parse().unwrap());
        let pin = parse_pin("a.example:443:127.0.0.2:8443").unwrap();
        assert_eq!(pin.address, "127.0.0.2:8443".parse().unwrap());
        let pin = parse_pin("a.example:443:[::1]").unwrap();
        assert_eq!(pin.address, "[::1]:443".parse().unwrap());
        let pin = parse_pin("a.example:443:[::1]:8443").unwrap();
        assert_eq!(pin.address, "[::1]:8443".parse().unwrap());
        assert!(parse_pin("a.example:443").is_err());
        assert!(parse_pin("a.example:x:127.0.0.1").is_err());
        assert!(parse_pin("a.example:443:nowhere").is_err());
    }
}
