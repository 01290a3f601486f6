//! twinbed's digital-twin service: the backend's mirror of what each device reported, fed over
//! real MQTT (the wire contract is `twin/PROTOCOL.md`).
//!
//! # The pieces
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | topics, the exact schema of each up message, rejection [`Reason`]s, the down messages (`ack`, `desired`) |
//! | [`shadow`] | shadow documents: JSON merge (null deletes), delta (recursive, as AWS IoT), version |
//! | [`store`] | the [`Store`] trait (synchronous; PostgreSQL-implementable) and its row types |
//! | [`sqlite`] | [`SqliteStore`]: the trait on SQLite, in a file or in memory |
//! | [`ingest`] | [`Ingest`]: the protocol state without sockets: `(topic, payload)` in, what was stored or rejected and what to publish out; idempotency on (device, boot, seq), watermarks, acks |
//! | [`service`] | [`Twin`]: the running service on tokio: `rumqttc` client (persistent session, manual acks after commit), ordered outbox, HTTP API |
//! | [`broker`] | [`EmbeddedBroker`] (`rumqttd` in-process, the default) and broker URLs |
//! | [`traffic`] | per-device received/published counters a test runner waits on, race-free |
//! | [`api`] | the HTTP API (`axum`) |
//! | [`http_client`] | a minimal HTTP client for the CLI and tests |
//! | [`mod@bench`] | [`bench_ingest`]: end-to-end messages per second |
//!
//! # Using it in-process
//!
//! ```no_run
//! # async fn demo() -> Result<(), twinbed_twin::Error> {
//! use twinbed_twin::{Twin, TwinConfig};
//! let twin = Twin::start(TwinConfig {
//!     http: Some("127.0.0.1:0".parse().unwrap()),
//!     ..TwinConfig::default() // SQLite in memory, embedded broker on a free port
//! })
//! .await?;
//! println!("broker {} API {:?}", twin.broker(), twin.http_addr());
//! // ... devices publish to twin.broker() ...
//! twin.traffic()
//!     .wait_until(std::time::Duration::from_secs(5), |t| t.device("dev-1").received >= 10)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Decisions where PROTOCOL.md leaves room
//!
//! - Unknown JSON keys in up messages are **rejected** (`unknown_field`), see [`wire`].
//! - A duplicate at or below the watermark is answered with the current `ack` (so a device
//!   that lost an ack recovers), see [`ingest`].
//! - The version moves only when a document actually changes; desired writes merge (null
//!   deletes) like AWS, see [`shadow`].
//! - The `desired` message carries the whole desired document and the shadow version.
#![warn(missing_docs)]

pub mod api;
pub mod bench;
pub mod broker;
mod error;
pub mod http_client;
pub mod ingest;
pub mod service;
pub mod shadow;
mod shared;
pub mod sqlite;
pub mod store;
pub mod traffic;
pub mod wire;

pub use bench::{bench_ingest, bench_ingest_with, BenchOptions, BenchReport};
pub use broker::{BrokerAddr, EmbeddedBroker};
pub use error::{DesiredProblem, Error, StoreError};
pub use ingest::{DesiredOutcome, Ingest, Outcome, RecordKind, Verdict, MAX_REPORTED};
pub use service::{BrokerChoice, DbLocation, Twin, TwinConfig};
pub use shadow::{Document, Shadow};
pub use sqlite::SqliteStore;
pub use store::{Counter, DeviceInfo, HistoryQuery, Store, StoreStats, StoredEvent, Watermark};
pub use traffic::{DeviceTraffic, Traffic, TrafficSnapshot};
pub use wire::{Down, Outgoing, Reason, Rejection};
