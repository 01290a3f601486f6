//! End-to-end ingest benchmark, for `cargo xtask bench twin`.
//!
//! One process: the embedded broker on a free loopback port, the twin (SQLite in memory, or a
//! file), and one `rumqttc` client acting as a device that publishes `messages` telemetry
//! records (QoS 1, seq 1..=N, boot 1) as fast as the broker takes them (100 in flight). The
//! clock runs from the first publish until the device receives the `ack` for seq N, i.e. until
//! every record is stored in SQLite and acknowledged end to end.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Serialize;

use crate::error::Error;
use crate::service::{DbLocation, Twin, TwinConfig};
use crate::wire::down_topic;

/// Options of [`bench_ingest_with`].
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Telemetry records to publish.
    pub messages: usize,
    /// Where the twin stores them.
    pub db: DbLocation,
    /// Give up after this long.
    pub timeout: Duration,
}

impl BenchOptions {
    /// `messages` records into an in-memory database, with a timeout of 60 s plus 1 ms per
    /// record.
    pub fn new(messages: usize) -> Self {
        let per = Duration::from_millis(u64::try_from(messages).unwrap_or(u64::MAX));
        BenchOptions {
            messages,
            db: DbLocation::Memory,
            timeout: Duration::from_secs(60).saturating_add(per),
        }
    }
}

/// What [`bench_ingest`] measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// Records published (and all acknowledged).
    pub messages: usize,
    /// `"sqlite (memory)"` or `"sqlite (file)"`.
    pub store: &'static str,
    /// From the first publish to the last ack, in seconds.
    pub seconds: f64,
    /// `messages / seconds`.
    pub messages_per_second: f64,
    /// `ack` messages the device received on the way (the twin acks every watermark move).
    pub acks_received: u64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "twin ingest: {} telemetry records through the embedded broker into {} in {:.3} s = {:.0} msg/s ({} acks)",
            self.messages, self.store, self.seconds, self.messages_per_second, self.acks_received
        )
    }
}

/// Runs the benchmark with [`BenchOptions::new`] on a runtime of its own (call it from a plain
/// thread, not from inside a tokio runtime).
///
/// # Panics
///
/// If the benchmark cannot run (no free port, timeout): a benchmark that silently reports
/// nothing would be worse. Use [`bench_ingest_with`] to get the error instead.
pub fn bench_ingest(messages: usize) -> BenchReport {
    match bench_ingest_with(&BenchOptions::new(messages)) {
        Ok(report) => report,
        Err(e) => panic!("twin ingest benchmark failed: {e}"),
    }
}

/// Runs the benchmark (see the module docs) on a runtime of its own.
pub fn bench_ingest_with(options: &BenchOptions) -> Result<BenchReport, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run(options))
}

async fn run(options: &BenchOptions) -> Result<BenchReport, Error> {
    let store = match options.db {
        DbLocation::Memory => "sqlite (memory)",
        DbLocation::File(_) => "sqlite (file)",
    };
    let messages = u32::try_from(options.messages).unwrap_or(u32::MAX);
    let twin = Twin::start(TwinConfig { db: options.db.clone(), ..TwinConfig::default() }).await?;
    let broker = twin.broker().clone();

    let mut mqtt = MqttOptions::new("bench-device", broker.host, broker.port);
    mqtt.set_keep_alive(Duration::from_secs(30)).set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(mqtt, 128);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    client.subscribe(down_topic("bench"), QoS::AtLeastOnce).await?;

    let deadline = tokio::time::Instant::now() + options.timeout;
    let timeout = || Error::Timeout {
        what: "the benchmark's last ack",
        waited_ms: u64::try_from(options.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    // Wait for the device's subscription before starting the clock.
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => return Err(timeout()),
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(Error::MqttConnect {
                    broker: twin.broker().to_string(),
                    waited_ms: 0,
                    last_error: e.to_string(),
                })
            }
        }
    }

    let start = Instant::now();
    let publisher = client.clone();
    let topic = "twinbed/bench/up/telemetry".to_owned();
    let publishing = tokio::spawn(async move {
        for seq in 1..=messages {
            let payload = format!(
                r#"{{"boot":1,"seq":{seq},"t":{t},"first":{seq},"n":1,"min":21000,"max":21000,"mean":21000}}"#,
                t = seq.wrapping_mul(1000)
            );
            publisher.publish(topic.as_str(), QoS::AtLeastOnce, false, payload).await?;
        }
        Ok::<(), rumqttc::ClientError>(())
    });

    let mut acks = 0u64;
    let mut last = 0u32;
    while last < messages {
        let event = match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => return Err(timeout()),
            Ok(Ok(event)) => event,
            Ok(Err(e)) => {
                return Err(Error::MqttConnect {
                    broker: twin.broker().to_string(),
                    waited_ms: 0,
                    last_error: e.to_string(),
                })
            }
        };
        if let Event::Incoming(Packet::Publish(p)) = event {
            let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if v["type"] == "ack" {
                acks += 1;
                last = last.max(v["seq"].as_u64().and_then(|s| u32::try_from(s).ok()).unwrap_or(0));
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    match publishing.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::MqttClient(e)),
        Err(_) => return Err(Error::Internal { what: "benchmark publisher panicked" }),
    }
    let _ = client.try_disconnect();
    twin.shutdown().await;
    Ok(BenchReport {
        messages: options.messages,
        store,
        seconds,
        messages_per_second: if seconds > 0.0 { options.messages as f64 / seconds } else { 0.0 },
        acks_received: acks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_acks_everything() {
        let report = bench_ingest(300);
        assert_eq!(report.messages, 300);
        assert!(report.acks_received >= 1 && report.acks_received <= 300, "{report}");
        assert!(report.messages_per_second > 0.0);
        assert_eq!(bench_ingest(0).messages, 0);
    }
}
