//! `twinbed-twin`: run the digital-twin service, or look into its database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use twinbed_twin::api::ShadowView;
use twinbed_twin::{
    http_client, BrokerChoice, DbLocation, HistoryQuery, Ingest, SqliteStore, Store, Twin, TwinConfig,
};

/// twinbed's digital twin: device shadows and telemetry history, fed over MQTT.
///
/// Devices publish on `twinbed/<dev>/up/{telemetry,event,state}` (see twin/PROTOCOL.md); the
/// twin stores each record once per (device, boot, seq), acks on `twinbed/<dev>/down`, keeps a
/// shadow (reported / desired / delta / version) per device and serves it over HTTP.
///
/// Quick start:
///
///   twinbed-twin serve                      # embedded broker on 127.0.0.1:1883, API on :8080
///
///   curl localhost:8080/devices
///
///   twinbed-twin shadow dev-1               # read ./twin.db
#[derive(Parser, Debug)]
#[command(name = "twinbed-twin", version, verbatim_doc_comment)]
struct Cli {
    /// More logging: -v debug, -vv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct DbArg {
    /// The SQLite database file (`:memory:` for a database that lives as long as the process).
    #[arg(long, value_name = "FILE", default_value = "twin.db")]
    db: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the service: MQTT in and out, SQLite, HTTP API. Stops on Ctrl-C.
    ///
    /// Without --broker an MQTT broker runs inside the process (rumqttd) on 127.0.0.1 and
    /// --mqtt-port; devices and other tools connect to it like to any broker. With --broker the
    /// twin connects to that broker instead (persistent session, client id --client-id).
    #[command(verbatim_doc_comment)]
    Serve {
        #[command(flatten)]
        db: DbArg,
        /// An external broker, `mqtt://host:port` (default: the embedded broker).
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// Port of the embedded broker on 127.0.0.1 (0: any free port, printed at start).
        #[arg(long, value_name = "PORT", default_value_t = 1883, conflicts_with = "broker")]
        mqtt_port: u16,
        /// Address of the HTTP API (port 0: any free port, printed at start).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// The twin's MQTT client id (keep it fixed: the broker keeps the session under it).
        #[arg(long, value_name = "ID", default_value = "twinbed-twin")]
        client_id: String,
    },
    /// Print a device's shadow (reported, desired, delta, version) from the database.
    Shadow {
        /// Device id.
        device: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print a device's telemetry and events from the database, by (boot, seq).
    History {
        /// Device id.
        device: String,
        #[command(flatten)]
        db: DbArg,
        /// Only this boot.
        #[arg(long)]
        boot: Option<u32>,
        /// Only seqs above this one.
        #[arg(long)]
        since: Option<u32>,
        /// At most this many telemetry records and this many events.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Merge JSON into a device's desired state, if the shadow is still at --version.
    ///
    /// By default this writes the database file directly: the device gets the new desired
    /// state when it next sends its state (the twin answers every state that differs from
    /// desired). With --api it goes through a running service, which also publishes it to the
    /// device at once. A key set to null is deleted. Example:
    ///
    ///   twinbed-twin set-desired dev-1 --version 3 '{"interval_s":60}'
    #[command(verbatim_doc_comment)]
    SetDesired {
        /// Device id.
        device: String,
        /// The shadow version you last saw (`twinbed-twin shadow DEVICE`); 0 for a new device.
        #[arg(long)]
        version: u64,
        /// The desired state to merge, a JSON object of integers, strings, booleans, arrays.
        json: String,
        #[command(flatten)]
        db: DbArg,
        /// A running service's HTTP address (`127.0.0.1:8080`) instead of the database file.
        #[arg(long, value_name = "ADDR")]
        api: Option<String>,
    },
    /// Measure end-to-end ingest: a device publishes N telemetry records through an embedded
    /// broker, the twin stores them in SQLite; prints messages per second until the last ack.
    Bench {
        /// Records to publish.
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        /// Store in this SQLite file instead of memory (the file is deleted first).
        #[arg(long, value_name = "FILE")]
        db_file: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Shadow { device, .. }
    | Command::History { device, .. }
    | Command::SetDesired { device, .. } = &cli.command
    {
        if !twinbed_twin::wire::valid_device_id(device) {
            bail!("invalid device id {device:?}: 1 to 32 characters of A-Z a-z 0-9 _ -");
        }
    }
    let default = match cli.verbose {
        0 => "twin=info,twinbed_twin=info,rumqttd=warn,rumqttc=warn",
        1 => "twin=debug,twinbed_twin=debug,rumqttd=info,rumqttc=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    match cli.command {
        Command::Serve { db, broker, mqtt_port, http, client_id } => {
            serve(db.db, broker, mqtt_port, http, client_id)
        }
        Command::Shadow { device, db } => {
            let mut store = open_existing(&db.db)?;
            let shadow = match store.shadow(&device)? {
                Some(s) => s,
                None if store.device_exists(&device)? => Default::default(),
                None => bail!("no device {device:?} in {}", db.db.display()),
            };
            println!("{}", serde_json::to_string_pretty(&ShadowView::new(&device, &shadow))?);
            Ok(())
        }
        Command::History { device, db, boot, since, limit } => {
            let mut store = open_existing(&db.db)?;
            if !store.device_exists(&device)? {
                bail!("no device {device:?} in {}", db.db.display());
            }
            let q = HistoryQuery { boot, since, limit };
            let telemetry = store.telemetry(&device, &q)?;
            let events = store.events(&device, &q)?;
            println!("telemetry of {device} ({} records):", telemetry.len());
            println!(
                "{:>6} {:>6} {:>10} {:>8} {:>5} {:>8} {:>8} {:>8}",
                "boot", "seq", "t_ms", "first", "n", "min", "max", "mean"
            );
            for r in &telemetry {
                println!(
                    "{:>6} {:>6} {:>10} {:>8} {:>5} {:>8} {:>8} {:>8}",
                    r.boot, r.seq, r.t, r.first, r.n, r.min, r.max, r.mean
                );
            }
            println!("events of {device} ({}):", events.len());
            for e in &events {
                println!(
                    "{:>6} {:>6} {:>10} {} {}",
                    e.boot,
                    e.seq,
                    e.t,
                    e.kind,
                    Value::Object(e.body.clone())
                );
            }
            for w in store.watermarks(&device)? {
                println!("watermark boot {}: seq {}", w.boot, w.seq);
            }
            Ok(())
        }
        Command::Bench { messages, db_file } => {
            let mut options = twinbed_twin::BenchOptions::new(messages);
            if let Some(path) = &db_file {
                if path.exists() {
                    std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
                }
                options.db = DbLocation::File(path.clone());
            }
            let report = twinbed_twin::bench_ingest_with(&options).context("running the benchmark")?;
            println!("{report}");
            Ok(())
        }
        Command::SetDesired { device, version, json, db, api } => {
            let state: Value = serde_json::from_str(&json).context("the desired state is not valid JSON")?;
            match api {
                Some(addr) => set_desired_api(&addr, &device, version, state),
                None => {
                    let store = open_existing(&db.db)?;
                    let mut ingest = Ingest::new(store);
                    let outcome = ingest.set_desired(&device, version, &state)?;
                    println!("{}", serde_json::to_string_pretty(&ShadowView::new(&device, &outcome.shadow))?);
                    if !outcome.changed {
                        eprintln!("desired state unchanged (version stays {})", outcome.shadow.version);
                    }
                    Ok(())
                }
            }
        }
    }
}

fn open_existing(path: &Path) -> Result<SqliteStore> {
    if !path.exists() {
        bail!("no database at {} (run `twinbed-twin serve --db {0}` first, or pass --db)", path.display());
    }
    SqliteStore::open(path).with_context(|| format!("opening {}", path.display()))
}

fn serve(
    db: PathBuf,
    broker: Option<String>,
    mqtt_port: u16,
    http: SocketAddr,
    client_id: String,
) -> Result<()> {
    let db = if db == Path::new(":memory:") { DbLocation::Memory } else { DbLocation::File(db) };
    let broker = match broker {
        Some(url) => BrokerChoice::Url(url),
        None => BrokerChoice::Embedded(SocketAddr::from(([127, 0, 0, 1], mqtt_port))),
    };
    let config = TwinConfig { db: db.clone(), broker, http: Some(http), client_id, ..TwinConfig::default() };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let result = rt.block_on(async move {
        let twin = Twin::start(config).await.context("starting the twin")?;
        let db_text = match &db {
            DbLocation::Memory => "in memory".to_owned(),
            DbLocation::File(p) => p.display().to_string(),
        };
        let embedded = if twin.embedded_broker().is_some() { " (embedded)" } else { "" };
        println!("twinbed-twin serving");
        println!("  MQTT broker: {}{embedded}", twin.broker());
        if let Some(addr) = twin.http_addr() {
            println!("  HTTP API:    http://{addr}/");
        }
        println!("  database:    {db_text}");
        tokio::select! {
            e = twin.wait() => Err(anyhow::Error::new(e).context("the twin stopped")),
            r = tokio::signal::ctrl_c() => {
                r.context("waiting for Ctrl-C")?;
                eprintln!("stopping");
                twin.shutdown().await;
                tracing::debug!(target: "twin", "stopped");
                Ok(())
            }
        }
    });
    // Everything was stopped above; do not wait for idle runtime threads.
    rt.shutdown_background();
    result
}

fn set_desired_api(addr: &str, device: &str, version: u64, state: Value) -> Result<()> {
    let body = serde_json::to_vec(&serde_json::json!({"version": version, "state": state}))?;
    let path = format!("/devices/{device}/shadow/desired");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let resp = rt
        .block_on(http_client::request(addr, "PUT", &path, Some(&body), Duration::from_secs(10)))
        .with_context(|| format!("PUT http://{addr}{path}"))?;
    let text = String::from_utf8_lossy(&resp.body);
    if resp.status != 200 {
        bail!("HTTP {}: {text}", resp.status);
    }
    match resp.json() {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
        Err(_) => println!("{text}"),
    }
    Ok(())
}
