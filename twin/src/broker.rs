//! The embedded MQTT broker (`rumqttd`, in-process) and broker URLs.
//!
//! The embedded broker is the default when no broker URL is given. It speaks MQTT 3.1.1 (what
//! the modem's Quectel-style client and `rumqttc` speak) on a loopback address, with
//! persistent sessions, QoS 1 and retained messages. Its limits, chosen so that nothing the
//! protocol allows is refused:
//!
//! - payloads up to 64 KiB pass the broker (the twin itself refuses anything over 1024 bytes
//!   and counts it as `oversize`, which it can only do if the broker lets it through);
//! - 100 QoS 1 messages in flight per connection (rumqttd's fixed window);
//! - a commit log of 10 segments of 16 MiB per subscription filter: messages for a
//!   persistent session that is offline are kept until that log wraps.
//!
//! `rumqttd` has no shutdown: the broker's threads (router, listener) live until the process
//! exits. [`EmbeddedBroker::start`] with port 0 picks a free port first (bind, read, release,
//! then hand it to rumqttd) and waits until an MQTT CONNECT to it is accepted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Error;

/// A broker to connect to: host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl BrokerAddr {
    /// Parses `mqtt://host[:port]` (also `tcp://`; port 1883 by default; IPv6 hosts in
    /// brackets). TLS (`mqtts://`) is not supported.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BrokerUrl { url: url.to_owned(), reason };
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| bad("expected mqtt://host:port (TLS is not supported)"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '@', '#']) {
            return Err(bad("no path, query or credentials allowed: mqtt://host:port"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '[' in host"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("junk after ']'")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            None => 1883,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("bad port"))?,
        };
        Ok(BrokerAddr { host: host.to_owned(), port })
    }
}

impl std::fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
        }
    }
}

/// A running in-process `rumqttd` broker (see the module docs).
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr` (port 0: a free port) and waits until it accepts
    /// MQTT connections.
    pub async fn start(addr: SocketAddr) -> Result<Self, Error> {
        // Bind first: a port already taken is an error here, not a log line in rumqttd's
        // thread (and not a silent connection to some other broker).
        let addr = {
            let probe =
                std::net::TcpListener::bind(addr).map_err(|source| Error::BrokerBind { addr, source })?;
            probe.local_addr()?
        };
        let mut broker = rumqttd::Broker::new(config(addr));
        std::thread::Builder::new().name(format!("mqtt-broker-{}", addr.port())).spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(target: "twin", error = %e, "embedded MQTT broker stopped");
            }
        })?;
        wait_until_up(addr, Duration::from_secs(5)).await?;
        tracing::info!(target: "twin", %addr, "embedded MQTT broker listening");
        Ok(EmbeddedBroker { addr })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        BrokerAddr { host: self.addr.ip().to_string(), port: self.addr.port() }.to_string()
    }
}

fn config(addr: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: format!("twinbed-v4-{}", addr.port()),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    }
}

/// Connects with a bare MQTT 3.1.1 CONNECT until a CONNACK comes back (then closes).
async fn wait_until_up(addr: SocketAddr, limit: Duration) -> Result<(), Error> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match tokio::time::timeout(Duration::from_secs(1), probe(addr)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) | Err(_) if start.elapsed() < limit => {
                // Not listening yet: retry shortly (a poll with a deadline, not a sleep used
                // as synchronisation).
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            _ => {
                return Err(Error::BrokerStart {
                    addr,
                    waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }
}

async fn probe(addr: SocketAddr) -> std::io::Result<()> {
    const CLIENT_ID: &[u8] = b"twinbed-twin-probe";
    let mut packet = vec![0x10, 0];
    packet.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10]);
    packet.extend_from_slice(&[0, CLIENT_ID.len() as u8]);
    packet.extend_from_slice(CLIENT_ID);
    packet[1] = (packet.len() - 2) as u8;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(&packet).await?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await?;
    if connack != [0x20, 0x02, 0x00, 0x00] {
        return Err(std::io::Error::other("not an MQTT CONNACK"));
    }
    // Just close: after a DISCONNECT packet rumqttd's router also sees the socket close and
    // logs a spurious error about the connection being gone twice.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let ok = |u: &str, h: &str, p: u16| {
            assert_eq!(BrokerAddr::parse(u).unwrap(), BrokerAddr { host: h.into(), port: p }, "{u}")
        };
        ok("mqtt://localhost:1884", "localhost", 1884);
        ok("mqtt://broker.lan", "broker.lan", 1883);
        ok("tcp://10.0.0.1:1/", "10.0.0.1", 1);
        ok("mqtt://[::1]:1885", "::1", 1885);
        ok("mqtt://[::1]", "::1", 1883);
        for bad in [
            "localhost:1883",
            "mqtts://h:1",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://h:1/p",
            "mqtt://u@h",
        ] {
            assert!(BrokerAddr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(BrokerAddr::parse("mqtt://[::1]:9").unwrap().to_string(), "mqtt://[::1]:9");
    }

    #[tokio::test]
    async fn embedded_broker_on_a_free_port_and_busy_port_refused() {
        let b = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_ne!(b.addr().port(), 0);
        assert!(b.url().starts_with("mqtt://127.0.0.1:"));
        let busy = EmbeddedBroker::start(b.addr()).await;
        assert!(matches!(busy, Err(Error::BrokerBind { .. })), "{busy:?}");
    }
}
