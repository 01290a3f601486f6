//! The modem with its real link against an embedded rumqttd broker on a free loopback port.
//!
//! No sleeps as synchronisation: every wait is on a condition, with a timeout.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use twinbed_modem::{Link, LinkStatus, Modem, MqttLink, MqttLinkConfig, Timing, NS_PER_MS};

const WAIT: Duration = Duration::from_secs(10);
const BYTE: u64 = 86_806;

/// Waits until `cond` holds, checking every few milliseconds, or panics after `WAIT`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Starts rumqttd (MQTT 3.1.1 on a free loopback port) on a thread and waits until it accepts.
fn start_broker() -> SocketAddr {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 5_000,
            max_payload_size: 20 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    thread::spawn(move || {
        if let Err(e) = broker.start() {
            panic!("rumqttd: {e}");
        }
    });
    wait_until("the broker to listen", || TcpStream::connect(listen).is_ok());
    listen
}

/// A loopback TCP proxy in front of the broker, so a test can cut the connection (a broker
/// restart, from the modem's point of view) and stop accepting (a broker that is down).
struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    /// Client connections whose client-to-broker direction is still open.
    active: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

impl Proxy {
    fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let active = Arc::new(AtomicUsize::new(0));
        let (stop2, conns2, active2) = (stop.clone(), conns.clone(), active.clone());
        let thread = thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else { continue };
                let mut held = conns2.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                drop(held);
                active2.fetch_add(1, Ordering::AcqRel);
                let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let active3 = active2.clone();
                thread::spawn(move || {
                    let _ = io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(Shutdown::Write);
                    active3.fetch_sub(1, Ordering::AcqRel);
                });
                let (mut c2, mut s2) = (client, server);
                thread::spawn(move || {
                    let _ = io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(Shutdown::Write);
                });
            }
        });
        Self { addr, stop, conns, active, thread }
    }

    fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Resets every connection and stops listening: the port refuses connections afterwards.
    fn kill(self) {
        self.stop.store(true, Ordering::Release);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.addr);
        self.thread.join().unwrap();
    }
}

/// Drives a modem on virtual time the way the engine does, collecting what the firmware gets.
struct Device {
    m: Modem,
    link: MqttLink,
    now: u64,
    rx: Vec<(u64, u8)>,
    cursor: usize,
}

impl Device {
    fn new() -> Self {
        let link =
            MqttLink::new(MqttLinkConfig { timeout: Duration::from_secs(5), ..Default::default() }).unwrap();
        Self { m: Modem::new(Timing::default()), link, now: 0, rx: Vec::new(), cursor: 0 }
    }

    fn send(&mut self, s: &str) {
        for b in s.bytes() {
            self.m.write(self.now, b);
        }
    }

    fn settle(&mut self) {
        while let Some(d) = self.m.next_deadline() {
            self.now = self.now.max(d);
            self.m.poll(self.now, &mut self.link);
            let out = self.m.take_output(self.now);
            self.rx.extend(out.into_iter().map(|b| (self.now, b)));
        }
    }

    fn expect(&mut self, lines: &[&str]) {
        self.settle();
        let got: Vec<u8> = self.rx[self.cursor..].iter().map(|&(_, b)| b).collect();
        self.cursor = self.rx.len();
        let want: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    /// The virtual time at which the last byte of the latest output was received.
    fn last_time(&self) -> u64 {
        self.rx.last().map_or(0, |&(t, _)| t)
    }

    fn connect(&mut self, addr: SocketAddr) {
        self.send(&format!("AT+QMTOPEN=0,\"{}\",{}\r", addr.ip(), addr.port()));
        self.expect(&["OK", "+QMTOPEN: 0,0"]);
        self.send("AT+QMTCONN=0,\"dev1\"\r");
        self.expect(&["OK", "+QMTCONN: 0,0,0"]);
    }
}

/// A plain rumqttc client standing in for the twin: its events arrive on a channel.
fn observer(addr: SocketAddr, id: &str) -> (rumqttc::Client, mpsc::Receiver<rumqttc::Event>) {
    let opts = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
    let (client, mut connection) = rumqttc::Client::new(opts, 10);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for ev in connection.iter() {
            match ev {
                Ok(ev) => {
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    (client, rx)
}

/// Waits for the observer event `f` picks.
fn wait_event<T>(rx: &mpsc::Receiver<rumqttc::Event>, mut f: impl FnMut(rumqttc::Event) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rx.recv_timeout(left).expect("observer event in time");
        if let Some(v) = f(ev) {
            return v;
        }
    }
}

#[test]
fn the_modem_publishes_and_receives_through_a_real_broker() {
    let broker = start_broker();
    let (twin, events) = observer(broker, "twin");
    twin.subscribe("twinbed/+/up/#", rumqttc::QoS::AtLeastOnce).unwrap();
    wait_event(&events, |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))).then_some(()));

    let mut dev = Device::new();
    let counters = dev.link.counters_handle();
    dev.connect(broker);
    // Answers come at modelled times, however fast the loopback is.
    let t = Timing::default();
    dev.send("AT+QMTSUB=0,1,\"twinbed/dev1/down\",1\r");
    let sub_at = dev.now;
    dev.expect(&["OK", "+QMTSUB: 0,1,0,1"]);
    assert_eq!(
        dev.last_time(),
        sub_at + NS_PER_MS + t.tx_ns("twinbed/dev1/down".len() + 5) + t.rtt_ns + 18 * BYTE
    );

    let body = r#"{"boot":1,"seq":1,"t":1000,"first":0,"n":4,"min":21000,"max":21500,"mean":21250}"#;
    dev.send(&format!("AT+QMTPUBEX=0,1,1,0,\"twinbed/dev1/up/telemetry\",{}\r", body.len()));
    dev.settle();
    dev.send(body);
    dev.expect(&[">OK", "+QMTPUBEX: 0,1,0"]);
    assert_eq!(counters.get().published, 1, "PUBACKed");

    let got = wait_event(&events, |e| match e {
        rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => Some(p),
        _ => None,
    });
    assert_eq!(got.topic, "twinbed/dev1/up/telemetry");
    assert_eq!(got.qos, rumqttc::QoS::AtLeastOnce);
    assert_eq!(&got.payload[..], body.as_bytes());

    let ack = r#"{"type":"ack","boot":1,"seq":1}"#;
    twin.publish("twinbed/dev1/down", rumqttc::QoS::AtLeastOnce, false, ack).unwrap();
    wait_until("the modem's link to receive the ack", || counters.get().received == 1);
    dev.settle();
    dev.expect(&[]);
    // Delivered only at the sync point.
    assert_eq!(dev.m.deliver_incoming(dev.now + 1_000 * NS_PER_MS, &mut dev.link), 1);
    dev.expect(&[&format!("+QMTRECV: 0,1,\"twinbed/dev1/down\",{},\"{ack}\"", ack.len())]);

    dev.send("AT+QMTDISC=0\r");
    dev.expect(&["OK", "+QMTDISC: 0,0"]);
    assert_eq!(dev.link.status(), LinkStatus::Closed);
    let c = dev.m.counters();
    assert_eq!((c.publishes_ok, c.received, c.delivered), (1, 1, 1));
}

#[test]
fn an_unreachable_broker_gives_qmtopen_5() {
    let mut dev = Device::new();
    dev.send(&format!("AT+QMTOPEN=0,\"127.0.0.1\",{}\r", free_port()));
    dev.expect(&["OK", "+QMTOPEN: 0,5"]);
    dev.send("AT+QMTOPEN=0,\"no-such-host.invalid\",1883\r");
    dev.expect(&["OK", "+QMTOPEN: 0,5"]);
    assert_eq!(dev.link.status(), LinkStatus::Closed);
}

#[test]
fn a_dropped_connection_reports_qmtstat_1_at_the_sync_point_and_a_stopped_broker_qmtopen_5() {
    let broker = start_broker();
    let proxy = Proxy::start(broker);
    let mut dev = Device::new();
    dev.connect(proxy.addr);
    dev.send("AT+QMTSUB=0,1,\"twinbed/dev1/down\",1\r");
    dev.expect(&["OK", "+QMTSUB: 0,1,0,1"]);
    let proxy_addr = proxy.addr;

    proxy.kill();
    wait_until("the link to notice", || dev.link.status() == LinkStatus::Lost);
    dev.settle();
    dev.expect(&[]);
    dev.m.deliver_incoming(dev.now + 500 * NS_PER_MS, &mut dev.link);
    dev.expect(&["+QMTSTAT: 0,1"]);

    dev.send("AT+QMTPUBEX=0,2,1,0,\"twinbed/dev1/up/event\",2\r");
    dev.settle();
    dev.send("{}");
    dev.expect(&[">OK", "+QMTPUBEX: 0,2,2"]);
    dev.send(&format!("AT+QMTOPEN=0,\"{}\",{}\r", proxy_addr.ip(), proxy_addr.port()));
    dev.expect(&["OK", "+QMTOPEN: 0,5"]);
    // The broker itself is still up: straight to it works again.
    dev.connect(broker);
}

#[test]
fn coverage_loss_closes_the_real_connection_and_publishes_fail() {
    let broker = start_broker();
    let proxy = Proxy::start(broker);
    let mut dev = Device::new();
    dev.connect(proxy.addr);
    assert_eq!(dev.link.status(), LinkStatus::Connected);
    wait_until("one MQTT connection (the QMTOPEN probe has ended)", || proxy.active() == 1);

    dev.m.set_coverage(dev.now + 10 * NS_PER_MS, false);
    dev.expect(&["+CEREG: 2", "+QMTSTAT: 0,7"]);
    assert_eq!(dev.link.status(), LinkStatus::Closed);
    wait_until("the proxy to see the connection close", || proxy.active() == 0);

    dev.send("AT+QMTPUBEX=0,3,1,0,\"twinbed/dev1/up/event\",2\r");
    dev.settle();
    dev.send("{}");
    dev.expect(&[">OK", "+QMTPUBEX: 0,3,2"]);
    dev.send(&format!("AT+QMTOPEN=0,\"{}\",{}\r", proxy.addr.ip(), proxy.addr.port()));
    dev.expect(&["OK", "+QMTOPEN: 0,3"]);

    dev.m.set_coverage(dev.now, true);
    dev.expect(&["+CEREG: 1"]);
    dev.connect(proxy.addr);
    proxy.kill();
}
