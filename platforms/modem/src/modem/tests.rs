//! Unit tests of the state machine against the scripted fake link.

use super::*;
use crate::fake::FakeLink;
use crate::link::LinkError;
use std::time::Duration;
use twinbed_contract::rng::SplitMix64;

const MS: u64 = NS_PER_MS;
const BYTE: u64 = 86_806;

/// A modem, a fake link, a virtual clock and everything the firmware received.
struct H {
    m: Modem,
    net: FakeLink,
    now: u64,
    /// Every byte the firmware received, with the time it was taken.
    rx: Vec<(u64, u8)>,
    cursor: usize,
}

impl H {
    fn new() -> Self {
        Self::with(Timing::default())
    }

    fn with(timing: Timing) -> Self {
        Self { m: Modem::new(timing), net: FakeLink::new(), now: 0, rx: Vec::new(), cursor: 0 }
    }

    /// The firmware sends `s` at the current time (its UART is instantaneous, as in QEMU).
    fn send(&mut self, s: &str) {
        self.send_bytes(s.as_bytes());
    }

    fn send_bytes(&mut self, s: &[u8]) {
        for &b in s {
            self.m.write(self.now, b);
        }
    }

    /// Runs the modem up to `t`, stopping at every deadline as an engine would.
    fn run_until(&mut self, t: u64) {
        while let Some(d) = self.m.next_deadline().filter(|&d| d <= t) {
            self.now = self.now.max(d);
            self.step();
        }
        self.now = self.now.max(t);
        self.step();
    }

    fn step(&mut self) {
        let due = self.m.poll(self.now, &mut self.net);
        let out = self.m.take_output(self.now);
        assert_eq!(due, out.len());
        self.rx.extend(out.into_iter().map(|b| (self.now, b)));
    }

    fn run_for(&mut self, dt: u64) {
        self.run_until(self.now + dt);
    }

    /// Runs until the modem has nothing left to do.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            match self.m.next_deadline() {
                Some(d) => {
                    self.now = self.now.max(d);
                    self.step();
                }
                None => return,
            }
        }
        panic!("the modem never settles");
    }

    /// Everything received since the last call.
    fn text(&mut self) -> String {
        let s: Vec<u8> = self.rx[self.cursor..].iter().map(|&(_, b)| b).collect();
        self.cursor = self.rx.len();
        String::from_utf8_lossy(&s).into_owned()
    }

    /// Settles and checks the lines received since the last check.
    fn expect(&mut self, lines: &[&str]) {
        self.settle();
        let want: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        assert_eq!(self.text(), want);
    }

    /// The time at which the firmware had received the whole of `needle` (searching all
    /// output).
    fn time_of(&self, needle: &str) -> u64 {
        let all: Vec<u8> = self.rx.iter().map(|&(_, b)| b).collect();
        let at = all
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap_or_else(|| panic!("{needle:?} not in {:?}", String::from_utf8_lossy(&all)));
        self.rx[at + needle.len() - 1].0
    }

    fn connect(&mut self) {
        self.send("AT+QMTOPEN=0,\"broker\",1883\r");
        self.expect(&["OK", "+QMTOPEN: 0,0"]);
        self.send("AT+QMTCONN=0,\"dev1\"\r");
        self.expect(&["OK", "+QMTCONN: 0,0,0"]);
        assert_eq!(self.m.client_state(), ClientState::Connected);
    }
}

#[test]
fn at_answers_ok_after_the_command_latency_at_uart_speed() {
    let mut h = H::new();
    h.send("AT\r");
    assert_eq!(h.m.next_deadline(), Some(0), "a written byte needs a poll");
    h.run_until(0);
    assert_eq!(h.m.next_deadline(), Some(MS), "the answer goes on the line");
    h.run_until(MS);
    assert_eq!(h.m.next_deadline(), Some(MS + BYTE), "the first byte of OK is received");
    h.settle();
    assert_eq!(h.text(), "OK\r\n");
    assert_eq!(
        h.rx.iter().map(|&(t, _)| t).collect::<Vec<_>>(),
        (1..=4).map(|i| MS + i * BYTE).collect::<Vec<_>>()
    );
    assert_eq!(h.m.next_deadline(), None, "idle");
}

#[test]
fn echo_is_off_line_feeds_are_ignored_and_empty_lines_are_not_answered() {
    let mut h = H::new();
    h.send("AT\r\n\r\r\nat\r");
    h.expect(&["OK", "OK"]);
}

#[test]
fn bad_commands_answer_error() {
    let mut h = H::new();
    for bad in [
        "ATE0",
        "AT+CGMI",
        "hello",
        "AT+QMTOPEN=1,\"h\",1883",
        "AT+QMTCONN=0",
        "AT+QMTSUB=0,0,\"t\",1",
        "AT+QMTPUBEX=0,1,0,0,\"t\",5",
        "AT+QMTDISC=2",
        "AT+CFUN=5",
    ] {
        h.send(bad);
        h.send("\r");
        h.expect(&["ERROR"]);
    }
    assert_eq!(h.m.counters().errors, 9);
    assert!(h.net.calls.is_empty(), "nothing reached the network");
}

#[test]
fn an_overlong_line_answers_error_and_the_next_line_works() {
    let mut h = H::new();
    h.send(&"A".repeat(MAX_LINE + 10));
    h.send("\rAT\r");
    h.expect(&["ERROR", "OK"]);
}

#[test]
fn answers_queue_on_the_uart_one_byte_time_apart() {
    let mut h = H::new();
    h.send("AT\rAT\r");
    h.settle();
    let times: Vec<u64> = h.rx.iter().map(|&(t, _)| t).collect();
    assert_eq!(
        times,
        (1..=8).map(|i| MS + i * BYTE).collect::<Vec<_>>(),
        "the second OK waits for the first"
    );
}

#[test]
fn gsn_answers_the_imei() {
    let mut h = H::new();
    h.send("AT+GSN\r");
    h.expect(&["861234050000001", "OK"]);
    assert!(h.m.set_imei("12345").is_none(), "an IMEI is 15 digits");
    assert!(h.m.set_imei("86123405000004x").is_none());
    h.m.set_imei("861234050000042").unwrap();
    h.send("AT+GSN\r");
    h.expect(&["861234050000042", "OK"]);
    h.send("AT+GSN=1\r");
    h.expect(&["ERROR"]);
}

#[test]
fn cereg_query_reports_registration() {
    let mut h = H::new();
    h.send("AT+CEREG?\r");
    h.expect(&["+CEREG: 0,1", "OK"]);
    h.m.set_coverage(h.now, false);
    h.expect(&["+CEREG: 2"]);
    h.send("AT+CEREG?\r");
    h.expect(&["+CEREG: 0,2", "OK"]);
    h.send("AT+CFUN=0\r");
    h.expect(&["OK"]);
    h.send("AT+CEREG?\r");
    h.expect(&["+CEREG: 0,0", "OK"]);
    assert_eq!(h.m.registration(), Registration::RadioOff);
}

#[test]
fn cfun_switches_the_radio_and_registers_after_the_attach_time() {
    let mut h = H::new();
    h.run_until(10 * MS);
    h.send("AT+CFUN=0\r");
    h.expect(&["OK"]);
    assert_eq!(h.m.power_state(), PowerState::Off);
    h.send("AT+CFUN=0\r");
    h.expect(&["OK"]);
    h.run_until(20 * MS);
    h.send("AT+CFUN=1\r");
    h.expect(&["OK", "+CEREG: 1"]);
    assert_eq!(h.time_of("+CEREG: 1\r\n"), 20 * MS + 2_000 * MS + 11 * BYTE);
    assert_eq!(
        h.m.power_log(),
        &[(0, PowerState::Idle), (10 * MS, PowerState::Off), (20 * MS, PowerState::Idle)]
    );
    // Already on: no URC.
    h.send("AT+CFUN=1\r");
    h.expect(&["OK"]);
}

#[test]
fn cfun_1_without_coverage_reports_searching() {
    let mut h = H::new();
    h.send("AT+CFUN=0\r");
    h.expect(&["OK"]);
    h.m.set_coverage(h.now, false);
    h.expect(&[]);
    h.send("AT+CFUN=1\r");
    h.expect(&["OK", "+CEREG: 2"]);
    h.m.set_coverage(h.now, true);
    h.expect(&["+CEREG: 1"]);
}

#[test]
fn a_whole_session_open_connect_subscribe_publish_receive_disconnect_close() {
    let mut h = H::new();
    h.connect();
    h.send("AT+QMTSUB=0,1,\"twinbed/dev1/down\",1\r");
    h.expect(&["OK", "+QMTSUB: 0,1,0,1"]);
    let body = "{\"boot\":1,\"seq\":1}";
    h.send(&format!("AT+QMTPUBEX=0,2,1,0,\"twinbed/dev1/up/telemetry\",{}\r", body.len()));
    h.settle();
    assert_eq!(h.text(), ">");
    assert!(h.m.in_data_mode());
    h.send(body);
    h.expect(&["OK", "+QMTPUBEX: 0,2,0"]);
    h.net.receive("twinbed/dev1/down", b"{\"type\":\"ack\",\"boot\":1,\"seq\":1}", Qos::AtLeastOnce);
    h.expect(&[]);
    assert_eq!(h.m.deliver_incoming(h.now, &mut h.net), 1);
    h.expect(&["+QMTRECV: 0,1,\"twinbed/dev1/down\",31,\"{\"type\":\"ack\",\"boot\":1,\"seq\":1}\""]);
    h.send("AT+QMTDISC=0\r");
    h.expect(&["OK", "+QMTDISC: 0,0"]);
    h.send("AT+QMTCLOSE=0\r");
    h.expect(&["OK", "+QMTCLOSE: 0,0"]);
    assert_eq!(
        h.net.calls,
        [
            "open broker:1883",
            "connect dev1",
            "subscribe twinbed/dev1/down 1",
            "publish twinbed/dev1/up/telemetry 1 false {\"boot\":1,\"seq\":1}",
            "disconnect",
        ]
    );
    let c = h.m.counters();
    assert_eq!((c.publishes_ok, c.publishes_failed, c.received, c.delivered), (1, 0, 1, 1));
    assert_eq!(h.m.client_state(), ClientState::Closed);
}

#[test]
fn the_prompt_comes_first_then_exactly_len_bytes_are_payload() {
    let mut h = H::new();
    h.connect();
    // "\r\n" after the command: the \n is not payload. The payload holds \r, \n and "AT".
    h.send("AT+QMTPUBEX=0,0,0,1,\"t\",8\r\n");
    h.settle();
    assert_eq!(h.text(), ">");
    h.send("AT\r\nAT");
    h.settle();
    assert_eq!(h.text(), "", "6 of 8 bytes: still reading");
    h.send("\r\nAT\r");
    // The publish's OK and the AT's OK are both due 1 ms later; the URC after the tx time.
    h.expect(&["OK", "OK", "+QMTPUBEX: 0,0,0"]);
    assert_eq!(h.net.calls.last().map(String::as_str), Some("publish t 0 true AT\r\nAT\r\n"));
}

#[test]
fn connect_subscribe_and_publish_times_and_power_states() {
    let mut h = H::new();
    let t = Timing::default();
    h.run_until(100 * MS);
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,0"]);
    // URC due: command + latency + SYN tx + RTT, then on the UART.
    let a = 101 * MS;
    let open_end = a + t.tx_ns(0) + t.rtt_ns;
    assert_eq!(h.time_of("+QMTOPEN: 0,0\r\n"), open_end + 15 * BYTE);
    assert_eq!(
        h.m.power_log(),
        &[
            (0, PowerState::Idle),
            (a, PowerState::Tx),
            (a + t.tx_ns(0), PowerState::Rx),
            (open_end, PowerState::Idle)
        ]
    );

    h.send("AT+QMTCONN=0,\"dev1\"\r");
    h.expect(&["OK", "+QMTCONN: 0,0,0"]);
    h.send("AT+QMTPUBEX=0,9,1,0,\"t\",100\r");
    h.settle();
    assert_eq!(h.text(), ">");
    let t0 = h.now + 5 * MS;
    h.run_until(t0);
    h.send(&"x".repeat(100));
    h.expect(&["OK", "+QMTPUBEX: 0,9,0"]);
    let a = t0 + MS;
    let tx = t.tx_ns(1 + 100 + 4);
    assert_eq!(h.time_of("+QMTPUBEX: 0,9,0\r\n"), a + tx + t.rtt_ns + 18 * BYTE);
    let log = h.m.power_log();
    assert_eq!(
        &log[log.len() - 3..],
        &[(a, PowerState::Tx), (a + tx, PowerState::Rx), (a + tx + t.rtt_ns, PowerState::Idle)]
    );
}

#[test]
fn a_qos0_publish_is_tx_only() {
    let mut h = H::new();
    h.connect();
    let n = h.m.power_log().len();
    h.send("AT+QMTPUBEX=0,0,0,0,\"t\",3\r");
    h.settle();
    assert_eq!(h.text(), ">");
    h.send("abc");
    h.expect(&["OK", "+QMTPUBEX: 0,0,0"]);
    let states: Vec<PowerState> = h.m.power_log()[n..].iter().map(|&(_, p)| p).collect();
    assert_eq!(states, [PowerState::Tx, PowerState::Idle]);
}

#[test]
fn pipelined_publishes_share_the_uplink() {
    let mut h = H::new();
    h.connect();
    let t = Timing::default();
    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",1\r");
    h.settle();
    h.send("a");
    h.run_until(h.now + 2 * MS);
    h.send("AT+QMTPUBEX=0,2,1,0,\"t\",1\r");
    h.run_until(h.now + 2 * MS);
    h.send("b");
    h.expect(&[">OK", ">OK", "+QMTPUBEX: 0,1,0", "+QMTPUBEX: 0,2,0"]);
    let d1 = h.time_of("+QMTPUBEX: 0,1,0\r\n");
    let d2 = h.time_of("+QMTPUBEX: 0,2,0\r\n");
    assert!(d2 > d1);
    assert!(t.tx_ns(8) < t.rtt_ns, "the second publish is sent while the first waits for its PUBACK");
}

#[test]
fn qmtopen_failures() {
    let mut h = H::new();
    h.net.open.push_back(Err(LinkError::Timeout(Duration::from_secs(1))));
    h.send("AT+QMTOPEN=0,\"down\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,5"]);
    assert_eq!(h.m.client_state(), ClientState::Closed);

    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,0"]);
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,-1"]);
    h.send("AT+QMTCLOSE=0\r");
    h.expect(&["OK", "+QMTCLOSE: 0,0"]);

    h.m.set_coverage(h.now, false);
    h.expect(&["+CEREG: 2"]);
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,3"]);
    h.m.set_coverage(h.now, true);
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,3", "+CEREG: 1"]);
    h.send("AT+CFUN=0\r");
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "OK", "+QMTOPEN: 0,3"]);
    assert_eq!(h.net.calls.iter().filter(|c| c.starts_with("open")).count(), 2);
}

#[test]
fn qmtconn_failures() {
    let mut h = H::new();
    h.send("AT+QMTCONN=0,\"dev1\"\r");
    h.expect(&["OK", "+QMTCONN: 0,2,0"]);
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,0"]);
    h.net.connect.push_back(Err(LinkError::Refused { code: 5 }));
    h.send("AT+QMTCONN=0,\"dev1\"\r");
    h.expect(&["OK", "+QMTCONN: 0,0,5"]);
    assert_eq!(h.m.client_state(), ClientState::Closed, "a refused CONNECT closes the client");
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,0"]);
    h.net.connect.push_back(Err(LinkError::Timeout(Duration::from_secs(5))));
    h.send("AT+QMTCONN=0,\"dev1\"\r");
    h.expect(&["OK", "+QMTCONN: 0,2,0"]);
    assert_eq!(h.m.client_state(), ClientState::Closed);
}

#[test]
fn qmtsub_and_qmtpubex_fail_without_a_session() {
    let mut h = H::new();
    h.send("AT+QMTSUB=0,3,\"a/#\",1\r");
    h.expect(&["OK", "+QMTSUB: 0,3,2,128"]);
    h.send("AT+QMTPUBEX=0,4,1,0,\"a\",2\r");
    h.settle();
    h.send("hi");
    h.expect(&[">OK", "+QMTPUBEX: 0,4,2"]);
    assert_eq!(h.m.counters().publishes_failed, 1);
    assert!(h.net.calls.is_empty());
}

#[test]
fn a_broker_refusing_a_subscription_grants_128() {
    let mut h = H::new();
    h.connect();
    h.net.subscribe.push_back(Ok(0x80));
    h.send("AT+QMTSUB=0,1,\"$SYS/x\",1\r");
    h.expect(&["OK", "+QMTSUB: 0,1,0,128"]);
}

#[test]
fn a_link_lost_during_an_operation_fails_it_and_reports_qmtstat_1() {
    let mut h = H::new();
    h.connect();
    h.net.publish.push_back(Err(LinkError::Lost));
    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",1\r");
    h.settle();
    h.send("x");
    h.expect(&[">OK", "+QMTPUBEX: 0,1,2", "+QMTSTAT: 0,1"]);
    assert_eq!(h.m.client_state(), ClientState::Closed);
    assert_eq!(h.net.calls.last().map(String::as_str), Some("close"));

    h.connect();
    h.net.subscribe.push_back(Err(LinkError::Lost));
    h.send("AT+QMTSUB=0,1,\"t\",1\r");
    h.expect(&["OK", "+QMTSUB: 0,1,2,128", "+QMTSTAT: 0,1"]);
}

#[test]
fn a_publish_timeout_fails_but_keeps_the_session() {
    let mut h = H::new();
    h.connect();
    h.net.publish.push_back(Err(LinkError::Timeout(Duration::from_secs(5))));
    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",1\r");
    h.settle();
    h.send("x");
    h.expect(&[">OK", "+QMTPUBEX: 0,1,2"]);
    assert_eq!(h.m.client_state(), ClientState::Connected);
}

#[test]
fn coverage_loss_closes_the_link_and_coverage_back_reregisters() {
    let mut h = H::new();
    h.connect();
    h.run_until(5_000 * MS);
    h.m.set_coverage(6_000 * MS, false);
    h.run_until(5_500 * MS);
    assert_eq!(h.text(), "", "not before its time");
    h.expect(&["+CEREG: 2", "+QMTSTAT: 0,7"]);
    assert_eq!(h.time_of("+CEREG: 2\r\n"), 6_000 * MS + 11 * BYTE);
    assert_eq!(h.net.calls.last().map(String::as_str), Some("close"));
    assert_eq!(h.m.client_state(), ClientState::Closed);
    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",1\r");
    h.settle();
    h.send("x");
    h.expect(&[">OK", "+QMTPUBEX: 0,1,2"]);
    h.m.set_coverage(h.now, true);
    h.expect(&["+CEREG: 1"]);
    h.connect();
}

#[test]
fn coverage_loss_while_an_answer_is_pending_fails_it_and_cuts_the_rx_wait() {
    let mut h = H::new();
    h.connect();
    let t = Timing::default();
    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",1\r");
    h.settle();
    h.send("x");
    let a = h.now + MS;
    let cut = a + t.tx_ns(6) + 10 * MS;
    h.m.set_coverage(cut, false);
    h.expect(&[">OK", "+CEREG: 2", "+QMTSTAT: 0,7", "+QMTPUBEX: 0,1,2"]);
    assert_eq!(
        h.net.calls[h.net.calls.len() - 2..],
        ["publish t 1 false x", "close"],
        "it was sent for real"
    );
    let log = h.m.power_log();
    assert_eq!(
        &log[log.len() - 3..],
        &[(a, PowerState::Tx), (a + t.tx_ns(6), PowerState::Rx), (cut, PowerState::Idle)]
    );
    assert_eq!(h.m.counters().publishes_failed, 1);
}

#[test]
fn coverage_loss_while_opening_reports_the_open_as_failed() {
    let mut h = H::new();
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.run_until(50 * MS);
    h.m.set_coverage(h.now, false);
    h.expect(&["OK", "+CEREG: 2", "+QMTOPEN: 0,3"]);
}

#[test]
fn extra_latency_delays_network_answers() {
    let mut h = H::new();
    let t = Timing::default();
    h.m.set_extra_latency(0, 250);
    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,0"]);
    assert_eq!(h.time_of("+QMTOPEN: 0,0\r\n"), MS + t.tx_ns(0) + t.rtt_ns + 250 * MS + 15 * BYTE);
    h.m.set_extra_latency(h.now, 0);
    let t0 = h.now;
    h.send("AT+QMTCONN=0,\"d\"\r");
    h.expect(&["OK", "+QMTCONN: 0,0,0"]);
    assert_eq!(h.time_of("+QMTCONN: 0,0,0\r\n"), t0 + MS + t.tx_ns(13) + t.rtt_ns + 17 * BYTE);
}

#[test]
fn drop_link_reports_qmtstat_1_once_and_is_a_no_op_when_closed() {
    let mut h = H::new();
    h.m.drop_link(0);
    h.expect(&[]);
    h.connect();
    h.m.drop_link(h.now);
    h.expect(&["+QMTSTAT: 0,1"]);
    assert_eq!(h.net.calls.last().map(String::as_str), Some("close"));
    h.connect();
    h.send("AT\r");
    h.expect(&["OK"]);
}

#[test]
fn incoming_messages_wait_for_deliver_incoming() {
    let mut h = H::new();
    h.connect();
    h.net.receive("a/b", b"12345", Qos::AtLeastOnce);
    h.net.receive("a/c", b"\"quoted\"", Qos::AtMostOnce);
    h.net.receive("a/d", b"x", Qos::ExactlyOnce);
    h.run_for(10_000 * MS);
    assert_eq!(h.text(), "", "not delivered by time passing");
    let t = h.now;
    let n = h.m.power_log().len();
    assert_eq!(h.m.deliver_incoming(t, &mut h.net), 3);
    let lines = [
        "+QMTRECV: 0,1,\"a/b\",5,\"12345\"",
        "+QMTRECV: 0,0,\"a/c\",8,\"\"quoted\"\"",
        "+QMTRECV: 0,2,\"a/d\",1,\"x\"",
    ];
    h.expect(&lines);
    let all = lines.iter().map(|l| l.len() as u64 + 2).sum::<u64>();
    assert_eq!(h.m.power_log()[n..], [(t, PowerState::Rx), (t + all * BYTE, PowerState::Idle)]);
    assert_eq!(h.m.deliver_incoming(h.now, &mut h.net), 0);
}

#[test]
fn messages_are_held_while_connecting_and_discarded_without_a_session() {
    let mut h = H::new();
    h.net.receive("x", b"old", Qos::AtLeastOnce);
    assert_eq!(h.m.deliver_incoming(0, &mut h.net), 0);
    assert_eq!(h.m.counters().discarded, 1);

    h.send("AT+QMTOPEN=0,\"broker\",1883\r");
    h.expect(&["OK", "+QMTOPEN: 0,0"]);
    h.send("AT+QMTCONN=0,\"dev1\"\r");
    h.run_until(h.now + 2 * MS);
    assert_eq!(h.m.client_state(), ClientState::Connecting);
    h.net.receive("x", b"early", Qos::AtLeastOnce);
    assert_eq!(h.m.deliver_incoming(h.now, &mut h.net), 0, "held");
    h.expect(&["OK", "+QMTCONN: 0,0,0"]);
    assert_eq!(h.m.deliver_incoming(h.now, &mut h.net), 1);
    h.expect(&["+QMTRECV: 0,1,\"x\",5,\"early\""]);
}

#[test]
fn a_broker_drop_is_noticed_at_the_sync_point_after_the_messages_before_it() {
    let mut h = H::new();
    h.connect();
    h.net.receive("x", b"last", Qos::AtLeastOnce);
    h.net.status = Some(LinkStatus::Lost);
    h.run_for(1_000 * MS);
    assert_eq!(h.text(), "", "not noticed by time passing");
    h.m.deliver_incoming(h.now, &mut h.net);
    h.expect(&["+QMTRECV: 0,1,\"x\",4,\"last\"", "+QMTSTAT: 0,1"]);
    assert_eq!(h.m.client_state(), ClientState::Closed);
}

#[test]
fn power_cycle_returns_to_power_on_state() {
    let mut h = H::new();
    h.connect();
    h.send("AT+CFUN=0\r");
    h.run_until(h.now);
    h.m.set_extra_latency(h.now, 7);
    h.m.power_cycle(h.now + 1, &mut h.net);
    h.expect(&[]);
    assert_eq!(h.m.client_state(), ClientState::Closed);
    assert_eq!(h.m.registration(), Registration::Registered);
    assert_eq!(h.m.power_state(), PowerState::Idle);
    assert_eq!(h.net.calls.last().map(String::as_str), Some("close"));
    h.connect();
}

#[test]
fn late_writes_and_faults_are_taken_at_the_modem_clock() {
    let mut h = H::new();
    h.run_until(50 * MS);
    h.m.write(10 * MS, b'A');
    h.m.write(10 * MS, b'T');
    h.m.write(10 * MS, b'\r');
    h.m.set_coverage(0, false);
    h.expect(&["+CEREG: 2", "OK"]);
    assert_eq!(h.time_of("+CEREG: 2\r\n"), 50 * MS + 11 * BYTE, "the fault at the clock");
    assert_eq!(h.time_of("OK\r\n"), 50 * MS + MS + 4 * BYTE, "the command at the clock");
}

#[test]
fn a_publish_of_the_largest_length_is_read_in_full() {
    let mut h = H::new();
    h.connect();
    h.send(&format!("AT+QMTPUBEX=0,5,1,1,\"big\",{}\r", at::MAX_PUBLISH_LEN));
    h.settle();
    assert_eq!(h.text(), ">");
    h.send(&"z".repeat(at::MAX_PUBLISH_LEN - 1));
    h.settle();
    assert!(h.m.in_data_mode());
    h.send("z");
    h.expect(&["OK", "+QMTPUBEX: 0,5,0"]);
    let last = h.net.calls.last().unwrap();
    assert!(last.starts_with("publish big 1 true zzz") && last.len() == "publish big 1 true ".len() + 4096);
}

#[test]
fn the_modem_is_plain_data_a_snapshot_is_a_clone_or_a_serde_round_trip() {
    fn plain<T: Clone + Send + Sync + 'static>() {}
    plain::<Modem>();
    let mut h = H::new();
    h.connect();
    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",2\r");
    h.run_for(MS / 2);
    let json = serde_json::to_string(&h.m).unwrap();
    let back: Modem = serde_json::from_str(&json).unwrap();
    assert_eq!(back, h.m);
    let mut twin = H { m: back, net: FakeLink::new(), now: h.now, rx: Vec::new(), cursor: 0 };
    for x in [&mut h, &mut twin] {
        x.settle();
        x.send("ok");
        x.settle();
    }
    let tail = |x: &H| x.rx[x.rx.len() - 20..].to_vec();
    assert_eq!(tail(&h), tail(&twin), "the restored modem continues identically");
}

#[test]
fn times_near_the_end_of_u64_saturate_instead_of_overflowing() {
    let mut h = H::new();
    h.now = u64::MAX - 10;
    h.connect();
    h.m.set_coverage(u64::MAX, false);
    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",1\rx");
    h.m.deliver_incoming(u64::MAX, &mut h.net);
    h.settle();
    assert_eq!(h.now, u64::MAX);
    assert_eq!(h.m.next_deadline(), None);
}

/// The same inputs give the same bytes at the same times and the same power log.
#[test]
fn runs_are_deterministic() {
    type Transcript = Vec<(u64, u8)>;
    type PowerLog = Vec<(u64, PowerState)>;
    fn run() -> (Transcript, PowerLog) {
        let mut h = H::new();
        h.connect();
        h.send("AT+QMTSUB=0,1,\"d\",1\r");
        h.settle();
        h.m.set_extra_latency(h.now + 3 * MS, 40);
        h.send("AT+QMTPUBEX=0,1,1,0,\"u\",4\r");
        h.settle();
        h.send("1234");
        h.run_for(50 * MS);
        h.net.receive("d", b"{}", Qos::AtLeastOnce);
        h.m.deliver_incoming(h.now, &mut h.net);
        h.m.set_coverage(h.now + 77, false);
        h.m.set_coverage(h.now + 3_000 * MS, true);
        h.settle();
        (h.rx, h.m.power_log().to_vec())
    }
    assert_eq!(run(), run());
}

/// Random bytes, command fragments, faults, link failures and sync points never panic the
/// modem, and its output stays well-formed in time.
#[test]
fn random_input_never_panics() {
    const FRAGMENTS: &[&str] = &[
        "AT\r",
        "AT+QMTOPEN=0,\"h\",1883\r",
        "AT+QMTCONN=0,\"d\"\r",
        "AT+QMTOPEN=0,\"h\",1883\r",
        "AT+QMTCONN=0,\"d\"\r",
        "AT+QMTPUBEX=0,1,1,0,\"t\",5\rhello",
        "AT+QMTSUB=0,1,\"t/#\",1\r",
        "AT+QMTPUBEX=0,1,1,0,\"t\",5\r",
        "AT+QMTPUBEX=0,0,0,1,\"t\",1\r",
        "AT+QMTDISC=0\r",
        "AT+QMTCLOSE=0\r",
        "AT+CFUN=0\r",
        "AT+CFUN=1\r",
        "AT+CEREG?\r",
        "\r\n",
        "\"",
        ",",
    ];
    for seed in [1u64, 2, 3, 0xdead_beef] {
        let mut rng = SplitMix64::new(seed);
        let mut h = H::with(Timing { attach_ns: 5 * MS, ..Timing::default() });
        for _ in 0..4_000 {
            match rng.below(20) {
                0..=3 => {
                    let n = rng.below(40) as usize;
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next_u8()).collect();
                    h.send_bytes(&bytes);
                }
                4..=13 => {
                    // A `\r` first ends whatever garbage came before, so sessions do get set up.
                    h.send("\r");
                    h.send(FRAGMENTS[rng.below(FRAGMENTS.len() as u64) as usize]);
                }
                14 => h.m.set_coverage(h.now + rng.below(10 * MS), rng.below(4) != 0),
                15 => h.m.set_extra_latency(h.now, rng.below(3) * 100),
                16 if rng.below(4) == 0 => h.m.drop_link(h.now + rng.below(10 * MS)),
                17 => {
                    h.net.receive("t/x", &[rng.next_u8(); 3], Qos::from_u8(rng.below(3) as u8).unwrap());
                    if rng.below(4) == 0 {
                        h.net.status = Some(LinkStatus::Lost);
                    }
                    h.m.deliver_incoming(h.now, &mut h.net);
                }
                18 => match rng.below(4) {
                    0 => h.net.open.push_back(Err(LinkError::Lost)),
                    1 => h.net.connect.push_back(Err(LinkError::Refused { code: 2 })),
                    2 => h.net.subscribe.push_back(Err(LinkError::Lost)),
                    _ => h.net.publish.push_back(Err(LinkError::Timeout(Duration::from_secs(1)))),
                },
                19 if rng.below(10) == 0 => h.m.power_cycle(h.now, &mut h.net),
                _ => {
                    // A whole session set-up, so that later steps meet a connected client.
                    h.send("\rAT+QMTOPEN=0,\"h\",1883\r");
                    h.run_for(200 * MS);
                    h.send("AT+QMTCONN=0,\"d\"\r");
                    h.run_for(200 * MS);
                    h.send("AT+QMTPUBEX=0,1,1,0,\"t\",5\rhello");
                }
            }
            h.run_for(rng.below(300 * MS));
        }
        h.settle();
        assert!(h.rx.windows(2).all(|w| w[0].0 <= w[1].0), "seed {seed}: output in time order");
        assert!(h.m.power_log().windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 != w[1].1), "seed {seed}");
        let c = h.m.counters();
        assert!(c.errors > 0, "seed {seed}: random bytes give errors");
        assert!(
            c.delivered > 0 && h.net.calls.iter().any(|c| c.starts_with("publish")),
            "seed {seed}: {c:?}"
        );
    }
}
