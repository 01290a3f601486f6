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
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::BrokerBind { addr, source })?;
        let addr = listener.local_addr()?;
        // rumqttd itself listens on a private loopback port behind a relay (see `relay`).
        let inner = {
            let probe = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            probe.local_addr()?
        };
        let mut broker = rumqttd::Broker::new(config(inner));
        std::thread::Builder::new().name(format!("mqtt-broker-{}", addr.port())).spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(target: "twin", error = %e, "embedded MQTT broker stopped");
            }
        })?;
        wait_until_up(inner, Duration::from_secs(5)).await?;
        tokio::spawn(relay(listener, inner));
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

/// Relays every client of `listener` to rumqttd at `inner`, without delay.
///
/// rumqttd does not set `TCP_NODELAY` on its sockets, so when it sends two small packets back to
/// back (a PUBACK, then a message for the same client) Nagle's algorithm holds the second until
/// the client acknowledges the first, and clients delay their ACKs by up to 40 ms. Every
/// request-and-answer exchange through the broker then takes ~40 ms (measured: a 10-minute
/// emulated run with the twin took 2.8 s instead of 0.4 s). The relay's socket towards rumqttd
/// acknowledges at once (`TCP_QUICKACK`, renewed after every read, on Linux), which releases
/// rumqttd's queue immediately, and both its sockets set `TCP_NODELAY`.
async fn relay(listener: tokio::net::TcpListener, inner: SocketAddr) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let Ok(broker) = tokio::net::TcpStream::connect(inner).await else { return };
            let _ = client.set_nodelay(true);
            let _ = broker.set_nodelay(true);
            quick_ack(&broker);
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_broker, mut to_broker) = broker.into_split();
            let up = async move {
                let _ = tokio::io::copy(&mut from_client, &mut to_broker).await;
                let _ = to_broker.shutdown().await;
            };
            let down = async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match from_broker.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            quick_ack(from_broker.as_ref());
                            if to_client.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = to_client.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

/// Asks the kernel to acknowledge what arrives on `stream` at once (Linux `TCP_QUICKACK`; the
/// mode lapses, so it is renewed after every read). Elsewhere a no-op.
fn quick_ack(stream: &tokio::net::TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket fd owned by `stream`, a c_int option of the right size.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
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
