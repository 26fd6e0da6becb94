//! `widget-sessions`: the travel-rule widget-session service.
//!
//! `cargo run` (no arguments) serves with zero configuration: in-memory store, in-process
//! Transak emulator, and a demo application whose credentials are printed once.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret as _;
use server::admin::{self, Action};
use server::application::{self, Application};
use server::compose::{self, Overrides};
use server::config::variables::{
    WIDGET_SESSIONS_API_KEY, WIDGET_SESSIONS_API_SECRET, WIDGET_SESSIONS_URL,
};
use server::config::{self, Config};
use server::request_command as request;
use server::telemetry::{LogFormat, init_tracing};

#[derive(Parser)]
#[command(
    name = "widget-sessions",
    version,
    about = "Travel-rule widget sessions: short-lived, single-use links to the Transak widget.",
    after_help = "Configuration is read from the environment; run `widget-sessions env` to list the variables."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// Who calls the service, and where: the subcommands that act as a partner application.
#[derive(clap::Args)]
struct Caller {
    /// The application's API key.
    #[arg(long, env = WIDGET_SESSIONS_API_KEY.name())]
    api_key: String,
    /// The application's API secret [default: WIDGET_SESSIONS_API_SECRET, or the file
    /// WIDGET_SESSIONS_API_SECRET_FILE names].
    #[arg(long)]
    api_secret: Option<String>,
    /// The service's base URL.
    #[arg(
        long,
        env = WIDGET_SESSIONS_URL.name(),
        default_value_t = WIDGET_SESSIONS_URL.default_value()
    )]
    url: String,
}

impl Caller {
    /// The API key, the API secret (from the command line, or from the environment) and the
    /// service's URL.
    fn resolve(self) -> Result<(String, String, String), String> {
        let api_secret = match self.api_secret {
            Some(secret) => secret,
            None => match config::api_secret_from_vars(&std::env::vars().collect()) {
                Ok(Some(secret)) => secret.expose_secret().to_string(),
                Ok(None) => {
                    return Err(format!(
                        "the API secret is missing: pass --api-secret, or set {0} or {0}_FILE",
                        WIDGET_SESSIONS_API_SECRET.name()
                    ));
                }
                Err(e) => return Err(e.to_string()),
            },
        };
        Ok((self.api_key, api_secret, self.url))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Sign a request with an application's credentials and send it (or print it as curl).
    Request {
        /// HTTP method, e.g. POST.
        method: String,
        /// Path below /api/v1, with its query, e.g. /travel-rule/widget-sessions.
        path: String,
        /// JSON body.
        body: Option<String>,
        #[command(flatten)]
        caller: Caller,
        /// Print the signed request as a curl command instead of sending it.
        #[arg(long)]
        print: bool,
    },
    /// Register a temporary webhook endpoint on this machine, print each event as it arrives
    /// (signature verified), optionally forward it to a local URL; Ctrl-C deletes the endpoint.
    Listen {
        /// Forward each verified delivery (headers and body as received) to this URL.
        #[arg(long)]
        forward_to: Option<String>,
        /// Only these event types (comma-separated), e.g. session.consumed,session.order_updated.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// The local address to receive deliveries on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// The URL the service should POST to, when it cannot reach the local address directly.
        #[arg(long)]
        public_url: Option<String>,
        /// Print each event's JSON on one line instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        caller: Caller,
    },
    /// Manage the applications stored in Postgres (needs DATABASE_URL and WIDGET_SESSIONS_SECRET_KEY).
    Apps {
        #[command(subcommand)]
        action: AppsCommand,
    },
    /// Inspect applications' webhook endpoints and deliveries in Postgres (needs DATABASE_URL and WIDGET_SESSIONS_SECRET_KEY).
    Webhooks {
        #[command(subcommand)]
        action: WebhooksCommand,
    },
    /// Read travel-rule compliance records in Postgres (needs DATABASE_URL and WIDGET_SESSIONS_SECRET_KEY).
    TravelRule {
        #[command(subcommand)]
        action: TravelRuleCommand,
    },
    /// Reseal every sealed value (applications' secrets, webhook endpoints' secrets, the
    /// Transak access token) under the current WIDGET_SESSIONS_SECRET_KEY, after a key rotation;
    /// prints how many it changed.
    Reseal {
        #[command(flatten)]
        options: ResealOptions,
    },
    /// Check the deployment and print every check in full: the database, its migrations, the
    /// at-rest keys over every sealed value (naming the records they do not open), the stored
    /// Transak access token. Exits non-zero when a check fails.
    Doctor,
    /// Apply the database migrations and exit (run before rolling out a new version).
    Migrate,
    /// List the configuration variables with their defaults.
    Env {
        /// Print README's Markdown table instead.
        #[arg(long)]
        markdown: bool,
    },
}

/// The options of `reseal`.
#[derive(clap::Args)]
struct ResealOptions {
    /// First forget the stored Transak access tokens that no configured key opens (their key
    /// is lost): the next instance that needs one obtains a new one, which invalidates the old
    /// one wherever it is still used.
    #[arg(long)]
    forget_unopenable_tokens: bool,
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// List an application's webhook endpoints.
    List {
        /// The application's name.
        app: String,
    },
    /// Give an endpoint a new signing secret at once (the old one signs no further delivery);
    /// prints it once. For a lost at-rest key or a leaked secret.
    ReplaceSecret {
        /// The application's name.
        app: String,
        /// The endpoint id (`we_…`), as `webhooks list` shows it.
        endpoint: String,
    },
    /// Deliver an event again where its delivery FAILED (to every endpoint it failed for,
    /// or to one).
    Redeliver {
        /// The event id (`evt_…`), as the events endpoint and the webhook-id header show it.
        event: String,
        /// Only to this endpoint (`we_…`).
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// List the latest order webhooks from Transak that matched no opened session, newest first.
    UnmatchedOrders {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum TravelRuleCommand {
    /// Print a session's compliance record as JSON: every declaration version, the verified
    /// ownership proof (address, method, the signed message, the signature), refused proofs.
    Record {
        /// The application's name.
        app: String,
        /// The session id.
        session: String,
    },
}

#[derive(Subcommand)]
enum AppsCommand {
    /// Create an application; prints its credentials once.
    Create {
        /// A unique name.
        name: String,
        /// Use this API key (default: generated).
        #[arg(long)]
        api_key: Option<String>,
        /// Use this API secret (default: generated). Prefer --api-secret-stdin: a command
        /// line is visible to other users of the machine.
        #[arg(long, conflicts_with = "api_secret_stdin")]
        api_secret: Option<String>,
        /// Read the API secret from standard input (one line).
        #[arg(long)]
        api_secret_stdin: bool,
        /// When its customers must prove they control a self-hosted wallet of their own:
        /// always, or only when a session is created with forceVerifyOwnership.
        #[arg(long, value_enum, default_value_t = OwnershipProof::WhenForced)]
        ownership_proof: OwnershipProof,
        /// Whether its launch links ask the customer the travel-rule questions (and for the
        /// ownership proof) before they open the widget.
        #[arg(long, value_enum, default_value_t = OnOff::Off)]
        hosted_travel_rule: OnOff,
        /// The origins allowed to frame the hosted travel-rule page, separated by commas
        /// (e.g. https://partner.example); default any.
        #[arg(long, value_parser = parse_frame_ancestors)]
        frame_ancestors: Option<domain::FrameAncestors>,
    },
    /// Change an application's settings (sessions created before keep theirs).
    Update {
        /// The application's name.
        name: String,
        /// When its customers must prove they control a self-hosted wallet of their own.
        #[arg(long, value_enum)]
        ownership_proof: Option<OwnershipProof>,
        /// Whether its launch links ask the customer the travel-rule questions first.
        #[arg(long, value_enum)]
        hosted_travel_rule: Option<OnOff>,
        /// The origins allowed to frame the hosted travel-rule page, separated by commas;
        /// an empty value allows any origin.
        #[arg(long, value_parser = parse_frame_ancestors)]
        frame_ancestors: Option<domain::FrameAncestors>,
    },
    /// List applications.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// The same as `widget-sessions reseal`: reseal every sealed value under the current
    /// WIDGET_SESSIONS_SECRET_KEY.
    Reseal {
        #[command(flatten)]
        options: ResealOptions,
    },
    /// Replace an application's credentials; prints the new ones once.
    Rotate {
        /// The application's name.
        name: String,
    },
    /// Refuse an application's requests.
    Disable {
        /// The application's name.
        name: String,
    },
    /// Accept an application's requests again.
    Enable {
        /// The application's name.
        name: String,
    },
}

/// `--ownership-proof`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OwnershipProof {
    /// For every self-hosted wallet of the customer's own.
    Always,
    /// Only when the session was created with forceVerifyOwnership.
    WhenForced,
}

/// `--hosted-travel-rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// `--frame-ancestors`: origins separated by commas.
fn parse_frame_ancestors(s: &str) -> Result<domain::FrameAncestors, String> {
    domain::FrameAncestors::parse(s).map_err(|e| e.to_string())
}

impl From<OwnershipProof> for domain::ProofPolicy {
    fn from(o: OwnershipProof) -> Self {
        match o {
            OwnershipProof::Always => domain::ProofPolicy::Always,
            OwnershipProof::WhenForced => domain::ProofPolicy::WhenForced,
        }
    }
}

/// Writes to standard output; a closed pipe (`… | head`) ends the output quietly.
/// mimalloc instead of the system allocator: allocation and freeing are a tenth of the
/// service's CPU on the hot path with glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command.unwrap_or(Command::Serve)))
}

fn load_config() -> Result<Config, ExitCode> {
    Config::from_env().map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Env { markdown } => {
            print(&if markdown {
                config::markdown_table()
            } else {
                config::listing()
            });
            ExitCode::SUCCESS
        }
        Command::Request {
            method,
            path,
            body,
            caller,
            print: print_only,
        } => {
            let (api_key, api_secret, url) = match caller.resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            if print_only {
                let req = request::sign(
                    &url,
                    &method,
                    &path,
                    body.as_deref().unwrap_or(""),
                    &api_key,
                    &api_secret,
                );
                print(&format!("{}\n", request::curl_command(&req)));
                return ExitCode::SUCCESS;
            }
            let mut out = std::io::stdout().lock();
            match request::send(
                &url,
                &api_key,
                &api_secret,
                &method,
                &path,
                body.as_deref(),
                &mut out,
            )
            .await
            {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Listen {
            forward_to,
            events,
            listen,
            public_url,
            json,
            caller,
        } => {
            let (api_key, api_secret, url) = match caller.resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let options = server::listen::ListenOptions {
                service_url: url,
                api_key,
                api_secret,
                listen,
                public_url,
                event_types: events,
                forward_to,
                json,
            };
            let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
            let stop = server::listen::stop_signal();
            match server::listen::run(options, out, stop).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate => {
            let url = match config::process_vars().and_then(|v| config::database_url_from_vars(&v))
            {
                Ok(url) => url,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let _logs = init_tracing(LogFormat::Pretty, None);
            match compose::migrate(url.as_ref()).await {
                Ok(applied) if applied.is_empty() => {
                    println!("the database is up to date");
                    ExitCode::SUCCESS
                }
                Ok(applied) => {
                    println!("applied migrations {applied:?}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("widget-sessions migrate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            // Dropped last, after the service stopped: flushes the spans still buffered.
            let _tracing = match init_tracing(config.log_format, config.traces.as_ref()) {
                Ok(guard) => guard,
                Err(e) => {
                    eprintln!("widget-sessions: {e}");
                    return ExitCode::from(2);
                }
            };
            match Application::build(config, Overrides::default()).await {
                Ok(app) => {
                    app.run_until_stopped(application::shutdown_signal()).await;
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "widget-sessions could not start");
                    eprintln!("widget-sessions: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Reseal { options } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _logs = init_tracing(LogFormat::Pretty, None);
            let action = Action::Reseal {
                forget_unopenable_tokens: options.forget_unopenable_tokens,
            };
            match admin::run(&config, action).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("widget-sessions reseal: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Doctor => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _logs = init_tracing(LogFormat::Pretty, None);
            match server::doctor::run(&config).await {
                Ok(report) => {
                    print(&report.text());
                    if report.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("widget-sessions doctor: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Apps { action } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _logs = init_tracing(LogFormat::Pretty, None);
            let action = match action {
                AppsCommand::Create {
                    name,
                    api_key,
                    api_secret,
                    api_secret_stdin,
                    ownership_proof,
                    hosted_travel_rule,
                    frame_ancestors,
                } => {
                    let api_secret = if api_secret_stdin {
                        let mut line = String::new();
                        if let Err(e) = std::io::stdin().read_line(&mut line) {
                            eprintln!(
                                "widget-sessions apps: cannot read the secret from standard input: {e}"
                            );
                            return ExitCode::FAILURE;
                        }
                        Some(line.trim_end_matches(['\r', '\n']).to_string())
                    } else {
                        api_secret
                    };
                    Action::Create {
                        name,
                        api_key,
                        api_secret,
                        settings: ports::ApplicationSettings {
                            proof_policy: ownership_proof.into(),
                            hosted: domain::HostedStep {
                                enabled: hosted_travel_rule == OnOff::On,
                                frame_ancestors: frame_ancestors.unwrap_or_default(),
                            },
                        },
                    }
                }
                AppsCommand::List { json } => Action::List { json },
                AppsCommand::Reseal { options } => Action::Reseal {
                    forget_unopenable_tokens: options.forget_unopenable_tokens,
                },
                AppsCommand::Update {
                    name,
                    ownership_proof,
                    hosted_travel_rule,
                    frame_ancestors,
                } => Action::Update {
                    name,
                    proof_policy: ownership_proof.map(Into::into),
                    hosted_travel_rule: hosted_travel_rule.map(|h| h == OnOff::On),
                    frame_ancestors,
                },
                AppsCommand::Rotate { name } => Action::Rotate { name },
                AppsCommand::Disable { name } => Action::Disable { name },
                AppsCommand::Enable { name } => Action::Enable { name },
            };
            match admin::run(&config, action).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("widget-sessions apps: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Webhooks { action } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _logs = init_tracing(LogFormat::Pretty, None);
            let action = match action {
                WebhooksCommand::List { app } => Action::WebhookEndpoints { app },
                WebhooksCommand::Redeliver { event, endpoint } => {
                    Action::Redeliver { event, endpoint }
                }
                WebhooksCommand::UnmatchedOrders { limit } => Action::UnmatchedOrders { limit },
                WebhooksCommand::ReplaceSecret { app, endpoint } => {
                    Action::ReplaceEndpointSecret { app, endpoint }
                }
            };
            match admin::run(&config, action).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("widget-sessions webhooks: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::TravelRule { action } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _logs = init_tracing(LogFormat::Pretty, None);
            let TravelRuleCommand::Record { app, session } = action;
            match admin::run(&config, Action::ComplianceRecord { app, session }).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("widget-sessions travel-rule: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// The variables the command line reads are in the one list of variables, as read by
    /// the subcommands that act as a partner application.
    #[test]
    fn every_variable_of_the_command_line_is_listed() {
        let cli = Cli::command();
        let mut names = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                if let Some(env) = arg.get_env() {
                    names.push(env.to_string_lossy().into_owned());
                }
            }
        }
        assert!(names.contains(&"WIDGET_SESSIONS_API_KEY".to_string()));
        assert!(names.contains(&"WIDGET_SESSIONS_URL".to_string()));
        for name in names {
            assert!(
                config::VARIABLES
                    .iter()
                    .map(|v| v.describe())
                    .any(|v| v.name == name && v.scope == config::setting::Scope::Caller),
                "{name} is read by the command line but not listed for it"
            );
        }
    }
}
