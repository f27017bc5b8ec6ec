//! `autodisco token` and `autodisco audit`: the admin API's tokens and the log of changes.

use autodisco_directory::{Actor, TokenScope, format_time};
use autodisco_server::config::Config;
use clap::{Args, Subcommand, ValueEnum};

use crate::open_store;

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token for the admin API. The token is printed once, alone on the last line;
    /// only its hash is stored, so it cannot be shown again.
    Create {
        /// The holder's name (a control panel, a script), recorded as the actor of its changes.
        name: String,
        /// read: GET requests only; write: changes too.
        #[arg(long, value_enum)]
        scope: Scope,
    },
    /// List tokens (names, scopes, when created and revoked; never the tokens).
    List,
    /// Revoke a token: it is refused from the next request on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Scope {
    Read,
    Write,
}

impl From<Scope> for TokenScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Read => TokenScope::Read,
            Scope::Write => TokenScope::Write,
        }
    }
}

#[derive(Args)]
pub(crate) struct AuditArgs {
    /// How many entries, newest first (at most 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// Print the entries as JSON lines, with the objects before and after each change.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match command {
        TokenCommand::Create { name, scope } => {
            let secret = store.create_token(&Actor::Cli, &name, scope.into()).await?;
            println!(
                "token {name} created with scope {}; it is shown only now:",
                TokenScope::from(scope)
            );
            println!("{secret}");
        }
        TokenCommand::List => {
            for token in store.list_tokens().await? {
                let state = match token.revoked {
                    Some(at) => format!("revoked {}", format_time(at)),
                    None => "active".to_owned(),
                };
                println!(
                    "{}\t{}\tcreated {}\t{state}",
                    token.name,
                    token.scope,
                    format_time(token.created)
                );
            }
        }
        TokenCommand::Revoke { name } => {
            store.revoke_token(&Actor::Cli, &name).await?;
            println!("token {name} revoked");
        }
    }
    Ok(())
}

pub(crate) async fn audit(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    for entry in store.audit_log(args.limit, None).await? {
        if args.json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            // The object is a name the store validated; the actor is `cli`, `config` or a
            // validated token name: nothing here can carry control characters.
            println!(
                "{}\t{}\t{}\t{}",
                format_time(entry.time),
                entry.actor,
                entry.action,
                entry.object
            );
        }
    }
    Ok(())
}
