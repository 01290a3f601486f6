//! The crate's error types: [`StoreError`] for storage back ends, [`Error`] for everything else.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What a [`Store`](crate::Store) can fail with.
///
/// A back end other than SQLite (PostgreSQL, say) reports its driver's errors through
/// [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O, a locked database, a constraint, ...).
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Any other back end's error.
    #[error("{backend}: {source}")]
    Backend {
        /// The back end's name (`"postgres"`, ...).
        backend: &'static str,
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value does not decode (e.g. a shadow document that is not a JSON object): the
    /// database was changed by something other than this crate.
    #[error("corrupt {what} for device {device:?}: {source}")]
    Corrupt {
        /// What was being read (`"shadow"`, `"event body"`, ...).
        what: &'static str,
        /// The device whose row it is.
        device: String,
        /// Why it does not decode.
        source: serde_json::Error,
    },
}

/// Everything else that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage back end failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Opening the database file failed.
    #[error("cannot open database {path:?}: {source}")]
    OpenDatabase {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The device id is not `[A-Za-z0-9_-]{1,32}` (PROTOCOL.md §2).
    #[error("invalid device id {device:?}: must be 1 to 32 characters of A-Z a-z 0-9 _ -")]
    InvalidDeviceId {
        /// The offending id.
        device: String,
    },
    /// A desired-state write named a version that is not the shadow's current one: someone else
    /// changed the shadow since the writer read it (optimistic locking, PROTOCOL.md §3).
    #[error(
        "stale version for device {device:?}: the write expected version {expected}, the shadow \
         is at version {current}; read the shadow again and retry"
    )]
    StaleVersion {
        /// The device.
        device: String,
        /// The version the writer sent.
        expected: u64,
        /// The shadow's current version.
        current: u64,
    },
    /// A desired-state document is not acceptable.
    #[error("invalid desired state: {reason}")]
    InvalidDesired {
        /// Why.
        reason: DesiredProblem,
    },
    /// The broker URL does not parse.
    #[error("invalid broker URL {url:?}: {reason}")]
    BrokerUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The embedded broker's port cannot be bound (already in use, or not permitted).
    #[error("cannot listen for MQTT on {addr}: {source}")]
    BrokerBind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The embedded broker did not accept connections in time.
    #[error("the embedded MQTT broker on {addr} did not come up within {waited_ms} ms")]
    BrokerStart {
        /// Where it should listen.
        addr: SocketAddr,
        /// How long we waited.
        waited_ms: u64,
    },
    /// The twin's MQTT client could not connect and subscribe in time.
    #[error("no MQTT session with {broker} within {waited_ms} ms (last error: {last_error})")]
    MqttConnect {
        /// The broker address.
        broker: String,
        /// How long we waited.
        waited_ms: u64,
        /// The last connection error seen, or "none".
        last_error: String,
    },
    /// The MQTT client's request queue is closed (the service is shutting down).
    #[error("MQTT client: {0}")]
    MqttClient(#[from] rumqttc::ClientError),
    /// The HTTP listener cannot be bound.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another I/O error (a socket, a thread that could not be spawned).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A waiting call ran out of time.
    #[error("timed out after {waited_ms} ms waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        waited_ms: u64,
    },
    /// An internal task panicked or the shared state is poisoned by an earlier panic.
    #[error("internal failure: {what}")]
    Internal {
        /// Which part.
        what: &'static str,
    },
    /// The service has stopped (after a storage failure, or after `shutdown`).
    #[error("the twin service has stopped")]
    Stopped,
}

/// Why a desired-state document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredProblem {
    /// `state` is not a JSON object.
    #[error("\"state\" must be a JSON object")]
    NotAnObject,
    /// A number is not an integer (devices have no floats, PROTOCOL.md §2).
    #[error("numbers must be integers (devices have no floats): {path}")]
    NotInteger {
        /// The JSON path of the number, like `/a/b`.
        path: String,
    },
    /// The `desired` message that would be sent exceeds the 1024-byte payload limit.
    #[error("the desired message would be {len} bytes; payloads are at most {max} bytes")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
}
