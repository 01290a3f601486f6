//! The whole loop (issue #5): the reference app on the embedded engine, the virtual modem on its
//! UART1 speaking real MQTT to a broker, the twin service storing what arrives; then the twin's
//! history is checked against the emulator's record of every reading the firmware took.
//!
//! Everything runs on virtual time: the engine is frozen while the network works, and the
//! messages the twin sends enter the device only at sync points after the network is quiet
//! (twinbed::net), so the transcripts are the same on every run.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use twinbed::firmware::AppFlavour;
use twinbed::net::NetDevice;
use twinbed::scenario::{ground_truth, Backend, GroundTruth};
use twinbed::testkit;
use twinbed_engine::Stop;

/// Cycles per virtual second on mps2-an385.
const SECOND: u64 = 25_000_000;

fn board() -> twinbed::Board {
    twinbed::Board::builtin("mps2-an385").unwrap()
}

/// The device app (no test mode: it samples until the run ends) on a network device with
/// modem IMEI `imei`. The build that stays online (no publish windows): these scenarios
/// exercise the protocol (acks, replays, reconnects, desired state) as it runs while
/// connected; the default build's windows are tested in `battery.rs`.
fn device(backend: &Backend, imei: &str) -> NetDevice {
    NetDevice::boot(&board(), &testkit::app(AppFlavour::AlwaysOnline), imei, backend.broker()).unwrap()
}

/// A deterministic temperature: a slow ramp with steps, so some windows fall in the deadband
/// and some do not.
fn temperature(index: u32) -> i32 {
    21_000 + ((index / 15) % 8) as i32 * 150 - ((index / 120) % 3) as i32 * 400
}

fn run(dev: &mut NetDevice, backend: &Backend, seconds: u64) -> Stop {
    let mut quiet = backend.quiet();
    dev.run(seconds * SECOND, &mut quiet, &mut |r| Some(temperature(r.index))).unwrap()
}

fn check(dev: &mut NetDevice, backend: &Backend) -> GroundTruth {
    let id = dev.device_id();
    dev.sync(&mut backend.quiet()).unwrap();
    let g = ground_truth(&dev.readings, &backend.telemetry(&id).unwrap(), &backend.events(&id).unwrap());
    assert!(g.holds(), "ground truth broken: {g:#?}");
    g
}

#[test]
fn steady_state_every_reading_arrives_once_and_the_shadow_mirrors_the_device() {
    let backend = Backend::start(Default::default()).unwrap();
    let mut dev = device(&backend, "861234050000001");
    let id = dev.device_id();
    assert_eq!(run(&mut dev, &backend, 300), Stop::Budget);
    let console = dev.take_console();
    let g = check(&mut dev, &backend);
    assert!(g.readings >= 290, "{g:?}\n{console}");
    assert!(g.stored_once >= g.readings - 20, "all but the last window or two arrived: {g:?}");
    assert_eq!(g.dropped, 0, "{g:?}");
    let shadow = backend.shadow(&id).unwrap().expect("the device reported its state");
    assert_eq!(
        shadow.reported.get("version").and_then(|v| v.as_str()),
        Some(env!("CARGO_PKG_VERSION")),
        "{shadow:?}"
    );
    // The fuel gauge's figures ride along in the state (mps2-an385 has a battery).
    let mv = shadow.reported.get("battery_mv").and_then(|v| v.as_u64()).expect("battery_mv reported");
    let permille =
        shadow.reported.get("battery_permille").and_then(|v| v.as_u64()).expect("battery_permille");
    assert!((3000..=4200).contains(&mv) && permille <= 1000, "{shadow:?}");
    let transcript = dev.take_transcript();
    insta::assert_snapshot!("steady_state_transcript", transcript[..transcript.len().min(40)].join("\n"));
    insta::assert_snapshot!("steady_state_shadow", serde_json::to_string_pretty(&shadow.reported).unwrap());
}

#[test]
fn the_same_inputs_give_the_same_transcript() {
    let transcript = |imei: &str| {
        let backend = Backend::start(Default::default()).unwrap();
        let mut dev = device(&backend, imei);
        run(&mut dev, &backend, 90);
        (dev.take_transcript(), dev.take_console())
    };
    assert_eq!(transcript("861234050000002"), transcript("861234050000002"));
}

#[test]
fn a_30_minute_coverage_outage_loses_nothing_silently() {
    let backend = Backend::start(Default::default()).unwrap();
    let mut dev = device(&backend, "861234050000003");
    run(&mut dev, &backend, 60);
    dev.inject(twinbed_modem::Fault::Coverage(false));
    run(&mut dev, &backend, 30 * 60);
    dev.inject(twinbed_modem::Fault::Coverage(true));
    // Back in coverage: the device reconnects (after its backoff) and replays its buffer.
    run(&mut dev, &backend, 10 * 60);
    let console = dev.take_console();
    let g = check(&mut dev, &backend);
    assert!(g.readings > 2000, "{g:?}");
    assert!(g.dropped > 0, "30 min of readings overflow the 64-record buffer: {g:?}\n{console}");
    assert!(g.stored_once > 600, "{g:?}");
}

/// Desired state set at the twin (as `PUT /devices/{id}/shadow/desired` does) reaches the
/// device at its next sync point; it samples every 5 s from then on and reports so; a stale write
/// is refused.
#[test]
fn desired_state_from_the_twin_changes_the_sample_period() {
    let backend = Backend::start(Default::default()).unwrap();
    let mut dev = device(&backend, "861234050000007");
    let id = dev.device_id();
    run(&mut dev, &backend, 30);
    let version = backend.shadow(&id).unwrap().expect("reported").version;
    backend.set_desired(&id, version, serde_json::json!({ "interval_s": 5 })).unwrap();
    assert!(
        backend.set_desired(&id, version, serde_json::json!({ "interval_s": 7 })).is_err(),
        "stale version"
    );
    dev.sync(&mut backend.quiet()).unwrap();
    let from = dev.readings.len();
    run(&mut dev, &backend, 120);
    let console = dev.take_console();
    assert!(console.contains("a sample every 5 s"), "{console}");
    let gaps: Vec<u32> =
        dev.readings[from + 1..].windows(2).map(|w| w[1].uptime_ms - w[0].uptime_ms).collect();
    assert!(!gaps.is_empty() && gaps.iter().all(|&g| g == 5000), "{gaps:?}");
    let shadow = backend.shadow(&id).unwrap().unwrap();
    assert_eq!(shadow.reported.get("interval_s"), Some(&serde_json::json!(5)), "{shadow:?}");
    assert!(shadow.delta().is_empty(), "{shadow:?}");
    check(&mut dev, &backend);
}

/// Duplicated and reordered deliveries: another client replays the device's own messages, in
/// a seeded shuffled order, twice; the twin stores each record once.
#[test]
fn duplicated_and_reordered_deliveries_are_stored_once() {
    let backend = Backend::start(Default::default()).unwrap();
    let mut dev = device(&backend, "861234050000004");
    run(&mut dev, &backend, 240);
    let id = dev.device_id();
    let ups: Vec<(String, String)> = dev
        .take_transcript()
        .iter()
        .filter_map(|l| {
            let rest = l.split_once("] > ")?.1;
            let (topic, rest) = rest.split_once(' ')?;
            let payload = rest.rsplit_once(" [")?.0;
            (topic.contains("/up/") && !topic.ends_with("/state"))
                .then(|| (topic.to_owned(), payload.to_owned()))
        })
        .collect();
    assert!(ups.len() > 10, "{ups:?}");
    let before = backend.telemetry(&id).unwrap();
    let mut order: Vec<usize> = (0..ups.len()).chain(0..ups.len()).collect();
    let mut seed = 0x5eed_u64;
    for i in (1..order.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        order.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let mut opts =
        rumqttc::MqttOptions::new("replayer", backend.broker().ip().to_string(), backend.broker().port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = rumqttc::Client::new(opts, 64);
    let sender = std::thread::spawn(move || {
        for i in order {
            let (topic, payload) = &ups[i];
            client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.as_bytes()).unwrap();
        }
        client.disconnect().unwrap();
    });
    for event in connection.iter() {
        if event.is_err() {
            break;
        }
    }
    sender.join().unwrap();
    // The twin has them all (it counts what it received): nothing new was stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.stats().unwrap().counters.get("duplicates").copied().unwrap_or(0) < 10
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(backend.telemetry(&id).unwrap(), before, "replays stored nothing new");
    check(&mut dev, &backend);
}

/// mosquitto (Debian's) on `port`, or `None` when it is not installed (allowed only outside
/// `cargo xtask test`, which installs it).
fn mosquitto(port: u16, dir: &std::path::Path) -> Option<Broker> {
    let Some(bin) = testkit::mosquitto_binary() else {
        assert!(
            std::env::var_os("TWINBED_REQUIRE_MOSQUITTO").is_none(),
            "mosquitto is required here (cargo xtask test installs it)"
        );
        eprintln!("mosquitto is not installed: skipping (cargo xtask test installs it)");
        return None;
    };
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n"),
    )
    .unwrap();
    let child =
        Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Broker(child))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn twin_on(port: u16) -> Backend {
    Backend::start(twinbed_twin::TwinConfig {
        broker: twinbed_twin::BrokerChoice::Url(format!("mqtt://127.0.0.1:{port}")),
        ..Default::default()
    })
    .unwrap()
}

/// The steady state against mosquitto (Debian's), started here on a free loopback port.
#[test]
fn steady_state_against_mosquitto() {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let Some(broker) = mosquitto(port, dir.path()) else { return };
    let backend = twin_on(port);
    let mut dev = device(&backend, "861234050000005");
    run(&mut dev, &backend, 180);
    let g = check(&mut dev, &backend);
    assert!(g.stored_once >= 150, "{g:?}");
    drop(backend);
    drop(broker);
}

/// The broker restarts mid-run (mosquitto killed, with what it held in memory, and started
/// again two minutes of device time later): the device reconnects and replays what the twin had
/// not acked, and the twin resubscribes; nothing is lost silently.
#[test]
fn a_broker_restart_mid_run_loses_nothing_silently() {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let Some(broker) = mosquitto(port, dir.path()) else { return };
    let backend = twin_on(port);
    let mut dev = device(&backend, "861234050000006");
    run(&mut dev, &backend, 120);
    dev.sync(&mut backend.quiet()).unwrap();
    drop(broker);
    run(&mut dev, &backend, 120);
    let _broker = mosquitto(port, dir.path()).unwrap();
    // Before the device goes on, the twin must be subscribed again (it reconnects on its own,
    // in real time): a probe message it stores says so.
    let probe = rumqttc::MqttOptions::new("probe", "127.0.0.1", port);
    let (client, mut connection) = rumqttc::Client::new(probe, 16);
    std::thread::spawn(move || for _ in connection.iter() {});
    let deadline = Instant::now() + Duration::from_secs(20);
    while backend.shadow("probe").unwrap().is_none() {
        assert!(Instant::now() < deadline, "the twin did not resubscribe after the broker restarted");
        client
            .publish(
                "twinbed/probe/up/state",
                rumqttc::QoS::AtLeastOnce,
                false,
                r#"{"boot":1,"t":0,"reported":{"up":1}}"#,
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    run(&mut dev, &backend, 300);
    let console = dev.take_console();
    assert!(console.contains("net: offline"), "the device saw the broker go: {console}");
    assert_eq!(
        console.matches("net: connected to broker.twinbed:1883").count(),
        2,
        "and reconnected once: {console}"
    );
    let g = check(&mut dev, &backend);
    assert!(g.stored_once > 450, "the readings from before, during and after the restart: {g:?}");
}

/// Stops the broker when the test ends, however it ends.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same modem model serves QEMU: UART1 is a `-chardev socket` to the modem's chardev
/// bridge, which talks MQTT to the twin. QEMU runs free here (wall-clock time, as the bridge
/// does), so this checks that the loop works, not byte-for-byte transcripts: the device comes
/// online, reports its state, and its first telemetry record reaches the twin.
#[test]
fn the_same_modem_serves_qemu_through_a_chardev_socket() {
    testkit::require_qemu();
    let backend = Backend::start(Default::default()).unwrap();
    let link = twinbed_modem::MqttLink::new(twinbed_modem::MqttLinkConfig::default()).unwrap();
    let link =
        twinbed::net::Redirect { inner: link, to: backend.broker(), now_ms: 0, transcript: Vec::new() };
    let mut modem = twinbed_modem::Modem::new(twinbed_modem::Timing::default());
    modem.set_imei("861234050000008").unwrap();
    let bridge = twinbed_modem::serve_chardev("127.0.0.1:0", modem, Box::new(link)).unwrap();
    let id = "d861234050000008";
    let cfg = twinbed_qemu::RunConfig {
        board: board(),
        elf: testkit::app(AppFlavour::AlwaysOnline),
        icount_shift: None,
        timeout: Duration::from_secs(60),
        sample_hook: None,
        initial_temperature: Some(21_500),
        preload: Vec::new(),
        serial1: Some(bridge.local_addr()),
    };
    struct UntilTelemetry<'a> {
        backend: &'a Backend,
        id: &'a str,
        console: String,
    }
    impl twinbed::Driver for UntilTelemetry<'_> {
        fn on_line(&mut self, line: &str) -> twinbed::Flow {
            self.console.push_str(line);
            self.console.push('\n');
            if self.backend.telemetry(self.id).map(|t| !t.is_empty()).unwrap_or(false) {
                twinbed::Flow::Stop
            } else {
                twinbed::Flow::Continue
            }
        }
        fn on_sample(&mut self, _: twinbed::SamplePoint) -> (Option<i32>, twinbed::Flow) {
            (None, twinbed::Flow::Continue)
        }
    }
    let mut driver = UntilTelemetry { backend: &backend, id, console: String::new() };
    let outcome = twinbed::runner::drive_qemu(&cfg, &mut driver).unwrap();
    let console = driver.console;
    bridge.stop();
    assert_eq!(outcome, twinbed::Outcome::Stopped, "no telemetry reached the twin:\n{console}");
    assert!(console.contains(&format!("net: connected to broker.twinbed:1883 as {id}")), "{console}");
    let t = backend.telemetry(id).unwrap();
    assert_eq!((t[0].first, t[0].n), (0, 10), "{t:?}");
    assert_eq!((t[0].min, t[0].max), (21_500, 21_500), "{t:?}");
    let shadow = backend.shadow(id).unwrap().expect("the device reported its state");
    assert_eq!(shadow.reported.get("slot"), Some(&serde_json::json!("a")), "{shadow:?}");
    let events = backend.events(id).unwrap();
    assert_eq!(events.first().map(|e| e.kind.as_str()), Some("boot"), "{events:?}");
}

/// The modem's power states reach the machine's energy accounts: the time the report gives
/// the modem's rx and tx states is the time the modem's own log spent in them (to within a
/// cycle per change: the runner hands each change over at the poll where it happens).
#[test]
fn the_modems_power_states_are_in_the_energy_report() {
    let backend = Backend::start(Default::default()).unwrap();
    let mut dev = device(&backend, "861234050000009");
    run(&mut dev, &backend, 120);
    let report = dev.machine().energy().expect("mps2-an385 has power figures");
    let log = dev.modem.power_log().to_vec();
    let now_ns = report.time_ns;
    let mut in_state = std::collections::BTreeMap::<String, u64>::new();
    for (k, &(t, state)) in log.iter().enumerate() {
        let end = log.get(k + 1).map_or(now_ns, |&(t2, _)| t2);
        *in_state.entry(format!("{state:?}").to_lowercase()).or_default() += end.saturating_sub(t);
    }
    let changes = log.len() as u64;
    for state in ["idle", "rx", "tx"] {
        let from_log = in_state.get(state).copied().unwrap_or(0);
        let reported = report.state("modem", state).map_or(0, |e| e.time_ns);
        assert!(from_log > 0, "the modem spent time in {state}: {log:?}");
        assert!(
            reported.abs_diff(from_log) <= 40 * changes,
            "{state}: report {reported} ns, modem log {from_log} ns ({changes} changes)"
        );
    }
    let g = check(&mut dev, &backend);
    let m = twinbed::energy::measured(&report, g.readings);
    assert!(m.radio_on_share() > 0.0 && m.radio_on_share() < 0.05, "{m:?}");
    assert!(m.average_current_ua() > 0.0, "{m:?}");
}
