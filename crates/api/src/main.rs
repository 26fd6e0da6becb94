//! `widget-sessions`: the travel-rule widget-session service.
//!
//! `cargo run` (no arguments) serves with zero configuration: in-memory store, in-process
//! Transak emulator, and a demo application whose credentials are printed once.

use std::process::ExitCode;

use api::admin::{self, Action};
use api::config::{Config, VARIABLES};
use api::observability::{LogFormat, init_tracing};
use api::{client, server};
use clap::{Parser, Subcommand};

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
        /// The application's API key.
        #[arg(long, env = "WIDGET_SESSIONS_API_KEY")]
        api_key: String,
        /// The application's API secret.
        #[arg(long, env = "WIDGET_SESSIONS_API_SECRET", hide_env_values = true)]
        api_secret: String,
        /// The service's base URL.
        #[arg(
            long,
            env = "WIDGET_SESSIONS_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
        /// Print the signed request as a curl command instead of sending it.
        #[arg(long)]
        print: bool,
    },
    /// Manage the applications stored in Postgres (needs DATABASE_URL and WIDGET_SESSIONS_SECRET_KEY).
    Apps {
        #[command(subcommand)]
        action: AppsCommand,
    },
    /// List the configuration variables with their defaults.
    Env,
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
        /// Use this API secret (default: generated).
        #[arg(long)]
        api_secret: Option<String>,
    },
    /// List applications.
    List,
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

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Env => {
            for (name, meaning, default) in VARIABLES {
                println!("{name:<42} {meaning} (default: {default})");
            }
            ExitCode::SUCCESS
        }
        Command::Request {
            method,
            path,
            body,
            api_key,
            api_secret,
            url,
            print,
        } => {
            let req = client::sign(
                &url,
                &method,
                &path,
                body.as_deref().unwrap_or(""),
                &api_key,
                &api_secret,
            );
            if print {
                println!("{}", client::curl_command(&req));
                return ExitCode::SUCCESS;
            }
            match client::send(&req).await {
                Ok(0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("could not reach {url}: {e}. Is the service running (cargo run)?");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let config = match Config::from_env() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(config.log_format);
            match server::serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "widget-sessions stopped");
                    eprintln!("widget-sessions: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Apps { action } => {
            let config = match Config::from_env() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(LogFormat::Pretty);
            let action = match action {
                AppsCommand::Create {
                    name,
                    api_key,
                    api_secret,
                } => Action::Create {
                    name,
                    api_key,
                    api_secret,
                },
                AppsCommand::List => Action::List,
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
    }
}
