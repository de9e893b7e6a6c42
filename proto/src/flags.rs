//! The command-line flags of the credentials ([`crate::auth`]), declared once: `--token-file`
//! ([`TokenFile`], which `coordinator serve` takes) and `--tls-ca` beside it ([`ClientFlags`],
//! which every client takes: the coordinator's commands that call the API, and the worker).
//! Flattened into a command's arguments with `#[command(flatten)]`.

use std::path::PathBuf;

use crate::auth::{AuthError, ClientOptions, TLS_CA_ENV, TOKEN_FILE_ENV};

/// `--token-file PATH`, or the file named by `COORDINATOR_TOKEN_FILE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TokenFile {
    /// File holding the coordinator's shared token, which every client sends (default: the
    /// token in COORDINATOR_TOKEN, if set). The token itself is never a command-line argument.
    #[arg(
        long,
        value_name = "PATH",
        env = TOKEN_FILE_ENV,
        hide_env_values = true
    )]
    pub token_file: Option<PathBuf>,
}

/// How a client authenticates to the coordinator and verifies it: `--token-file` and
/// `--tls-ca`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientFlags {
    #[command(flatten)]
    pub token: TokenFile,
    /// PEM CA certificate to verify an https:// coordinator against.
    #[arg(long, value_name = "PATH", env = TLS_CA_ENV)]
    pub tls_ca: Option<PathBuf>,
}

impl ClientFlags {
    /// Reads the token and the CA certificate file ([`ClientOptions::load`]); returns the
    /// warnings worth showing.
    pub fn load(&self) -> Result<(ClientOptions, Vec<String>), AuthError> {
        ClientOptions::load(self.token.token_file.as_deref(), self.tls_ca.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ClientFlags,
    }

    #[test]
    fn the_flags_name_the_files() {
        let cli = Cli::try_parse_from(["x", "--token-file", "t", "--tls-ca", "ca.pem"]).unwrap();
        assert_eq!(cli.flags.token.token_file, Some(PathBuf::from("t")));
        assert_eq!(cli.flags.tls_ca, Some(PathBuf::from("ca.pem")));
        // The token itself is no flag.
        assert!(Cli::try_parse_from(["x", "--token", "secret"]).is_err());
    }
}
