//! End to end over a real embedded broker (rumqttd on a loopback port): a device (rumqttc,
//! writing with the firmware's own encoder and reading with the firmware's own parser)
//! publishes records and state, gets acks and desired state, disconnects, replays and
//! reorders across reconnects; the HTTP API shows the same shadow and history.
//!
//! No sleeps: every step waits on a condition (the twin's traffic counters, a message
//! arriving) with a timeout.

mod common;

use common::*;
use serde_json::json;
use telemetry::{Event, Slot, Version};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_session_end_to_end() {
    let twin = start_twin().await;
    let broker = twin.broker().clone();
    let dev = "dev-1";

    // --- First connection: boot event, two telemetry records, state. -------------------
    let mut d = Device::connect(&broker, dev, false).await;
    d.send_record(&event(1, 1, Event::Boot { slot: Slot::A, version: Version::new(1, 0, 0, 0) })).await;
    d.send_record(&tel(1, 2, 0, 10, 21_000)).await;
    d.send_record(&tel(1, 3, 10, 10, 21_500)).await;
    d.send_state(1, 3000, &reported(10, 0)).await;
    wait_received(&twin, dev, 4).await;
    assert_eq!(d.downs(3).await, [ack(1, 1), ack(1, 2), ack(1, 3)]);
    // No desired state exists: the state message is answered with nothing.
    assert_eq!(twin.traffic().device(dev).published, 3);

    // --- Desired over HTTP is published to the device at once. -------------------------
    let (status, shadow) = http(&twin, "GET", "/devices/dev-1/shadow", None).await;
    assert_eq!(status, 200);
    let v = shadow["version"].as_u64().unwrap();
    assert_eq!(v, 1);
    let (status, put) = http(
        &twin,
        "PUT",
        "/devices/dev-1/shadow/desired",
        Some(json!({"version": v, "state": {"interval_s": 60}})),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["published"], true);
    assert_eq!(put["state"]["delta"], json!({"interval_s": 60}));
    assert_eq!(d.next_down().await, desired(2, Some(60)));

    // --- Disconnect; a desired change while offline is queued by the broker. ------------
    d.disconnect().await;
    let (status, _) = http(
        &twin,
        "PUT",
        "/devices/dev-1/shadow/desired",
        Some(json!({"version": 2, "state": {"interval_s": 30}})),
    )
    .await;
    assert_eq!(status, 200);

    // --- Reconnect (session resumed): the queued desired arrives; the device replays ----
    // --- records 2 and 3 (their acks "were lost"), then sends 5 before 4. ---------------
    let mut d = Device::connect(&broker, dev, false).await;
    assert_eq!(d.next_down().await, desired(3, Some(30)));
    d.send_record(&tel(1, 2, 0, 10, 21_000)).await;
    d.send_record(&tel(1, 3, 10, 10, 21_500)).await;
    wait_received(&twin, dev, 6).await;
    // Each replayed duplicate is answered with the current watermark.
    assert_eq!(d.downs(2).await, [ack(1, 3), ack(1, 3)]);
    d.send_record(&tel(1, 5, 25, 5, 22_000)).await;
    wait_received(&twin, dev, 7).await;
    let published = twin.traffic().device(dev).published;
    d.send_record(&tel(1, 4, 20, 5, 21_800)).await;
    wait_received(&twin, dev, 8).await;
    // Seq 5 alone did not move the watermark (hole at 4): exactly one ack, for both.
    assert_eq!(twin.traffic().device(dev).published, published + 1);
    assert_eq!(d.next_down().await, ack(1, 5));

    // --- The device applies desired and reports it. -------------------------------------
    d.send_record(&event(1, 6, Event::DesiredApplied { version: 3 })).await;
    d.send_state(1, 7000, &reported(30, 0)).await;
    wait_received(&twin, dev, 10).await;
    assert_eq!(d.next_down().await, ack(1, 6));
    let (_, shadow) = http(&twin, "GET", "/devices/dev-1/shadow", None).await;
    assert_eq!(shadow["state"]["delta"], json!({}));

    // --- Reboot: boot 2, seqs restart; a state that differs from desired gets desired. ---
    d.disconnect().await;
    let mut d = Device::connect(&broker, dev, false).await;
    d.send_record(&event(2, 1, Event::Revert)).await;
    d.send_state(2, 10, &reported(10, 1)).await;
    wait_received(&twin, dev, 12).await;
    assert_eq!(d.downs(2).await, [ack(2, 1), desired(5, Some(30))]);

    // --- Everything the twin published reached the device, nothing more. ---------------
    let t = twin.traffic().device(dev);
    assert_eq!(t.received, 12);
    assert_eq!(t.published, 3 + 1 + 1 + 2 + 1 + 1 + 2);
    assert_eq!(d.pending_downs(), 0);

    // --- The HTTP API shows the same thing. ---------------------------------------------
    let (status, shadow) = http(&twin, "GET", "/devices/dev-1/shadow", None).await;
    assert_eq!(status, 200);
    assert_eq!(shadow["device"], "dev-1");
    assert_eq!(shadow["version"], 5);
    assert_eq!(
        shadow["state"]["reported"],
        json!({"slot":"a","version":"1.0.0","interval_s":10,"buffered":1,"dropped":0})
    );
    assert_eq!(shadow["state"]["desired"], json!({"interval_s":30}));
    assert_eq!(shadow["state"]["delta"], json!({"interval_s":30}));

    let (_, rows) = http(&twin, "GET", "/devices/dev-1/telemetry", None).await;
    let seqs: Vec<(u64, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["boot"].as_u64().unwrap(), r["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(seqs, [(1, 2), (1, 3), (1, 4), (1, 5)]);
    assert_eq!(
        rows[0],
        json!({"boot":1,"seq":2,"t":2000,"first":0,"n":10,"min":20900,"max":21100,"mean":21000})
    );
    let (_, rows) = http(&twin, "GET", "/devices/dev-1/telemetry?boot=1&since=3&limit=1", None).await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["seq"], 4);

    let (_, events) = http(&twin, "GET", "/devices/dev-1/events", None).await;
    assert_eq!(
        events,
        json!([
            {"boot":1,"seq":1,"t":1000,"kind":"boot","slot":"a","version":"1.0.0"},
            {"boot":1,"seq":6,"t":6000,"kind":"desired_applied","version":3},
            {"boot":2,"seq":1,"t":1000,"kind":"revert"},
        ])
    );

    let (_, devices) = http(&twin, "GET", "/devices", None).await;
    assert_eq!(
        devices,
        json!([{"id":"dev-1","received":12,"duplicates":2,"last_boot":2,"version":5,
                "watermarks":[{"boot":1,"seq":6},{"boot":2,"seq":1}]}])
    );
    let (_, stats) = http(&twin, "GET", "/stats", None).await;
    assert_eq!(stats["rejected_total"], 0);
    assert_eq!(stats["counters"]["duplicates"], 2);
    assert_eq!(stats["counters"]["stored_telemetry"], 4);
    assert_eq!(stats["counters"]["stored_events"], 3);
    assert_eq!(stats["counters"]["accepted_states"], 3);
    assert_eq!(stats["devices"], 1);
    assert_eq!(stats["mqtt"], json!({"received": 12, "published": 11}));

    let (status, err) = http(&twin, "GET", "/devices/nobody/shadow", None).await;
    assert_eq!((status, err["error"].as_str()), (404, Some("unknown_device")));
    let (status, _) = http(&twin, "GET", "/devices/bad%20id/telemetry", None).await;
    assert_eq!(status, 400);
    let (status, _) = http(&twin, "GET", "/devices/dev-1/telemetry?limit=0", None).await;
    assert_eq!(status, 400);

    d.disconnect().await;
    twin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_records_are_acked_through_the_broker() {
    let twin = start_twin().await;
    let mut d = Device::connect(twin.broker(), "dev-2", true).await;
    d.send_record(&tel(4, 1, 0, 5, 20_000)).await;
    // Records 2..=4 were dropped by the device's outbox; the dropped event takes seq 5.
    let mut buf = [0u8; telemetry::MAX_RECORD_LEN];
    let drop = telemetry::Record {
        boot: 4,
        seq: 5,
        t: 5000,
        body: telemetry::Body::Dropped(telemetry::DropRange { from: 2, to: 4, readings: 15 }),
    };
    let n = telemetry::encode_record(&drop, &mut buf).unwrap();
    d.publish("up/event", buf[..n].to_vec(), false).await;
    wait_received(&twin, "dev-2", 2).await;
    assert_eq!(d.downs(2).await, [ack(4, 1), ack(4, 5)]);
    d.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_desired_write_is_refused_with_a_clear_error() {
    let twin = start_twin().await;
    let mut d = Device::connect(twin.broker(), "dev-3", true).await;
    d.send_state(1, 0, &reported(10, 0)).await;
    wait_received(&twin, "dev-3", 1).await;

    // Two operators read version 1; the first write wins.
    let (status, _) = http(
        &twin,
        "PUT",
        "/devices/dev-3/shadow/desired",
        Some(json!({"version":1,"state":{"interval_s":5}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(d.next_down().await, desired(2, Some(5)));
    let published = twin.traffic().device("dev-3").published;

    let (status, err) = http(
        &twin,
        "PUT",
        "/devices/dev-3/shadow/desired",
        Some(json!({"version":1,"state":{"interval_s":99}})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(err["error"], "stale_version");
    assert_eq!(err["device"], "dev-3");
    assert_eq!(err["expected"], 1);
    assert_eq!(err["current"], 2);
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("stale") && message.contains("version 2"), "{message}");

    // Nothing changed, nothing was sent.
    let (_, shadow) = http(&twin, "GET", "/devices/dev-3/shadow", None).await;
    assert_eq!(shadow["version"], 2);
    assert_eq!(shadow["state"]["desired"], json!({"interval_s":5}));
    assert_eq!(twin.traffic().device("dev-3").published, published);

    // The same through the library call.
    match twin.set_desired("dev-3", 1, json!({"interval_s":1})).await {
        Err(twinbed_twin::Error::StaleVersion { current: 2, expected: 1, .. }) => {}
        other => panic!("expected StaleVersion, got {other:?}"),
    }

    // Bad bodies are 400 with a JSON error.
    for body in [
        json!({"state":{}}),
        json!({"version":2,"state":[1]}),
        json!({"version":2,"state":{"a":1.5}}),
        json!({"version":2,"state":{},"extra":1}),
    ] {
        let (status, err) = http(&twin, "PUT", "/devices/dev-3/shadow/desired", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert!(err["error"].is_string());
    }
    d.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_broker_window_with_a_full_replay() {
    // More messages in flight than rumqttd's window of 100, each answered by an ack: the case
    // that deadlocks when the twin's own outgoing window is not larger than the broker's.
    let twin = start_twin().await;
    let mut d = Device::connect(twin.broker(), "dev-4", true).await;
    const N: u32 = 400;
    for seq in 1..=N {
        d.send_record(&tel(1, seq, seq, 1, 20_000)).await;
    }
    // The device lost every ack and replays everything.
    for seq in 1..=N {
        d.send_record(&tel(1, seq, seq, 1, 20_000)).await;
    }
    wait_received(&twin, "dev-4", 2 * N as u64).await;
    let downs = d.downs(2 * N as usize).await;
    assert_eq!(downs[..N as usize], (1..=N).map(|s| ack(1, s)).collect::<Vec<_>>()[..]);
    assert!(downs[N as usize..].iter().all(|a| *a == ack(1, N)));
    let (_, rows) = http(&twin, "GET", "/devices/dev-4/telemetry?limit=10000", None).await;
    assert_eq!(rows.as_array().unwrap().len(), N as usize);
    let (_, stats) = http(&twin, "GET", "/stats", None).await;
    assert_eq!(stats["counters"]["duplicates"], N);
    d.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_twin_resumes_its_session_on_an_external_broker() {
    // The broker is "external" to the twins (started separately, reached by URL); the twin's
    // persistent session keeps what devices publish while the twin is down.
    let broker = twinbed_twin::EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("twinbed-twin-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("restart.db");
    let _ = std::fs::remove_file(&db);
    let config = twinbed_twin::TwinConfig {
        db: twinbed_twin::DbLocation::File(db.clone()),
        broker: twinbed_twin::BrokerChoice::Url(broker.url()),
        client_id: "twin-restart".into(),
        ..twinbed_twin::TwinConfig::default()
    };

    let twin = twinbed_twin::Twin::start(config.clone()).await.unwrap();
    assert_eq!(twin.embedded_broker(), None);
    let mut d = Device::connect(twin.broker(), "dev-5", false).await;
    d.send_record(&tel(1, 1, 0, 1, 20_000)).await;
    wait_received(&twin, "dev-5", 1).await;
    assert_eq!(d.next_down().await, ack(1, 1));
    twin.shutdown().await;

    // The twin is down: the broker keeps these for its session.
    d.send_record(&tel(1, 2, 1, 1, 20_000)).await;
    d.send_record(&tel(1, 3, 2, 1, 20_000)).await;

    let twin = twinbed_twin::Twin::start(config).await.unwrap();
    wait_received(&twin, "dev-5", 2).await;
    assert_eq!(d.downs(2).await, [ack(1, 2), ack(1, 3)]);
    let seqs = twin
        .query(|s| s.telemetry("dev-5", &twinbed_twin::HistoryQuery::default()))
        .await
        .unwrap()
        .iter()
        .map(|t| t.seq)
        .collect::<Vec<_>>();
    assert_eq!(seqs, [1, 2, 3]);
    d.disconnect().await;
    twin.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
