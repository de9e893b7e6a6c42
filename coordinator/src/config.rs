//! The settings of a running coordinator.

use std::path::PathBuf;
use std::time::Duration;

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
    /// The window over which throughput is measured.
    pub throughput_window: Duration,
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
            throughput_window: Duration::from_secs(15 * 60),
        }
    }

    /// Sets the lease duration and a heartbeat interval of a third of it.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self.heartbeat_interval = lease / 3;
        self
    }
}
