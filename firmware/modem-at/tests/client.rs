//! The client against a scripted fake port: every command and URC, fragmentation at every byte
//! boundary, URCs interleaved with commands, errors and timeouts.

mod common;

use common::{Ev, Rig, M};
use modem_at::{Command, Error, QoS, MAX_IN_FLIGHT};

const DOWN: &str = "twinbed/dev1/down";
const UP: &str = "twinbed/dev1/up/telemetry";
const PAYLOAD: &[u8] = br#"{"boot":1,"seq":1,"t":5,"first":0,"n":1,"min":1,"max":1,"mean":1}"#;
/// A received payload holding what would end a line, a final result and quotes: only `<len>`
/// delimits it.
const TRICKY: &[u8] = b"{\"a\":\"\r\nOK\r\n\",\"b\":\"\r\n+QMTSTAT: 0,1\r\n\"}";

fn recv_urc(msg_id: u16, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!("\r\n+QMTRECV: 0,{msg_id},\"{topic}\",{},\"", payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v.extend_from_slice(b"\"\r\n");
    v
}

/// A call of the client's API, its result made uniform.
type Call = fn(&mut M) -> Result<u16, Error>;

/// How a reply is cut into the pieces that arrive between polls: (step, reply, bytes) -> pieces.
type Chunker<'a> = &'a dyn Fn(usize, usize, &[u8]) -> Vec<Vec<u8>>;

/// One exchange: an optional call, the line it writes, the modem's replies (each with what the
/// client writes after it), and the events all of that gives.
struct Step {
    call: Option<Call>,
    tx: Vec<u8>,
    replies: Vec<(Vec<u8>, Vec<u8>)>,
    events: Vec<Ev>,
}

fn step(call: Call, tx: &[u8], reply: &[u8], events: Vec<Ev>) -> Step {
    Step { call: Some(call), tx: tx.to_vec(), replies: vec![(reply.to_vec(), vec![])], events }
}

fn urc(reply: &[u8], events: Vec<Ev>) -> Step {
    Step { call: None, tx: vec![], replies: vec![(reply.to_vec(), vec![])], events }
}

/// A whole session: every command of PROTOCOL.md §1 and every URC.
fn session() -> Vec<Step> {
    let pub_line = format!("AT+QMTPUBEX=0,2,1,0,\"{UP}\",{}\r\n", PAYLOAD.len()).into_bytes();
    vec![
        step(|m| m.at().map(|()| 0), b"AT\r\n", b"\r\nOK\r\n", vec![Ev::Done(Command::At, Ok(()))]),
        // Both answer styles: the virtual modem's bare `<text>\r\n` and V.250's `\r\n<text>\r\n`.
        step(
            |m| m.query_imei().map(|()| 0),
            b"AT+GSN\r\n",
            b"866425030012345\r\nOK\r\n",
            vec![Ev::Imei("866425030012345".into()), Ev::Done(Command::Imei, Ok(()))],
        ),
        step(
            |m| m.query_imei().map(|()| 0),
            b"AT+GSN\r\n",
            b"\r\n866425030012345\r\n\r\nOK\r\n",
            vec![Ev::Imei("866425030012345".into()), Ev::Done(Command::Imei, Ok(()))],
        ),
        step(
            |m| m.set_radio(false).map(|()| 0),
            b"AT+CFUN=0\r\n",
            b"\r\nOK\r\n",
            vec![Ev::Done(Command::Radio(false), Ok(()))],
        ),
        step(
            |m| m.set_radio(true).map(|()| 0),
            b"AT+CFUN=1\r\n",
            b"\r\nOK\r\n\r\n+CEREG: 2\r\n\r\n+CEREG: 1\r\n",
            vec![Ev::Done(Command::Radio(true), Ok(())), Ev::Registration(2), Ev::Registration(1)],
        ),
        step(
            |m| m.query_registration().map(|()| 0),
            b"AT+CEREG?\r\n",
            b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n",
            vec![Ev::Registration(1), Ev::Done(Command::QueryRegistration, Ok(()))],
        ),
        step(
            |m| m.open("broker.local", 1883).map(|()| 0),
            b"AT+QMTOPEN=0,\"broker.local\",1883\r\n",
            b"\r\nOK\r\n\r\n+QMTOPEN: 0,0\r\n",
            vec![Ev::Opened(Ok(()))],
        ),
        step(
            |m| m.connect("dev1").map(|()| 0),
            b"AT+QMTCONN=0,\"dev1\"\r\n",
            b"\r\nOK\r\n\r\n+QMTCONN: 0,0,0\r\n",
            vec![Ev::Connected(Ok(()))],
        ),
        step(
            |m| m.subscribe(DOWN, QoS::AtLeastOnce),
            format!("AT+QMTSUB=0,1,\"{DOWN}\",1\r\n").as_bytes(),
            b"\r\nOK\r\n\r\n+QMTSUB: 0,1,0,1\r\n",
            vec![Ev::Subscribed(1, Ok(1))],
        ),
        Step {
            call: Some(|m| m.publish(UP, PAYLOAD, QoS::AtLeastOnce, false)),
            tx: pub_line,
            replies: vec![
                (b"\r\n> ".to_vec(), PAYLOAD.to_vec()),
                (b"\r\nOK\r\n".to_vec(), vec![]),
                (b"\r\n+QMTPUBEX: 0,2,0\r\n".to_vec(), vec![]),
            ],
            events: vec![Ev::Published(2, Ok(()))],
        },
        Step {
            call: Some(|m| m.publish("twinbed/dev1/up/state", b"{}", QoS::AtMostOnce, true)),
            tx: b"AT+QMTPUBEX=0,0,0,1,\"twinbed/dev1/up/state\",2\r\n".to_vec(),
            replies: vec![
                (b"\r\n> ".to_vec(), b"{}".to_vec()),
                (b"\r\nOK\r\n\r\n+QMTPUBEX: 0,0,0\r\n".to_vec(), vec![]),
            ],
            events: vec![Ev::Published(0, Ok(()))],
        },
        urc(
            &recv_urc(5, DOWN, br#"{"type":"ack","boot":1,"seq":2}"#),
            vec![Ev::Received(5, DOWN.into(), br#"{"type":"ack","boot":1,"seq":2}"#.to_vec())],
        ),
        urc(&recv_urc(6, DOWN, TRICKY), vec![Ev::Received(6, DOWN.into(), TRICKY.to_vec())]),
        urc(&recv_urc(7, DOWN, b""), vec![Ev::Received(7, DOWN.into(), vec![])]),
        urc(b"\r\n+CEREG: 2\r\n", vec![Ev::Registration(2)]),
        urc(b"\r\n+QMTSTAT: 0,7\r\n", vec![Ev::LinkLost(7)]),
        urc(b"\r\n+CEREG: 1\r\n", vec![Ev::Registration(1)]),
        step(
            |m| m.disconnect().map(|()| 0),
            b"AT+QMTDISC=0\r\n",
            b"\r\nOK\r\n\r\n+QMTDISC: 0,0\r\n",
            vec![Ev::Disconnected(Ok(()))],
        ),
        step(
            |m| m.close().map(|()| 0),
            b"AT+QMTCLOSE=0\r\n",
            b"\r\nOK\r\n\r\n+QMTCLOSE: 0,0\r\n",
            vec![Ev::Closed(Ok(()))],
        ),
    ]
}

/// Runs the session; `chunks(step, reply, bytes)` decides how each reply is cut into the pieces
/// that arrive between polls.
fn run_session(chunks: Chunker<'_>) {
    let mut rig = Rig::new();
    for (i, s) in session().iter().enumerate() {
        if let Some(call) = s.call {
            call(&mut rig.m).unwrap();
        }
        rig.expect_tx(&s.tx);
        let mut events = vec![];
        for (j, (reply, after)) in s.replies.iter().enumerate() {
            for chunk in chunks(i, j, reply) {
                events.extend(rig.reply(&chunk));
            }
            rig.expect_tx(after);
        }
        assert_eq!(events, s.events, "step {i}");
        rig.now += 10;
    }
    assert!(rig.m.is_idle());
    assert_eq!(rig.m.stats(), Default::default(), "nothing ignored");
}

#[test]
fn whole_session_in_one_piece() {
    run_session(&|_, _, bytes| vec![bytes.to_vec()]);
}

#[test]
fn whole_session_one_byte_per_poll() {
    run_session(&|_, _, bytes| bytes.iter().map(|&b| vec![b]).collect());
}

#[test]
fn every_reply_split_at_every_byte_boundary() {
    let session = session();
    let mut runs = 0;
    for (i, s) in session.iter().enumerate() {
        for (j, (reply, _)) in s.replies.iter().enumerate() {
            for k in 0..=reply.len() {
                run_session(&|si, sj, bytes| {
                    if (si, sj) == (i, j) {
                        vec![bytes[..k].to_vec(), bytes[k..].to_vec()]
                    } else {
                        vec![bytes.to_vec()]
                    }
                });
                runs += 1;
            }
        }
    }
    assert!(runs > 400, "{runs}");
    println!("{runs} sessions");
}

#[test]
fn whole_session_in_one_burst() {
    // All replies of a step queued before the first poll (the prompt's too): the payload still
    // goes out right after the prompt, before the rest is read.
    run_session(&|_, _, bytes| vec![bytes.to_vec()]);
    let mut rig = Rig::new();
    rig.m.publish(UP, b"xyz", QoS::AtLeastOnce, false).unwrap();
    rig.tx();
    let evs = rig.reply(b"\r\n> \r\nOK\r\n\r\n+QMTPUBEX: 0,1,0\r\n");
    rig.expect_tx(b"xyz");
    assert_eq!(evs, [Ev::Published(1, Ok(()))]);
}

#[test]
fn urcs_interleaved_with_a_publish() {
    let mut rig = Rig::new();
    let id = rig.m.publish(UP, PAYLOAD, QoS::AtLeastOnce, false).unwrap();
    rig.tx();
    // Before the prompt: a registration change and a received message (holding "OK" and ">").
    let mut before = b"\r\n+CEREG: 2\r\n".to_vec();
    before.extend(recv_urc(9, DOWN, b"OK\r\n>"));
    assert_eq!(rig.reply(&before), [Ev::Registration(2), Ev::Received(9, DOWN.into(), b"OK\r\n>".to_vec())]);
    assert!(rig.tx().is_empty(), "no payload before the prompt");
    assert_eq!(rig.reply(b"\r\n> "), []);
    rig.expect_tx(PAYLOAD);
    // Between the payload and OK, and between OK and the PUBACK.
    assert_eq!(rig.reply(b"\r\n+CEREG: 1\r\n\r\nOK\r\n"), [Ev::Registration(1)]);
    assert!(!rig.m.is_busy());
    // The line is free while the PUBACK is awaited: subscribe meanwhile.
    let sub = rig.m.subscribe(DOWN, QoS::AtLeastOnce).unwrap();
    assert_ne!(sub, id);
    rig.tx();
    let mut more = recv_urc(10, DOWN, b"{}");
    more.extend_from_slice(
        format!("\r\nOK\r\n\r\n+QMTPUBEX: 0,{id},0\r\n\r\n+QMTSUB: 0,{sub},0,1\r\n").as_bytes(),
    );
    assert_eq!(
        rig.reply(&more),
        [
            Ev::Received(10, DOWN.into(), b"{}".to_vec()),
            Ev::Published(id, Ok(())),
            Ev::Subscribed(sub, Ok(1))
        ]
    );
    assert!(rig.m.is_idle());
}

#[test]
fn urc_before_ok_is_fine() {
    let mut rig = Rig::new();
    rig.m.open("h", 1).unwrap();
    assert_eq!(rig.reply(b"\r\n+QMTOPEN: 0,0\r\n"), [Ev::Opened(Ok(()))]);
    assert!(rig.m.is_busy());
    assert_eq!(rig.reply(b"\r\nOK\r\n"), []);
    assert!(rig.m.is_idle());
    assert_eq!(rig.advance(100_000), []);
}

#[test]
fn several_publishes_in_flight() {
    let mut rig = Rig::new();
    let mut ids = vec![];
    for i in 0..MAX_IN_FLIGHT {
        let id = rig.m.publish(UP, &[b'a' + i as u8], QoS::AtLeastOnce, false).unwrap();
        assert_eq!(rig.m.publish(UP, b"x", QoS::AtLeastOnce, false), Err(Error::Busy));
        assert_eq!(rig.reply(b"\r\n> \r\nOK\r\n"), []);
        ids.push(id);
    }
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(rig.m.publishes_in_flight(), MAX_IN_FLIGHT);
    assert_eq!(rig.m.publish(UP, b"x", QoS::AtLeastOnce, false), Err(Error::InFlight));
    // PUBACKs in any order; a retransmission notice (result 1) is not final.
    assert_eq!(
        rig.reply(b"\r\n+QMTPUBEX: 0,3,1\r\n\r\n+QMTPUBEX: 0,3,0\r\n\r\n+QMTPUBEX: 0,1,2\r\n"),
        [Ev::Published(3, Ok(())), Ev::Published(1, Err(Error::Failed { code: 2 }))]
    );
    assert_eq!(rig.m.publishes_in_flight(), 2);
    // The link goes: the other two fail with it.
    assert_eq!(
        rig.reply(b"\r\n+QMTSTAT: 0,1\r\n"),
        [
            Ev::LinkLost(1),
            Ev::Published(2, Err(Error::LinkLost { err: 1 })),
            Ev::Published(4, Err(Error::LinkLost { err: 1 })),
        ]
    );
    assert!(rig.m.is_idle());
    // A late PUBACK is stale.
    assert_eq!(rig.reply(b"\r\n+QMTPUBEX: 0,2,0\r\n"), []);
    assert_eq!(rig.m.stats().stale, 1);
}

#[test]
fn link_loss_fails_open_waits_even_before_ok() {
    let mut rig = Rig::new();
    rig.m.connect("dev1").unwrap();
    assert_eq!(
        rig.reply(b"\r\n+QMTSTAT: 0,7\r\n"),
        [Ev::LinkLost(7), Ev::Connected(Err(Error::LinkLost { err: 7 }))]
    );
    assert_eq!(rig.reply(b"\r\nOK\r\n"), []);
    assert!(rig.m.is_idle());
}

#[rustfmt::skip]
#[test]
fn error_answers() {
    let cases: &[(Call, Ev)] = &[
        (|m| m.at().map(|()| 0), Ev::Done(Command::At, Err(Error::Rejected))),
        (|m| m.set_radio(true).map(|()| 0), Ev::Done(Command::Radio(true), Err(Error::Rejected))),
        (|m| m.query_registration().map(|()| 0), Ev::Done(Command::QueryRegistration, Err(Error::Rejected))),
        (|m| m.open("h", 1).map(|()| 0), Ev::Opened(Err(Error::Rejected))),
        (|m| m.connect("c").map(|()| 0), Ev::Connected(Err(Error::Rejected))),
        (|m| m.subscribe("t", QoS::AtLeastOnce), Ev::Subscribed(1, Err(Error::Rejected))),
        (|m| m.publish("t", b"p", QoS::AtLeastOnce, false), Ev::Published(1, Err(Error::Rejected))),
        (|m| m.disconnect().map(|()| 0), Ev::Disconnected(Err(Error::Rejected))),
        (|m| m.close().map(|()| 0), Ev::Closed(Err(Error::Rejected))),
    ];
    for answer in [&b"\r\nERROR\r\n"[..], b"\r\n+CME ERROR: 3\r\n"] {
        for (call, want) in cases {
            let mut rig = Rig::new();
            call(&mut rig.m).unwrap();
            assert_eq!(rig.reply(answer), std::slice::from_ref(want));
            assert!(rig.m.is_idle(), "{want:?}");
        }
    }
    // An OK instead of the prompt: the payload was not sent.
    let mut rig = Rig::new();
    rig.m.publish("t", b"p", QoS::AtLeastOnce, false).unwrap();
    rig.tx();
    assert_eq!(rig.reply(b"\r\nOK\r\n"), [Ev::Published(1, Err(Error::Rejected))]);
    assert!(rig.tx().is_empty());
    // ERROR after the payload.
    rig.m.publish("t", b"p", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(rig.reply(b"\r\n> \r\nERROR\r\n"), [Ev::Published(2, Err(Error::Rejected))]);
}

#[rustfmt::skip]
#[test]
fn failure_results_in_urcs() {
    let cases: &[(Call, &[u8], Ev)] = &[
        (|m| m.open("h", 1).map(|()| 0), b"+QMTOPEN: 0,3", Ev::Opened(Err(Error::Failed { code: 3 }))),
        (|m| m.open("h", 1).map(|()| 0), b"+QMTOPEN: 0,5", Ev::Opened(Err(Error::Failed { code: 5 }))),
        (|m| m.open("h", 1).map(|()| 0), b"+QMTOPEN: 0,-1", Ev::Opened(Err(Error::Failed { code: -1 }))),
        (|m| m.connect("c").map(|()| 0), b"+QMTCONN: 0,2", Ev::Connected(Err(Error::Failed { code: 2 }))),
        (|m| m.connect("c").map(|()| 0), b"+QMTCONN: 0,0,5", Ev::Connected(Err(Error::Refused { ret_code: 5 }))),
        (|m| m.connect("c").map(|()| 0), b"+QMTCONN: 0,0", Ev::Connected(Ok(()))),
        (|m| m.subscribe("t", QoS::AtLeastOnce), b"+QMTSUB: 0,1,0,128", Ev::Subscribed(1, Err(Error::Failed { code: 128 }))),
        (|m| m.subscribe("t", QoS::AtMostOnce), b"+QMTSUB: 0,1,2", Ev::Subscribed(1, Err(Error::Failed { code: 2 }))),
        (|m| m.subscribe("t", QoS::ExactlyOnce), b"+QMTSUB: 0,1,0,2", Ev::Subscribed(1, Ok(2))),
        (|m| m.disconnect().map(|()| 0), b"+QMTDISC: 0,-1", Ev::Disconnected(Err(Error::Failed { code: -1 }))),
        (|m| m.close().map(|()| 0), b"+QMTCLOSE: 0,1", Ev::Closed(Err(Error::Failed { code: 1 }))),
    ];
    for (call, line, want) in cases {
        let mut rig = Rig::new();
        call(&mut rig.m).unwrap();
        let mut reply = b"\r\nOK\r\n\r\n".to_vec();
        reply.extend_from_slice(line);
        reply.extend_from_slice(b"\r\n");
        // A retransmission notice first, where the command has one.
        if line.starts_with(b"+QMTCONN") || line.starts_with(b"+QMTSUB") {
            let notice: &[u8] = if line.starts_with(b"+QMTSUB") { b"\r\n+QMTSUB: 0,1,1\r\n" } else { b"\r\n+QMTCONN: 0,1\r\n" };
            assert_eq!(rig.reply(notice), []);
        }
        assert_eq!(rig.reply(&reply), std::slice::from_ref(want), "{}", String::from_utf8_lossy(line));
        assert!(rig.m.is_idle());
    }
}

#[test]
fn timeouts_on_every_command_and_wait() {
    let cfg = common::config();
    // No answer at all: the command times out after command_ms.
    let plain: &[(Call, Ev)] = &[
        (|m| m.at().map(|()| 0), Ev::Done(Command::At, Err(Error::Timeout))),
        (|m| m.set_radio(false).map(|()| 0), Ev::Done(Command::Radio(false), Err(Error::Timeout))),
        (|m| m.query_registration().map(|()| 0), Ev::Done(Command::QueryRegistration, Err(Error::Timeout))),
        (|m| m.open("h", 1).map(|()| 0), Ev::Opened(Err(Error::Timeout))),
        (|m| m.connect("c").map(|()| 0), Ev::Connected(Err(Error::Timeout))),
        (|m| m.subscribe("t", QoS::AtLeastOnce), Ev::Subscribed(1, Err(Error::Timeout))),
        (|m| m.publish("t", b"p", QoS::AtLeastOnce, false), Ev::Published(1, Err(Error::Timeout))),
        (|m| m.disconnect().map(|()| 0), Ev::Disconnected(Err(Error::Timeout))),
        (|m| m.close().map(|()| 0), Ev::Closed(Err(Error::Timeout))),
    ];
    for (call, want) in plain {
        let mut rig = Rig::new();
        rig.events();
        call(&mut rig.m).unwrap();
        assert_eq!(rig.events(), [], "the first poll starts the command's clock");
        assert_eq!(rig.advance(cfg.command_ms - 1), []);
        assert_eq!(rig.advance(1), std::slice::from_ref(want));
        assert!(rig.m.is_idle());
        // A late answer is ignored.
        assert_eq!(rig.reply(b"\r\nOK\r\n"), []);
    }
    // OK, but no URC: the wait's own timeout, counted from the OK.
    let waits: &[(Call, u32, Ev)] = &[
        (|m| m.open("h", 1).map(|()| 0), cfg.open_ms, Ev::Opened(Err(Error::Timeout))),
        (|m| m.connect("c").map(|()| 0), cfg.connect_ms, Ev::Connected(Err(Error::Timeout))),
        (|m| m.subscribe("t", QoS::AtLeastOnce), cfg.subscribe_ms, Ev::Subscribed(1, Err(Error::Timeout))),
        (
            |m| m.publish("t", b"p", QoS::AtLeastOnce, false),
            cfg.publish_ms,
            Ev::Published(1, Err(Error::Timeout)),
        ),
        (|m| m.disconnect().map(|()| 0), cfg.close_ms, Ev::Disconnected(Err(Error::Timeout))),
        (|m| m.close().map(|()| 0), cfg.close_ms, Ev::Closed(Err(Error::Timeout))),
    ];
    for (call, ms, want) in waits {
        let mut rig = Rig::new();
        rig.events();
        call(&mut rig.m).unwrap();
        rig.advance(100);
        assert_eq!(rig.reply(b"\r\n> \r\nOK\r\n"), []);
        assert_eq!(rig.advance(ms - 1), []);
        assert_eq!(rig.advance(1), std::slice::from_ref(want));
        assert!(rig.m.is_idle());
        assert_eq!(rig.m.stats().stale, 0);
    }
    // A prompt that never comes.
    let mut rig = Rig::new();
    rig.m.publish("t", b"p", QoS::AtLeastOnce, false).unwrap();
    rig.tx();
    assert_eq!(rig.events(), []);
    assert_eq!(rig.advance(cfg.command_ms), [Ev::Published(1, Err(Error::Timeout))]);
    assert!(rig.tx().is_empty());
}

#[test]
fn timeouts_across_clock_wraparound() {
    let mut rig = Rig::new();
    rig.now = u32::MAX - 100;
    rig.events();
    rig.m.at().unwrap();
    assert_eq!(rig.advance(0), []);
    assert_eq!(rig.advance(299), []);
    assert_eq!(rig.advance(1), [Ev::Done(Command::At, Err(Error::Timeout))]);
}

#[test]
fn argument_and_state_errors() {
    let mut rig = Rig::with_buffers(64, 8);
    assert_eq!(rig.m.open("bad\"host", 1), Err(Error::InvalidArgument));
    assert_eq!(rig.m.connect(""), Err(Error::InvalidArgument));
    assert_eq!(rig.m.subscribe("a\r\nAT", QoS::AtLeastOnce), Err(Error::InvalidArgument));
    assert_eq!(rig.m.publish(&"t".repeat(129), b"", QoS::AtLeastOnce, false), Err(Error::InvalidArgument));
    assert_eq!(rig.m.publish("t", b"123456789", QoS::AtLeastOnce, false), Err(Error::TooLong));
    assert!(rig.tx().is_empty(), "nothing written for refused calls");
    assert!(rig.m.is_idle());
    rig.m.open("h", 1).unwrap();
    assert_eq!(rig.m.at(), Err(Error::Busy));
    rig.reply(b"\r\nOK\r\n");
    assert_eq!(rig.m.open("h", 1), Err(Error::InFlight));
    rig.m.subscribe("t", QoS::AtLeastOnce).unwrap();
    rig.reply(b"\r\nOK\r\n");
    assert_eq!(rig.m.subscribe("t", QoS::AtLeastOnce), Err(Error::InFlight));
    // The longest arguments fit the command line.
    let long = "t".repeat(128);
    rig.m.publish(&long, b"12345678", QoS::ExactlyOnce, true).unwrap();
    rig.expect_tx(
        format!("AT+QMTOPEN=0,\"h\",1\r\nAT+QMTSUB=0,1,\"t\",1\r\nAT+QMTPUBEX=0,2,2,1,\"{long}\",8\r\n")
            .as_bytes(),
    );
    rig.m.reset();
    assert!(rig.m.is_idle());
}

#[test]
fn message_ids_wrap_and_skip_ids_in_use() {
    let mut rig = Rig::new();
    // Keep id 1 in flight, then go round the whole id space.
    assert_eq!(rig.m.publish(UP, b"x", QoS::AtLeastOnce, false), Ok(1));
    rig.reply(b"\r\n> \r\nOK\r\n");
    for want in 2..=u16::MAX {
        assert_eq!(rig.m.publish(UP, b"x", QoS::AtLeastOnce, false), Ok(want));
        rig.reply(format!("\r\n> \r\nOK\r\n\r\n+QMTPUBEX: 0,{want},0\r\n").as_bytes());
    }
    assert_eq!(rig.m.publish(UP, b"x", QoS::AtLeastOnce, false), Ok(2), "0 and 1 skipped");
}

#[test]
fn receive_too_long_and_receive_gap() {
    let mut rig = Rig::with_buffers(DOWN.len() + 4, 8);
    assert_eq!(rig.reply(&recv_urc(1, DOWN, b"1234")), [Ev::Received(1, DOWN.into(), b"1234".to_vec())]);
    assert_eq!(rig.reply(&recv_urc(2, DOWN, b"12345")), [Ev::ReceiveTooLong(2, 5)]);
    // The next message is read normally.
    assert_eq!(rig.reply(&recv_urc(3, DOWN, b"abcd")), [Ev::Received(3, DOWN.into(), b"abcd".to_vec())]);
    // A payload that stops short: after recv_gap_ms the client goes back to lines.
    let urc = recv_urc(4, DOWN, b"abcd");
    assert_eq!(rig.reply(&urc[..urc.len() - 4]), []);
    assert_eq!(rig.advance(999), []);
    assert_eq!(rig.advance(1), []);
    assert_eq!(rig.m.stats().recv_aborted, 1);
    assert_eq!(rig.reply(b"\r\n+CEREG: 1\r\n"), [Ev::Registration(1)]);
}

#[test]
fn odd_but_valid_lines() {
    let mut rig = Rig::new();
    // Bare \r or \n line ends, extra spaces, CEREG with more fields, start-up chatter.
    assert_eq!(
        rig.reply(b"RDY\r\rAPP RDY\n\n+CEREG:   2  \r+CEREG: 2,1,\"1A2B\",\"0001C001\",7\r\n"),
        [Ev::Registration(2), Ev::Registration(1),]
    );
    assert_eq!(rig.m.stats().garbage, 2);
    // A line longer than the line buffer is skipped whole.
    let mut long = b"+CEREG: 1".to_vec();
    long.extend(std::iter::repeat_n(b' ', 300));
    long.extend_from_slice(b"\r\n+CEREG: 2\r\n");
    assert_eq!(rig.reply(&long), [Ev::Registration(2)]);
    // Malformed URCs are garbage, not events.
    for bad in [
        &b"+CEREG: x"[..],
        b"+CEREG: 300",
        b"+QMTOPEN: 0",
        b"+QMTSTAT:",
        b"+QMTPUBEX: 0,70000,0",
        b"+QMTRECV: 0,1",
    ] {
        let mut l = b"\r\n".to_vec();
        l.extend_from_slice(bad);
        l.extend_from_slice(b"\r\n");
        assert_eq!(rig.reply(&l), [], "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn imei_answers() {
    let mut rig = Rig::new();
    // ERROR: no information line, the command fails.
    rig.m.query_imei().unwrap();
    assert_eq!(rig.reply(b"ERROR\r\n"), [Ev::Done(Command::Imei, Err(Error::Rejected))]);
    // A line that is not digits (or too long) is not an IMEI: garbage, and Done still comes.
    rig.m.query_imei().unwrap();
    assert_eq!(
        rig.reply(b"86642503001234X\r\n12345678901234567\r\nOK\r\n"),
        [Ev::Done(Command::Imei, Ok(()))]
    );
    assert_eq!(rig.m.stats().garbage, 2);
    // Digits while another command is on the line, or none, are garbage too.
    rig.m.at().unwrap();
    assert_eq!(rig.reply(b"866425030012345\r\nOK\r\n"), [Ev::Done(Command::At, Ok(()))]);
    assert_eq!(rig.reply(b"866425030012345\r\n"), []);
    assert_eq!(rig.m.stats().garbage, 4);
    // A URC between the command and its answer.
    rig.m.query_imei().unwrap();
    assert_eq!(
        rig.reply(b"+CEREG: 1\r\n866425030012345\r\nOK\r\n"),
        [Ev::Registration(1), Ev::Imei("866425030012345".into()), Ev::Done(Command::Imei, Ok(()))]
    );
    // No answer: the command times out.
    rig.m.query_imei().unwrap();
    assert_eq!(rig.events(), []);
    assert_eq!(rig.advance(300), [Ev::Done(Command::Imei, Err(Error::Timeout))]);
    let imei = modem_at::Imei::from_digits(b"1234567890123456").unwrap();
    assert_eq!(imei.as_str(), "1234567890123456");
    assert_eq!(modem_at::Imei::from_digits(b""), None);
}
