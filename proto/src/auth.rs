//! Who may call the API, and over what: the shared bearer token and the TLS settings of
//! clients (the coordinator's CLI, workers, tests).
//!
//! A coordinator configured with a token requires `authorization: Bearer <token>` on every
//! call of `lottery.v1.Coordinator` (the gRPC health service stays open for probes) and
//! answers UNAUTHENTICATED otherwise. Clients read the token from a file (`--token-file`,
//! or the file named by `COORDINATOR_TOKEN_FILE`) or from `COORDINATOR_TOKEN`; never from a
//! command-line argument, which other users of the machine could read. With TLS the
//! coordinator's URL is `https://...` and the client verifies the server against a PEM CA
//! certificate (`--tls-ca`); this build has no system root certificates.
//!
//! The token never appears in `Debug` output, logs or error messages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::v1::coordinator_client::CoordinatorClient;

/// The environment variable holding the token itself.
pub const TOKEN_ENV: &str = "COORDINATOR_TOKEN";
/// The environment variable naming the token file (what `--token-file` defaults to).
pub const TOKEN_FILE_ENV: &str = "COORDINATOR_TOKEN_FILE";
/// The environment variable naming the CA certificate (what `--tls-ca` defaults to).
pub const TLS_CA_ENV: &str = "COORDINATOR_TLS_CA";
/// The metadata key carrying the token.
pub const AUTHORIZATION: &str = "authorization";

/// A channel that adds the token (when there is one) to every call.
pub type AuthChannel = InterceptedService<Channel, BearerInterceptor>;
/// A coordinator client that sends the token.
pub type AuthClient = CoordinatorClient<AuthChannel>;

/// Why a token, a certificate or a coordinator address cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the token file {path}: {source}")]
    ReadToken {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token {from} is empty")]
    EmptyToken { from: String },
    #[error(
        "the token {from} holds a character other than visible ASCII (no spaces or control \
         characters inside the token)"
    )]
    BadToken { from: String },
    #[error("cannot read {what} {path}: {source}")]
    ReadPem {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM {what}")]
    NoPem { what: &'static str, path: PathBuf },
    #[error("invalid coordinator url {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error(
        "the coordinator url {url} is https:// but no CA certificate was given: pass --tls-ca \
         (or set {TLS_CA_ENV}) with the PEM certificate that signed the coordinator's"
    )]
    HttpsWithoutCa { url: String },
    #[error(
        "a CA certificate was given (--tls-ca) but the coordinator url {url} is not https://: \
         the connection would not be encrypted"
    )]
    CaWithoutHttps { url: String },
    #[error("tls settings for {url}: {source}")]
    Tls {
        url: String,
        source: tonic::transport::Error,
    },
}

/// The shared secret of a coordinator and its clients. `Debug` never shows it.
#[derive(Clone)]
pub struct Token {
    secret: Arc<str>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from text, `from` naming where it came from in errors (never the text itself).
    /// Surrounding whitespace (a file's trailing newline) is dropped; the rest must be
    /// non-empty visible ASCII, as it travels in an HTTP/2 header.
    pub fn new(text: &str, from: &str) -> Result<Token, AuthError> {
        let secret = text.trim();
        if secret.is_empty() {
            return Err(AuthError::EmptyToken {
                from: from.to_string(),
            });
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthError::BadToken {
                from: from.to_string(),
            });
        }
        Ok(Token {
            secret: Arc::from(secret),
        })
    }

    /// Reads a token file (see [`Token::new`]).
    pub fn from_file(path: &Path) -> Result<Token, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadToken {
            path: path.to_path_buf(),
            source,
        })?;
        Token::new(&text, &format!("in {}", path.display()))
    }

    /// A fresh random token (64 hex digits from the operating system's random source), for
    /// an embedded coordinator and its in-process clients.
    pub fn generate() -> Token {
        let mut bytes = [0u8; 32];
        let from_os = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .is_ok();
        if !from_os {
            // No /dev/urandom: std's per-process random hash keys, mixed with the time.
            use std::hash::{BuildHasher, Hasher};
            for chunk in bytes.chunks_mut(8) {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
            }
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Token {
            secret: Arc::from(hex.as_str()),
        }
    }

    /// The `authorization` metadata value, `Bearer <token>`, marked sensitive (kept out of
    /// HPACK tables and debug output).
    pub fn header_value(&self) -> AsciiMetadataValue {
        let mut value = AsciiMetadataValue::try_from(format!("Bearer {}", self.secret))
            .expect("a token is visible ASCII");
        value.set_sensitive(true);
        value
    }

    /// Whether an `authorization` header value is `Bearer <this token>`, in time independent
    /// of where the two differ.
    pub fn verify(&self, header: Option<&[u8]>) -> bool {
        let Some(header) = header else {
            return false;
        };
        let Some(given) = strip_bearer(header) else {
            return false;
        };
        bool::from(given.ct_eq(self.secret.as_bytes()))
    }
}

/// The credentials of `Bearer <credentials>` (the scheme is case-insensitive).
fn strip_bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// Where a token comes from: `file` when given, else the token in [`TOKEN_ENV`]; `None`
/// when neither is set. A set but empty variable is an error, not "no token": a typo must
/// not turn authentication off. The second value is a warning worth showing, if any (a
/// token file that others can read).
pub fn load_token(file: Option<&Path>) -> Result<(Option<Token>, Option<String>), AuthError> {
    if let Some(path) = file {
        let token = Token::from_file(path)?;
        return Ok((Some(token), permission_warning(path)));
    }
    match std::env::var_os(TOKEN_ENV) {
        None => Ok((None, None)),
        Some(value) => {
            let from = format!("in {TOKEN_ENV}");
            let text = value
                .into_string()
                .map_err(|_| AuthError::BadToken { from: from.clone() })?;
            Ok((Some(Token::new(&text, &from)?), None))
        }
    }
}

/// A warning when a secret file is readable or writable by its group or others.
pub fn permission_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} is accessible to other users (mode {:o}); restrict it with chmod 600",
                path.display(),
                mode & 0o777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Reads a PEM file, checking that it holds at least one `what` block (`CERTIFICATE`,
/// `PRIVATE KEY`, ...) so a wrong file is named rather than failing obscurely later.
pub fn read_pem(path: &Path, what: &'static str, marker: &str) -> Result<Vec<u8>, AuthError> {
    let bytes = std::fs::read(path).map_err(|source| AuthError::ReadPem {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.contains(marker));
    if !found {
        return Err(AuthError::NoPem {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Adds `authorization: Bearer <token>` to every call; does nothing without a token.
#[derive(Clone, Default)]
pub struct BearerInterceptor {
    header: Option<AsciiMetadataValue>,
}

impl fmt::Debug for BearerInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerInterceptor")
            .field("token", &self.header.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl BearerInterceptor {
    pub fn new(token: Option<&Token>) -> Self {
        BearerInterceptor {
            header: token.map(Token::header_value),
        }
    }
}

impl Interceptor for BearerInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert(AUTHORIZATION, header.clone());
        }
        Ok(request)
    }
}

/// How a client reaches a coordinator: its token and the CA that signed its certificate.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub token: Option<Token>,
    /// PEM CA certificate(s) to verify an `https://` coordinator against.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl ClientOptions {
    /// No token, no TLS.
    pub fn none() -> Self {
        ClientOptions::default()
    }

    /// With this token.
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Verifying the server against this PEM CA certificate.
    pub fn with_tls_ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// Reads the token (see [`load_token`]) and the CA certificate file; returns the
    /// warnings worth showing.
    pub fn load(
        token_file: Option<&Path>,
        tls_ca: Option<&Path>,
    ) -> Result<(ClientOptions, Vec<String>), AuthError> {
        let (token, warning) = load_token(token_file)?;
        let tls_ca_pem = tls_ca
            .map(|path| read_pem(path, "CA certificate", "CERTIFICATE"))
            .transpose()?;
        Ok((
            ClientOptions { token, tls_ca_pem },
            warning.into_iter().collect(),
        ))
    }

    /// The endpoint of `url`, with TLS when the url is `https://` (which then needs a CA).
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, AuthError> {
        let endpoint = Endpoint::from_shared(url.to_string()).map_err(|source| AuthError::Url {
            url: url.to_string(),
            source,
        })?;
        let https = endpoint.uri().scheme_str() == Some("https");
        match (&self.tls_ca_pem, https) {
            (None, false) => Ok(endpoint),
            (None, true) => Err(AuthError::HttpsWithoutCa {
                url: url.to_string(),
            }),
            (Some(_), false) => Err(AuthError::CaWithoutHttps {
                url: url.to_string(),
            }),
            (Some(pem), true) => endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .map_err(|source| AuthError::Tls {
                    url: url.to_string(),
                    source,
                }),
        }
    }

    /// The interceptor that sends this token.
    pub fn interceptor(&self) -> BearerInterceptor {
        BearerInterceptor::new(self.token.as_ref())
    }

    /// A client over `channel` sending this token, with the API's message size limits.
    pub fn client(&self, channel: Channel) -> AuthClient {
        CoordinatorClient::with_interceptor(channel, self.interceptor())
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::MAX_MESSAGE_BYTES)
    }
}

/// Whether a refusal is about credentials: the client cannot fix it by retrying.
pub fn is_auth_error(status: &Status) -> bool {
    status.code() == tonic::Code::Unauthenticated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_checked_and_never_shown() {
        let token = Token::new("s3cr3t-token\n", "in test").unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert!(token.verify(Some(b"Bearer s3cr3t-token")));
        assert!(token.verify(Some(b"bearer s3cr3t-token")));
        assert!(!token.verify(Some(b"Bearer s3cr3t-toke")));
        assert!(!token.verify(Some(b"Bearer s3cr3t-token2")));
        assert!(!token.verify(Some(b"s3cr3t-token")));
        assert!(!token.verify(Some(b"Basic s3cr3t-token")));
        assert!(!token.verify(Some(b"Bearer")));
        assert!(!token.verify(None));
        let err = Token::new(" \n", "in t.txt").unwrap_err().to_string();
        assert_eq!(err, "the token in t.txt is empty");
        let err = Token::new("two words", "in t.txt").unwrap_err().to_string();
        assert!(
            err.contains("visible ASCII") && !err.contains("words"),
            "{err}"
        );
        let header = token.header_value();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Bearer s3cr3t-token");
    }

    #[test]
    fn generated_tokens_differ() {
        let (a, b) = (Token::generate(), Token::generate());
        assert_eq!(a.secret.len(), 64);
        assert_ne!(a.secret, b.secret);
    }

    #[test]
    fn token_files_are_read_and_loose_permissions_warned_about() {
        let dir = std::env::temp_dir().join(format!("proto-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let (token, warning) = load_token(Some(&path)).unwrap();
            assert!(token.unwrap().verify(Some(b"Bearer abc123")));
            assert!(warning.unwrap().contains("chmod 600"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(load_token(Some(&path)).unwrap().1.is_none());
        }
        let err = load_token(Some(&dir.join("missing"))).unwrap_err();
        assert!(
            err.to_string().contains("cannot read the token file"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn urls_and_certificates_must_agree() {
        let plain = ClientOptions::none();
        assert!(plain.endpoint("http://127.0.0.1:1").is_ok());
        let err = plain.endpoint("https://127.0.0.1:1").unwrap_err();
        assert!(matches!(err, AuthError::HttpsWithoutCa { .. }), "{err}");
        let tls = ClientOptions::none().with_tls_ca(b"-----BEGIN CERTIFICATE-----\n".to_vec());
        let err = tls.endpoint("http://127.0.0.1:1").unwrap_err();
        assert!(matches!(err, AuthError::CaWithoutHttps { .. }), "{err}");
        assert!(matches!(
            plain.endpoint("not a url").unwrap_err(),
            AuthError::Url { .. }
        ));
    }
}
