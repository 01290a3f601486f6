//! Helpers shared by the integration tests: a device on a real MQTT connection, the HTTP API,
//! the device's own wire encoder (the firmware's `telemetry` crate).
#![allow(dead_code)]

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use twinbed_twin::http_client;
use twinbed_twin::{BrokerAddr, Twin, TwinConfig};

/// Every wait in the tests is bounded by this; a test that hits it has failed.
pub const WAIT: Duration = Duration::from_secs(10);

/// A twin with an embedded broker on a free port, SQLite in memory, HTTP on a free port.
pub async fn start_twin() -> Twin {
    Twin::start(TwinConfig { http: Some("127.0.0.1:0".parse().unwrap()), ..TwinConfig::default() })
        .await
        .expect("the twin starts")
}

/// A device: an MQTT client subscribed to its `down` topic, with the messages it receives.
pub struct Device {
    pub id: String,
    client: AsyncClient,
    downs: mpsc::UnboundedReceiver<Vec<u8>>,
    task: JoinHandle<()>,
}

impl Device {
    /// Connects as `id` (persistent session when `clean` is false), subscribes to
    /// `twinbed/<id>/down` at QoS 1 and returns once the broker confirmed the subscription.
    pub async fn connect(broker: &BrokerAddr, id: &str, clean: bool) -> Device {
        let mut options = MqttOptions::new(id, broker.host.clone(), broker.port);
        options.set_clean_session(clean).set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        client.subscribe(format!("twinbed/{id}/down"), QoS::AtLeastOnce).await.unwrap();
        let (tx, downs) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p.payload.to_vec());
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = subscribed_tx.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                    Ok(_) => {}
                    Err(e) => panic!("device MQTT connection failed: {e}"),
                }
            }
        });
        tokio::time::timeout(WAIT, subscribed).await.expect("SUBACK in time").unwrap();
        Device { id: id.to_owned(), client, downs, task }
    }

    /// Publishes on `twinbed/<id>/<suffix>` at QoS 1.
    pub async fn publish(&self, suffix: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        let topic = format!("twinbed/{}/{suffix}", self.id);
        self.client.publish(topic, QoS::AtLeastOnce, retain, payload.into()).await.unwrap();
    }

    /// Publishes on any topic at QoS 1.
    pub async fn publish_raw(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await.unwrap();
    }

    /// Publishes a record encoded by the firmware's own encoder.
    pub async fn send_record(&self, rec: &telemetry::Record) {
        let mut buf = [0u8; telemetry::MAX_RECORD_LEN];
        let n = telemetry::encode_record(rec, &mut buf).unwrap();
        let suffix = match rec.body {
            telemetry::Body::Telemetry(_) => "up/telemetry",
            _ => "up/event",
        };
        self.publish(suffix, buf[..n].to_vec(), false).await;
    }

    /// Publishes a state message encoded by the firmware's own encoder (retained, as the
    /// protocol says).
    pub async fn send_state(&self, boot: u32, t: u32, reported: &telemetry::Reported) {
        let mut buf = [0u8; 256];
        let n = telemetry::encode_state(boot, t, reported, &mut buf).unwrap();
        self.publish("up/state", buf[..n].to_vec(), true).await;
    }

    /// The next down message, parsed by the firmware's parser (panics after [`WAIT`]).
    pub async fn next_down(&mut self) -> telemetry::Down {
        let raw = tokio::time::timeout(WAIT, self.downs.recv())
            .await
            .expect("a down message in time")
            .expect("the device connection is up");
        telemetry::parse_down(&raw)
            .unwrap_or_else(|e| panic!("the firmware cannot parse {:?}: {e}", String::from_utf8_lossy(&raw)))
    }

    /// The next `n` down messages.
    pub async fn downs(&mut self, n: usize) -> Vec<telemetry::Down> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.next_down().await);
        }
        v
    }

    /// Down messages already received and not yet taken (no waiting).
    pub fn pending_downs(&mut self) -> usize {
        let mut n = 0;
        while self.downs.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    /// Sends DISCONNECT and waits until the connection is closed.
    pub async fn disconnect(self) {
        self.client.disconnect().await.unwrap();
        tokio::time::timeout(WAIT, self.task).await.expect("disconnect in time").unwrap();
    }
}

pub fn ack(boot: u32, seq: u32) -> telemetry::Down {
    telemetry::Down::Ack { boot, seq }
}

pub fn desired(version: u64, interval_s: Option<u32>) -> telemetry::Down {
    telemetry::Down::Desired(telemetry::Desired { version, interval_s })
}

/// A telemetry record as the firmware builds it.
pub fn tel(boot: u32, seq: u32, first: u32, n: u32, mean: i32) -> telemetry::Record {
    telemetry::Record {
        boot,
        seq,
        t: seq * 1000,
        body: telemetry::Body::Telemetry(telemetry::Aggregate {
            first,
            n,
            min: mean - 100,
            max: mean + 100,
            mean,
        }),
    }
}

/// An event record as the firmware builds it.
pub fn event(boot: u32, seq: u32, e: telemetry::Event) -> telemetry::Record {
    telemetry::Record { boot, seq, t: seq * 1000, body: telemetry::Body::Event(e) }
}

/// The reported state the firmware sends.
pub fn reported(interval_s: u32, buffered: u32) -> telemetry::Reported {
    telemetry::Reported {
        slot: telemetry::Slot::A,
        version: telemetry::Version::new(1, 0, 0, 0),
        interval_s,
        buffered,
        dropped: 0,
        battery: None,
    }
}

/// GET (or PUT with a JSON body) on the twin's API: status and JSON body.
pub async fn http(twin: &Twin, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let addr = twin.http_addr().expect("HTTP is on").to_string();
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let resp = http_client::request(&addr, method, path, body.as_deref(), WAIT).await.unwrap();
    let json = resp.json().unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&resp.body)));
    (resp.status, json)
}

/// Waits until the twin has finished with `n` messages from `dev`.
pub async fn wait_received(twin: &Twin, dev: &str, n: u64) {
    twin.traffic()
        .wait_until(WAIT, |t| t.device(dev).received >= n)
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", twin.traffic().device(dev)));
}
