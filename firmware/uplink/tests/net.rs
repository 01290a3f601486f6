//! The connection state machine against the fake modem: the exact AT lines and payloads of a
//! connect, telemetry and acks, desired states, link loss and replay, backoff, no modem, and
//! publish windows (the radio off between them).

mod common;

use common::{field, FakeModem, Rig, BOOT, DEV, IMEI};
use telemetry::DropRange;
use uplink::{
    Note, Phase, Radio, Reason, Stage, BACKOFF_CAP_MS, LINGER_MS, OUTBOX_SLOTS, PROBE_MS, RECORDS_IN_FLIGHT,
    WINDOW_MAX_MS,
};

fn online(rig: &mut Rig) {
    rig.run_until(5_000, |r| r.net.phase() == Phase::Online && r.net.modem().is_idle());
}

/// Window `k` of 10 readings, all `k` °C: every window's mean leaves the deadband, so every
/// window is a record.
fn steps(i: u32) -> i32 {
    (i / 10) as i32 * 1000
}

#[test]
fn no_modem_says_so_once_and_probes_quietly_with_backoff() {
    let mut rig = Rig::new(FakeModem::absent());
    // Ten minutes of readings at 1 s.
    rig.readings(600, |_| 21_500);
    assert_eq!(rig.notes, [(PROBE_MS, Note::NoModem)], "one note, at the first probe's timeout");
    let probes = rig.fake().log.clone();
    assert!(probes.iter().all(|(_, l)| l == "AT"), "only AT is ever sent: {probes:?}");
    assert_eq!(probes[0].0, 0);
    // Gaps: the probe's 500 ms plus a backoff delay in [c/2, c], c = 1 s, 2 s, ... 60 s.
    let mut c = 1_000u32;
    for w in probes.windows(2) {
        let gap = w[1].0 - w[0].0 - PROBE_MS;
        assert!(gap >= c / 2 && gap <= c + 10, "gap {gap} for step {c}");
        c = (c * 2).min(BACKOFF_CAP_MS);
    }
    assert!(probes.len() >= 12 && probes.len() < 20, "{}", probes.len());
    // The readings stay on the device: the boot event and one record a minute (the
    // heartbeat: a steady temperature folds 6 windows into one record).
    assert_eq!(rig.net.outbox().len(), 1 + 10);
    assert!(matches!(rig.net.phase(), Phase::Backoff { next: Stage::Probe, .. } | Phase::Probe));
}

#[test]
fn connects_with_the_exact_protocol_lines_and_payloads() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    rig.fake().latency_ms = 1;
    online(&mut rig);
    assert_eq!(rig.notes(), [Note::Connected]);
    assert_eq!(rig.net.device_id(), DEV);
    let log: Vec<String> = rig.fake().log.iter().map(|(_, l)| l.clone()).collect();
    let event = format!(r#"{{"boot":{BOOT},"seq":1,"t":0,"kind":"boot","slot":"a","version":"1.2.3"}}"#);
    let pubs = rig.fake().published.clone();
    let state = &pubs[1].payload;
    assert_eq!(
        log,
        [
            "AT".to_string(),
            "AT+GSN".into(),
            "AT+CFUN=1".into(),
            // The +CEREG: 1 URC came with CFUN's OK: registered, no AT+CEREG? needed.
            r#"AT+QMTOPEN=0,"broker.twinbed",1883"#.into(),
            format!(r#"AT+QMTCONN=0,"{DEV}""#),
            format!(r#"AT+QMTSUB=0,1,"twinbed/{DEV}/down",1"#),
            format!(r#"AT+QMTPUBEX=0,2,1,0,"twinbed/{DEV}/up/event",{}"#, event.len()),
            format!(r#"AT+QMTPUBEX=0,3,1,1,"twinbed/{DEV}/up/state",{}"#, state.len()),
        ]
    );
    assert_eq!(pubs[0].payload, event);
    assert_eq!((pubs[0].qos, pubs[0].retain), (1, false));
    let t = field(state, "t").unwrap();
    assert_eq!(
        *state,
        format!(
            r#"{{"boot":{BOOT},"t":{t},"reported":{{"slot":"a","version":"1.2.3","interval_s":1,"buffered":1,"dropped":0}}}}"#
        )
    );
    assert_eq!((pubs[1].qos, pubs[1].retain), (1, true));
    assert_eq!(rig.fake().subscriptions, [format!("twinbed/{DEV}/down")]);
    // Idle and online: nothing to do until a reading or a byte from the modem.
    assert_eq!(rig.net.wake_at(rig.now), None);
}

#[test]
fn telemetry_goes_out_and_acks_empty_the_outbox() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    let values = [21_000, 21_500, 22_000, 21_000, 20_000, 21_000, 21_000, 21_000, 21_000, 21_010];
    for v in values {
        rig.run(990);
        rig.net.reading(rig.now, v);
        rig.poll();
    }
    let pubs = rig.fake().published.clone();
    let tel: Vec<_> = pubs.iter().filter(|p| p.topic.ends_with("/up/telemetry")).collect();
    assert_eq!(tel.len(), 1);
    let t = rig.now;
    assert_eq!(
        tel[0].payload,
        format!(r#"{{"boot":{BOOT},"seq":2,"t":{t},"first":0,"n":10,"min":20000,"max":22000,"mean":21051}}"#)
    );
    assert_eq!(tel[0].topic, format!("twinbed/{DEV}/up/telemetry"));
    assert_eq!(rig.net.outbox().len(), 2);
    rig.ack_published();
    assert_eq!(rig.net.outbox().len(), 0);
    assert_eq!(rig.net.stats().acks, 1);
    // A window inside the deadband is folded, not sent.
    rig.readings(10, |_| 21_060);
    assert_eq!(rig.fake().published.len(), pubs.len(), "within 100 m°C of the last mean");
    assert_eq!(rig.net.aggregator().pending_readings(), 10);
}

#[test]
fn at_most_three_records_await_their_puback() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    rig.fake().hold_pubacks = true;
    // Quicker than the 30 s PUBACK timeout.
    for i in 0..80 {
        rig.net.reading(rig.now, steps(i));
    }
    rig.run(100);
    // 8 windows, each a record (seq 2..=9): three go out, the rest wait for PUBACKs.
    assert_eq!(rig.published_seqs(), [1, 2, 3, 4]);
    assert_eq!(rig.net.modem().publishes_in_flight(), RECORDS_IN_FLIGHT);
    assert!(rig.net.wake_at(rig.now).is_some(), "PUBACKs are owed: keep polling");
    rig.fake().release_pubacks();
    rig.poll();
    assert_eq!(rig.published_seqs(), [1, 2, 3, 4, 5, 6, 7]);
    rig.fake().hold_pubacks = false;
    rig.fake().release_pubacks();
    rig.run(100);
    assert_eq!(rig.published_seqs(), (1..=9).collect::<Vec<_>>());
    assert!(rig.notes().iter().all(|n| *n == Note::Connected), "no note per publish: {:?}", rig.notes);
}

#[test]
fn desired_sets_the_interval_once_per_requested_value() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    let before = rig.fake().published.len();
    rig.down(r#"{"type":"desired","version":4,"state":{"interval_s":5,"led":true}}"#);
    assert_eq!(rig.notes().last(), Some(&Note::DesiredApplied { version: 4, interval_s: 5 }));
    assert_eq!(rig.net.interval_s(), 5);
    rig.run(50);
    let new: Vec<_> = rig.fake().published[before..].to_vec();
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(new[0].topic.ends_with("/up/state") && new[0].payload.contains(r#""interval_s":5"#));
    assert!(new[1].payload.ends_with(r#","kind":"desired_applied","version":4}"#), "{}", new[1].payload);
    // The twin re-sends desired (new version: the reported state changed, and "led" is not
    // reported): the same interval is not acted on again, so nothing loops.
    rig.down(r#"{"type":"desired","version":6,"state":{"interval_s":5,"led":true}}"#);
    rig.down(r#"{"type":"desired","version":7,"state":{"interval_s":null}}"#);
    rig.run(50);
    assert_eq!(rig.fake().published.len(), before + 2);
    // Out of range: clamped.
    rig.down(r#"{"type":"desired","version":8,"state":{"interval_s":0}}"#);
    assert_eq!(rig.notes().last(), Some(&Note::DesiredApplied { version: 8, interval_s: 1 }));
    rig.down(r#"{"type":"desired","version":9,"state":{"interval_s":4000000000}}"#);
    assert_eq!(rig.net.interval_s(), uplink::MAX_INTERVAL_S);
}

#[test]
fn bad_down_messages_and_other_boots_change_nothing() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    rig.down("not json");
    rig.down(r#"{"type":"reboot"}"#);
    rig.down(&format!(r#"{{"type":"ack","boot":{},"seq":99}}"#, BOOT + 1));
    rig.fake().deliver("twinbed/other/down", r#"{"type":"ack","boot":7,"seq":1}"#);
    rig.poll();
    assert_eq!(rig.net.stats().down_rejected, 2);
    assert_eq!(rig.net.stats().down_ignored, 1);
    assert_eq!(rig.net.outbox().len(), 1, "the boot event is still there");
    assert_eq!(rig.notes(), [Note::Connected]);
    assert_eq!(rig.net.phase(), Phase::Online);
}

#[test]
fn link_loss_backs_off_reopens_and_resends_what_is_unacked() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    rig.readings(30, steps);
    assert_eq!(rig.published_seqs(), [1, 2, 3, 4]);
    rig.down(&format!(r#"{{"type":"ack","boot":{BOOT},"seq":2}}"#));
    let lost_at = rig.now;
    rig.fake().drop_link(1);
    rig.poll();
    assert_eq!(rig.notes().last(), Some(&Note::LinkLost { err: 1, unacked: 2 }));
    let log_len = rig.fake().log.len();
    online(&mut rig);
    let again: Vec<_> = rig.fake().log[log_len..].to_vec();
    let delay = again[0].0 - lost_at;
    assert!((500..=1000).contains(&delay), "first backoff delay {delay}");
    let names: Vec<_> = again.iter().map(|(_, l)| l.split('=').next().unwrap()).collect();
    assert_eq!(names[..3], ["AT+QMTOPEN", "AT+QMTCONN", "AT+QMTSUB"], "registered: no AT, no CFUN");
    // Seqs 3 and 4 were not acked: sent again, oldest first, then the state.
    assert_eq!(rig.published_seqs(), [1, 2, 3, 4, 3, 4]);
    assert_eq!(rig.notes().last(), Some(&Note::Connected));
    assert_eq!(rig.net.stats().connects, 2);
}

#[test]
fn broker_down_is_said_once_and_retried_with_growing_delays() {
    let mut fake = FakeModem::new(IMEI);
    fake.broker_up = false;
    let mut rig = Rig::new(fake);
    rig.run(120_000);
    assert_eq!(rig.notes(), [Note::Offline(Reason::Open(Some(5)))]);
    let opens = rig.fake().lines("AT+QMTOPEN");
    assert!(opens.len() >= 6, "{opens:?}");
    let mut c = 1_000;
    for w in opens.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= c / 2 && gap <= c + 10, "gap {gap} for step {c}");
        c = (c * 2).min(BACKOFF_CAP_MS);
    }
    rig.fake().broker_up = true;
    rig.run_until(70_000, |r| r.net.phase() == Phase::Online);
    assert_eq!(rig.notes().last(), Some(&Note::Connected));
    // The backoff starts over: a drop now is retried after about a second.
    let at = rig.now;
    rig.fake().drop_link(1);
    rig.run_until(2_000, |r| r.fake().lines("AT+QMTOPEN").last().unwrap().0 > at);
}

#[test]
fn coverage_loss_waits_for_registration_before_opening() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    rig.fake().set_coverage(false);
    rig.poll();
    assert_eq!(rig.notes().last(), Some(&Note::LinkLost { err: 7, unacked: 1 }));
    let opens = rig.fake().lines("AT+QMTOPEN").len();
    rig.run(30_000);
    assert_eq!(rig.fake().lines("AT+QMTOPEN").len(), opens, "no open without coverage");
    assert_eq!(rig.net.phase(), Phase::Register);
    assert_eq!(
        rig.fake().lines("AT+CEREG?").len(),
        1,
        "asked after the loss (at the start, +CEREG: 1 came first)"
    );
    let back = rig.now;
    rig.fake().set_coverage(true);
    online(&mut rig);
    assert!(rig.now - back <= 50, "opens as soon as +CEREG: 1 arrives");
    assert_eq!(rig.notes().len(), 3);
    // No coverage for longer than REGISTER_MS: said once, then quiet.
    rig.fake().set_coverage(false);
    rig.run(200_000);
    assert_eq!(rig.notes()[3..], [Note::LinkLost { err: 7, unacked: 1 }]);
}

#[test]
fn a_failed_imei_gives_the_fallback_device_id() {
    let mut fake = FakeModem::new(IMEI);
    fake.imei = None;
    let mut rig = Rig::new(fake);
    online(&mut rig);
    assert_eq!(rig.net.device_id(), "d000000000000000");
    assert_eq!(rig.fake().client_id.as_deref(), Some("d000000000000000"));
    let wrong = FakeModem::new("12345");
    let mut rig = Rig::new(wrong);
    online(&mut rig);
    assert_eq!(rig.net.device_id(), "d000000000000000", "not 15 digits");
}

#[test]
fn a_client_left_open_is_closed_and_reopened_at_once() {
    let mut fake = FakeModem::new(IMEI);
    fake.open = true;
    let mut rig = Rig::new(fake);
    online(&mut rig);
    let names = rig.fake().commands();
    assert_eq!(names[3..7], ["AT+QMTOPEN", "AT+QMTCLOSE", "AT+QMTOPEN", "AT+QMTCONN"], "{names:?}");
    assert_eq!(rig.notes(), [Note::Connected]);
    assert!(rig.now < 100, "no backoff");
}

#[test]
fn a_missing_puback_closes_and_reconnects() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    rig.fake().hold_pubacks = true;
    rig.readings(10, steps);
    rig.run(31_000);
    assert_eq!(rig.notes()[1], Note::Offline(Reason::Publish));
    assert!(rig.fake().commands().contains(&"AT+QMTCLOSE".to_string()));
    rig.fake().hold_pubacks = false;
    rig.fake().held.clear();
    rig.run_until(5_000, |r| r.net.phase() == Phase::Online);
    rig.run(100);
    let seqs = rig.published_seqs();
    assert_eq!(seqs[seqs.len() - 2..], [1, 2], "the unacked records again: {seqs:?}");
}

#[test]
fn an_overflow_while_offline_is_reported_once_when_the_dropped_event_goes_out() {
    let mut fake = FakeModem::new(IMEI);
    fake.coverage = false;
    let mut rig = Rig::new(fake);
    // 70 records, each a window of 10 readings, into 63 ordinary slots: 8 telemetry records
    // dropped (the boot event stays).
    rig.readings(700, steps);
    assert_eq!(rig.notes(), [Note::Offline(Reason::NoCoverage)]);
    assert_eq!(rig.net.outbox().dropped_records(), 8);
    rig.fake().set_coverage(true);
    rig.run_until(10_000, |r| r.net.phase() == Phase::Online);
    rig.run_until(10_000, |r| r.net.outbox().unsent() == 0 && r.net.modem().is_idle());
    let dropped = DropRange { from: 2, to: 9, readings: 80 };
    assert_eq!(rig.notes()[1..], [Note::Connected, Note::Dropped(dropped)]);
    let is_dropped = |p: &&common::Published| p.payload.contains(r#""kind":"dropped""#);
    let ev = rig.fake().published.iter().find(is_dropped).unwrap().payload.clone();
    assert!(ev.contains(r#""kind":"dropped","from":2,"to":9,"readings":80"#), "{ev}");
    // Sent again after a link loss, but not announced again.
    rig.fake().drop_link(1);
    rig.run_until(10_000, |r| r.net.phase() == Phase::Online);
    rig.run(2_000);
    assert_eq!(rig.fake().published.iter().filter(is_dropped).count(), 2);
    assert_eq!(rig.notes().iter().filter(|n| matches!(n, Note::Dropped(_))).count(), 1);
    rig.ack_published();
    assert_eq!(rig.net.outbox().len(), 0);
}

#[test]
fn a_modem_that_appears_later_is_found_and_connects() {
    let mut rig = Rig::new(FakeModem::absent());
    rig.run(5_000);
    rig.fake().present = true;
    rig.run_until(10_000, |r| r.net.phase() == Phase::Online);
    assert_eq!(rig.notes(), [Note::NoModem, Note::ModemFound, Note::Connected]);
    assert_eq!(rig.net.device_id(), DEV);
}

#[test]
fn runs_are_deterministic_and_devices_spread_out() {
    let run = |imei: &str, boot: u32| {
        let mut fake = FakeModem::new(imei);
        fake.broker_up = false;
        let mut rig = Rig::with(fake, boot);
        rig.run(200_000);
        rig.fake().lines("AT+QMTOPEN").iter().map(|(t, _)| *t).collect::<Vec<_>>()
    };
    let a = run(IMEI, 3);
    assert_eq!(a, run(IMEI, 3), "same device, same boot: same times");
    assert_ne!(a, run("866425030012346", 3), "another device");
    assert_ne!(a, run(IMEI, 4), "another boot");
}

#[test]
fn sleeping_is_allowed_only_when_nothing_is_owed() {
    let mut rig = Rig::new(FakeModem::absent());
    rig.poll();
    assert_eq!(rig.net.wake_at(rig.now), Some(rig.now + 10), "a probe is on the line");
    rig.run(PROBE_MS);
    let Phase::Backoff { until, .. } = rig.net.phase() else { panic!("{:?}", rig.net.phase()) };
    assert_eq!(rig.net.wake_at(rig.now), Some(until));
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    assert_eq!(rig.net.wake_at(rig.now), None);
    rig.net.reading(rig.now, 1);
    assert_eq!(rig.net.wake_at(rig.now), None, "a reading in a window is not a record");
    rig.readings(9, |_| 1);
    assert_eq!(rig.net.outbox().unsent(), 0, "the record went out at once");
    assert_eq!(rig.net.wake_at(rig.now), None);
}

#[test]
fn a_modem_that_restarted_gets_its_radio_back_on() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    rig.fake().restart();
    // The next record's publish fails (not connected): close, back off, reopen: +QMTOPEN 3
    // (radio off), then AT+CEREG? says 0 and the radio goes on again.
    rig.readings(10, steps);
    rig.run_until(10_000, |r| r.net.phase() == Phase::Online);
    let names = rig.fake().commands();
    let close = names.iter().rposition(|n| n == "AT+QMTCLOSE").unwrap();
    assert_eq!(
        names[close + 1..close + 7],
        ["AT+QMTOPEN", "AT+CEREG?", "AT+CFUN", "AT+QMTOPEN", "AT+QMTCONN", "AT+QMTSUB"],
        "{names:?}"
    );
    assert_eq!(rig.notes(), [Note::Connected, Note::Offline(Reason::Publish), Note::Connected]);
}

#[test]
fn an_imei_query_without_answer_is_asked_again_later() {
    let mut fake = FakeModem::new(IMEI);
    fake.latency_ms = 1;
    let mut rig = Rig::new(fake);
    // AT is answered, then the modem goes silent before AT+GSN.
    rig.run_until(100, |r| r.net.phase() == Phase::Imei);
    rig.fake().restart();
    rig.fake().present = false;
    rig.run(3_000);
    assert!(matches!(rig.net.phase(), Phase::Backoff { next: Stage::Probe, .. } | Phase::Probe));
    assert_eq!(rig.net.device_id(), "d000000000000000", "not settled yet");
    rig.fake().present = true;
    rig.run_until(10_000, |r| r.net.phase() == Phase::Online);
    assert_eq!(rig.net.device_id(), DEV);
    assert_eq!(rig.fake().lines("AT+GSN").len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Publish windows
// ---------------------------------------------------------------------------------------------

/// A rig whose device uses publish windows from boot.
fn windowed(every_s: u32, radio_off: bool) -> Rig {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    rig.net.set_radio_policy(Radio::Windows { every_s, radio_off });
    rig
}

/// The log's lines from index `from` on, with their times.
fn log_since(rig: &mut Rig, from: usize) -> Vec<(u32, String)> {
    rig.fake().log[from..].to_vec()
}

/// The `AT+QMTPUBEX` line of publish `i` (the fake's record of it).
fn pubex_line(rig: &mut Rig, i: usize) -> String {
    let p = rig.fake().published[i].clone();
    format!(r#"AT+QMTPUBEX=0,{},1,{},"{}",{}"#, p.msg_id, u8::from(p.retain), p.topic, p.payload.len())
}

#[test]
fn a_window_closes_when_all_is_acked_sleeps_with_the_radio_off_and_reopens_on_time() {
    let mut rig = windowed(60, true);
    online(&mut rig);
    assert_eq!(rig.now, 0);
    assert_eq!(rig.published_seqs(), [1]);
    // The boot event is not acked yet: the window stays open (until WINDOW_MAX_MS).
    assert_eq!(rig.net.wake_at(rig.now), Some(WINDOW_MAX_MS));
    rig.run(500);
    rig.ack_published();
    assert_eq!(rig.net.outbox().len(), 0);
    // Everything done: LINGER_MS after the ack (the last word from the broker) it closes.
    assert_eq!(rig.net.wake_at(rig.now), Some(500 + LINGER_MS));
    let mark = rig.fake().log.len();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.now, 1_500);
    assert_eq!(
        log_since(&mut rig, mark),
        [(1_500, "AT+QMTCLOSE=0".to_string()), (1_500, "AT+CFUN=0".into())]
    );
    assert!(!rig.fake().radio && !rig.fake().open);
    // The next window 60 s after this one opened (at boot).
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 60_000 });
    assert_eq!(rig.net.wake_at(rig.now), Some(60_000));
    assert_eq!(rig.net.stats().windows, 1);

    // 58 readings asleep: five records (seqs 2..=6) wait; not a byte goes to the modem.
    let mark = rig.fake().log.len();
    rig.readings(58, steps);
    assert_eq!(rig.now, 59_500);
    assert_eq!(rig.net.outbox().unsent(), 5);
    assert_eq!(rig.fake().log.len(), mark, "{:?}", log_since(&mut rig, mark));
    assert_eq!(rig.net.wake_at(rig.now), Some(60_000));

    // At 60 s: radio on, registered (the +CEREG: 1 came with CFUN's OK), open, connect,
    // subscribe, then the first unsent record, the state, the rest.
    let pubs = rig.fake().published.len();
    rig.run_until(1_000, |r| r.net.phase() == Phase::Online && r.net.modem().is_idle());
    assert_eq!(rig.now, 60_000);
    let mut want = vec![
        "AT+CFUN=1".to_string(),
        r#"AT+QMTOPEN=0,"broker.twinbed",1883"#.into(),
        format!(r#"AT+QMTCONN=0,"{DEV}""#),
        format!(r#"AT+QMTSUB=0,4,"twinbed/{DEV}/down",1"#),
    ];
    for i in pubs..rig.fake().published.len() {
        want.push(pubex_line(&mut rig, i));
    }
    let got = log_since(&mut rig, mark);
    assert!(got.iter().all(|(t, _)| *t == 60_000), "{got:?}");
    assert_eq!(got.into_iter().map(|(_, l)| l).collect::<Vec<_>>(), want);
    let new: Vec<_> = rig.fake().published[pubs..].to_vec();
    assert_eq!(new.len(), 6);
    assert!(new[1].topic.ends_with("/up/state") && new[1].payload.contains(r#""buffered":5"#), "{new:?}");
    assert_eq!(rig.published_seqs(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(rig.fake().subscriptions.len(), 2, "subscribed again: the session is clean");
    // A routine window is not news.
    assert_eq!(rig.notes(), [Note::Connected]);
    assert_eq!(rig.net.stats().connects, 2);

    // Acked: closed again a second later, asleep until 120 s.
    rig.ack_published();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.now, 60_000 + LINGER_MS);
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 120_000 });
    assert_eq!(rig.fake().commands()[rig.fake().log.len() - 2..], ["AT+QMTCLOSE", "AT+CFUN"]);
    assert_eq!(rig.notes(), [Note::Connected]);
}

#[test]
fn without_radio_off_a_window_only_closes_the_link_and_reopens_it_directly() {
    let mut rig = windowed(30, false);
    online(&mut rig);
    rig.ack_published();
    let mark = rig.fake().log.len();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.now, LINGER_MS);
    assert_eq!(log_since(&mut rig, mark), [(LINGER_MS, "AT+QMTCLOSE=0".to_string())]);
    assert!(rig.fake().radio, "still registered");
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 30_000 });
    // A +QMTSTAT while asleep (nothing is open) is not a link loss.
    rig.fake().say("+QMTSTAT: 0,7");
    rig.poll();
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 30_000 });
    assert_eq!(rig.notes(), [Note::Connected]);
    rig.readings(10, steps);
    let mark = rig.fake().log.len();
    rig.run_until(30_000, |r| r.net.phase() == Phase::Online && r.net.modem().is_idle());
    assert_eq!(rig.now, 30_000);
    let names: Vec<_> = log_since(&mut rig, mark).into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        names,
        [
            r#"AT+QMTOPEN=0,"broker.twinbed",1883"#.to_string(),
            format!(r#"AT+QMTCONN=0,"{DEV}""#),
            format!(r#"AT+QMTSUB=0,4,"twinbed/{DEV}/down",1"#),
            pubex_line(&mut rig, 2),
            pubex_line(&mut rig, 3),
        ]
    );
    assert_eq!(rig.published_seqs(), [1, 2]);
    assert_eq!(rig.fake().lines("AT+CFUN"), [(0, "AT+CFUN=1".to_string())], "only the boot's");
    // Switched to always-on while asleep: the link opens at once and stays.
    rig.ack_published();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    rig.net.set_radio_policy(Radio::AlwaysOn);
    assert_eq!(rig.net.wake_at(rig.now), Some(rig.now));
    online(&mut rig);
    rig.run(WINDOW_MAX_MS + 10_000);
    assert_eq!(rig.net.phase(), Phase::Online);
    assert_eq!(rig.notes(), [Note::Connected]);
}

#[test]
fn an_outbox_half_full_opens_the_window_early() {
    let mut rig = windowed(3_600, true);
    online(&mut rig);
    rig.ack_published();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 3_600_000 });
    // 31 records of 10 readings each: still asleep.
    rig.readings(319, steps);
    assert!(matches!(rig.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.net.outbox().unsent(), OUTBOX_SLOTS / 2 - 1);
    assert_eq!(rig.net.wake_at(rig.now), Some(3_600_000));
    // The 32nd: the window opens at once, not in an hour.
    rig.run(1000);
    rig.net.reading(rig.now, steps(319));
    assert_eq!(rig.net.outbox().unsent(), OUTBOX_SLOTS / 2);
    assert_eq!(rig.net.wake_at(rig.now), Some(rig.now));
    let (at, mark) = (rig.now, rig.fake().log.len());
    rig.poll();
    assert_eq!(rig.fake().log[mark], (at, "AT+CFUN=1".to_string()));
    rig.run_until(1_000, |r| r.net.phase() == Phase::Online && r.net.outbox().unsent() == 0);
    assert_eq!(rig.published_seqs(), (1..=33).collect::<Vec<_>>());
    assert_eq!(rig.net.outbox().dropped_records(), 0);
    // Acked: asleep again, the next window an hour from this one.
    rig.run(100);
    rig.ack_published();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.net.phase(), Phase::Asleep { until: at + 3_600_000 });
    assert_eq!(rig.notes(), [Note::Connected]);
}

#[test]
fn a_twin_that_never_acks_closes_the_window_at_its_limit_and_nothing_is_lost() {
    let mut rig = windowed(120, true);
    online(&mut rig);
    // A minute of readings, no ack: records go out as they are made (seqs 2..=6 at 10..50 s).
    rig.readings(60, steps);
    assert_eq!(rig.published_seqs(), [1, 2, 3, 4, 5, 6]);
    let closes = rig.fake().lines("AT+QMTCLOSE");
    assert_eq!(closes, [(WINDOW_MAX_MS, "AT+QMTCLOSE=0".to_string())]);
    assert_eq!(rig.fake().lines("AT+CFUN=0"), [(WINDOW_MAX_MS, "AT+CFUN=0".to_string())]);
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 120_000 });
    // The record of the reading at 60 s (made after the close) waits; the unacked ones stay.
    assert_eq!(rig.net.outbox().len(), 7);
    assert_eq!(rig.net.outbox().unsent(), 1);
    rig.readings(60, |i| steps(i + 60));
    // At 120 s the next window: everything unacked again, oldest first, then the new (seq 13
    // is the reading at 120 s, made after the window opened).
    let seqs = rig.published_seqs();
    assert_eq!(seqs[6..], (1..=13).collect::<Vec<_>>(), "{seqs:?}");
    assert_eq!(rig.fake().lines("AT+CFUN=1").last().unwrap().0, 120_000);
    rig.run(100);
    rig.ack_published();
    assert_eq!(rig.net.outbox().len(), 0);
    let last = rig.net.outbox().next_seq() - 1;
    let all: std::collections::BTreeSet<_> = rig.published_seqs().into_iter().collect();
    assert_eq!(all, (1..=u64::from(last)).collect(), "every record reached the twin");
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 240_000 });
    assert_eq!(rig.notes(), [Note::Connected], "an unacked window is not an outage");
}

#[test]
fn a_desired_state_sent_after_the_state_message_is_applied_before_the_window_closes() {
    let mut rig = windowed(60, true);
    online(&mut rig);
    rig.run(500);
    rig.ack_published();
    // The twin answers the state message with desired, 900 ms after the ack: still in time.
    rig.run(LINGER_MS - 100);
    assert_eq!(rig.net.phase(), Phase::Online);
    let pubs = rig.fake().published.len();
    rig.down(r#"{"type":"desired","version":3,"state":{"interval_s":5}}"#);
    assert_eq!(rig.notes(), [Note::Connected, Note::DesiredApplied { version: 3, interval_s: 5 }]);
    rig.run(50);
    let new: Vec<_> = rig.fake().published[pubs..].to_vec();
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(new[0].topic.ends_with("/up/state") && new[0].payload.contains(r#""interval_s":5"#));
    assert!(new[1].payload.ends_with(r#","kind":"desired_applied","version":3}"#), "{}", new[1].payload);
    // The desired_applied event waits for its ack: no close until then (and LINGER_MS after).
    rig.run(2_000);
    assert_eq!(rig.net.phase(), Phase::Online);
    assert!(rig.fake().lines("AT+QMTCLOSE").is_empty());
    let acked = rig.now;
    rig.ack_published();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    assert_eq!(rig.now, acked + LINGER_MS);
    assert_eq!(rig.net.interval_s(), 5);
}

#[test]
fn a_failed_window_is_said_once_and_the_connect_after_it_too() {
    let mut rig = windowed(60, true);
    online(&mut rig);
    rig.ack_published();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    rig.fake().broker_up = false;
    rig.run(65_000);
    // The window at 60 s failed to open the broker link: said once, backing off (radio on).
    assert_eq!(rig.notes(), [Note::Connected, Note::Offline(Reason::Open(Some(5)))]);
    assert!(matches!(rig.net.phase(), Phase::Backoff { next: Stage::Open, .. } | Phase::Open));
    assert_eq!(rig.fake().lines("AT+CFUN=1").last(), Some(&(60_000, "AT+CFUN=1".to_string())));
    rig.fake().broker_up = true;
    rig.run_until(10_000, |r| r.net.phase() == Phase::Online);
    assert_eq!(rig.notes()[2..], [Note::Connected], "told: the user heard of the outage");
    rig.ack_published();
    rig.run_until(2_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    // The cadence holds: the window that opened at 60 s schedules the next at 120 s.
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 120_000 });
    rig.run_until(70_000, |r| r.net.stats().connects == 3);
    assert_eq!(rig.now, 120_000);
    assert_eq!(rig.notes().len(), 3, "the next routine window is quiet: {:?}", rig.notes);
}

#[test]
fn urcs_caused_by_closing_the_window_are_not_a_link_loss() {
    let mut fake = FakeModem::new(IMEI);
    fake.latency_ms = 5;
    let mut rig = Rig::new(fake);
    rig.net.set_radio_policy(Radio::Windows { every_s: 60, radio_off: true });
    online(&mut rig);
    rig.ack_published();
    rig.run_until(2_000, |r| r.net.phase() == Phase::EndWindow);
    // The modem drops the link as we close it: +QMTSTAT right behind +QMTCLOSE.
    rig.fake().say("+QMTSTAT: 0,7");
    rig.run_until(1_000, |r| matches!(r.net.phase(), Phase::Asleep { .. }));
    rig.run(100);
    assert!(matches!(rig.net.phase(), Phase::Asleep { until: 60_000 }), "{:?}", rig.net.phase());
    assert_eq!(rig.notes(), [Note::Connected]);
    assert_eq!(rig.fake().commands()[rig.fake().log.len() - 2..], ["AT+QMTCLOSE", "AT+CFUN"]);
}

#[test]
fn switching_to_windows_while_online_counts_the_window_from_the_switch() {
    let mut rig = Rig::new(FakeModem::new(IMEI));
    online(&mut rig);
    rig.run(300_000);
    // Unacked (the boot event): the window may last WINDOW_MAX_MS from the switch, not from boot.
    rig.net.set_radio_policy(Radio::Windows { every_s: 600, radio_off: true });
    let at = rig.now;
    rig.run(WINDOW_MAX_MS - 10);
    assert_eq!(rig.net.phase(), Phase::Online);
    rig.run(10);
    assert_eq!(rig.fake().lines("AT+QMTCLOSE"), [(at + WINDOW_MAX_MS, "AT+QMTCLOSE=0".to_string())]);
    // The boot opened the first "window": the next is `every_s` after it.
    assert_eq!(rig.net.phase(), Phase::Asleep { until: 600_000 });
    assert_eq!(rig.notes(), [Note::Connected]);
}
