//! The settings of a running coordinator.

use std::path::PathBuf;
use std::time::Duration;

use proto::auth::Token;

/// The server's TLS certificate chain and private key, PEM. `Debug` hides the key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

/// The default stall watchdog: a lease storing no level for ten times the longest level so
/// far, and at least half an hour, expires. Levels of one task differ by up to a few times in
/// epochs (early stopping) and sparse levels are faster than the dense first one, so ten is
/// far from what a working worker needs.
pub const DEFAULT_WATCHDOG: crate::store::leases::Watchdog = crate::store::leases::Watchdog {
    factor: 10.0,
    floor_ms: 30 * 60 * 1000,
};

/// How a coordinator serves: where it stores results and how it treats leases.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The SQLite database (created with its parent folder when missing).
    pub db_path: PathBuf,
    /// A lease not extended by a heartbeat for this long expires.
    pub lease: Duration,
    /// Workers are asked to heartbeat this often.
    pub heartbeat_interval: Duration,
    /// A task whose leases failed or expired this many times is marked failed.
    pub max_attempts: u32,
    /// How often overdue leases are looked for.
    pub expiry_interval: Duration,
    /// When a lease that heartbeats but stores no level expires.
    pub watchdog: crate::store::leases::Watchdog,
    /// The window over which throughput is measured.
    pub throughput_window: Duration,
    /// When set, every call of the coordinator service must carry this bearer token
    /// (the health service stays open).
    pub token: Option<Token>,
    /// When set, the server speaks TLS only (clients use `https://` and a CA).
    pub tls: Option<TlsIdentity>,
}

impl ServerConfig {
    /// The defaults of `coordinator serve`: 30 s leases, heartbeats every 10 s, 3 attempts.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        ServerConfig {
            db_path: db_path.into(),
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            max_attempts: 3,
            expiry_interval: Duration::from_secs(1),
            watchdog: DEFAULT_WATCHDOG,
            throughput_window: Duration::from_secs(15 * 60),
            token: None,
            tls: None,
        }
    }

    /// Requires this bearer token on every call of the coordinator service.
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Serves TLS with this PEM certificate chain and private key.
    pub fn with_tls(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.tls = Some(TlsIdentity {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        });
        self
    }

    /// Sets the lease duration and a heartbeat interval of a third of it.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self.heartbeat_interval = lease / 3;
        self
    }
}
