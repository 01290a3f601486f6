//! A TCP bridge that attaches the modem to QEMU's UART1 through a `-chardev socket`.
//!
//! QEMU connects to the bridge as a client, e.g.
//! `-chardev socket,id=modem,host=127.0.0.1,port=<port> -serial <uart0> -serial chardev:modem`.
//! The bridge runs the same [`Modem`] as the embedded engine, but on **wall-clock time**
//! (nanoseconds since the connection was accepted, added to the modem's clock): QEMU with
//! `-icount` keeps its own virtual clock, which the bridge cannot see, so answers come when the
//! host gets to them. This path is therefore *not* byte-for-byte deterministic in timing (the
//! order of answers to one firmware is the same; their time stamps and the interleaving with
//! incoming messages are not). Incoming messages are delivered as soon as the bridge sees them
//! (it calls [`Modem::deliver_incoming`] on every turn of its loop, at most ~20 ms apart).
//!
//! One connection is served; when QEMU disconnects (or [`ChardevBridge::stop`] is called) the
//! thread ends and hands back the modem and the link.

use crate::link::Link;
use crate::modem::{Fault, Modem};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest the bridge sleeps in a read before it looks at faults, incoming messages and
/// the stop flag again.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// A running bridge (see the module docs).
#[derive(Debug)]
pub struct ChardevBridge {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    faults: mpsc::Sender<Fault>,
    thread: JoinHandle<(Modem, Box<dyn Link + Send>)>,
}

/// Listens on `addr` (port 0 picks a free port, see [`ChardevBridge::local_addr`]) and serves
/// one QEMU chardev connection with `modem` on `link`, on a thread of its own.
pub fn serve_chardev(
    addr: impl ToSocketAddrs,
    modem: Modem,
    link: Box<dyn Link + Send>,
) -> io::Result<ChardevBridge> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (faults, fault_rx) = mpsc::channel();
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("twinbed-modem-chardev".into())
        .spawn(move || serve(listener, modem, link, &stop2, &fault_rx))?;
    Ok(ChardevBridge { addr, stop, faults, thread })
}

impl ChardevBridge {
    /// The address the bridge listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Injects a fault now (wall clock).
    pub fn inject(&self, fault: Fault) {
        // The thread only goes away after `stop`, which consumes the bridge.
        let _ = self.faults.send(fault);
    }

    /// Stops the bridge (closing the connection) and returns the modem and the link.
    pub fn stop(self) -> (Modem, Box<dyn Link + Send>) {
        self.stop.store(true, Ordering::Release);
        // Wakes the thread if it still waits in `accept`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        match self.thread.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

fn serve(
    listener: TcpListener,
    mut modem: Modem,
    mut link: Box<dyn Link + Send>,
    stop: &AtomicBool,
    faults: &mpsc::Receiver<Fault>,
) -> (Modem, Box<dyn Link + Send>) {
    let stream = match listener.accept() {
        Ok((s, peer)) => {
            tracing::info!(target: "modem", %peer, "chardev connected");
            s
        }
        Err(e) => {
            tracing::warn!(target: "modem", error = %e, "chardev accept failed");
            return (modem, link);
        }
    };
    drop(listener);
    if let Err(e) = run(stream, &mut modem, link.as_mut(), stop, faults) {
        tracing::info!(target: "modem", error = %e, "chardev connection ended");
    }
    (modem, link)
}

fn run(
    mut stream: TcpStream,
    modem: &mut Modem,
    link: &mut (dyn Link + Send),
    stop: &AtomicBool,
    faults: &mpsc::Receiver<Fault>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let start = Instant::now();
    let base = modem.now();
    let clock = || base.saturating_add(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Acquire) {
        let now = clock();
        while let Ok(f) = faults.try_recv() {
            modem.inject(now, f);
        }
        modem.deliver_incoming(now, link);
        let out = modem.take_output(now);
        if !out.is_empty() {
            stream.write_all(&out)?;
        }
        let now = clock();
        let wait = modem
            .next_deadline()
            .map_or(MAX_WAIT, |d| Duration::from_nanos(d.saturating_sub(now)))
            .clamp(Duration::from_micros(100), MAX_WAIT);
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                let now = clock();
                for &b in &buf[..n] {
                    modem.write(now, b);
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeLink;
    use crate::link::Qos;
    use crate::Timing;
    use std::io::BufRead;

    /// Reads lines until one equals `want` (or the read timeout fails the test).
    fn expect_line(r: &mut impl BufRead, want: &str) {
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => panic!("EOF while waiting for {want:?}; saw {seen:?}"),
                Ok(_) => {}
                Err(e) => panic!("{e} while waiting for {want:?}; saw {seen:?}"),
            }
            if line.trim_end() == want {
                return;
            }
            seen.push(line);
        }
    }

    #[test]
    fn a_tcp_client_talks_to_the_modem_on_wall_clock_time() {
        let timing = Timing { rtt_ns: 1_000_000, attach_ns: 1_000_000, ..Timing::default() };
        let mut link = FakeLink::new();
        link.on_connect.push(crate::Incoming {
            topic: "twinbed/dev1/down".into(),
            payload: b"{\"type\":\"ack\"}".to_vec(),
            qos: Qos::AtLeastOnce,
            retain: false,
        });
        let bridge = serve_chardev("127.0.0.1:0", Modem::new(timing), Box::new(link)).unwrap();
        let mut s = TcpStream::connect(bridge.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = io::BufReader::new(s.try_clone().unwrap());

        s.write_all(b"AT\r\n").unwrap();
        expect_line(&mut r, "OK");
        s.write_all(b"AT+QMTOPEN=0,\"broker\",1883\r").unwrap();
        expect_line(&mut r, "+QMTOPEN: 0,0");
        s.write_all(b"AT+QMTCONN=0,\"dev1\"\r").unwrap();
        expect_line(&mut r, "+QMTCONN: 0,0,0");
        // The message the fake link holds is delivered as soon as a session is up.
        expect_line(&mut r, "+QMTRECV: 0,1,\"twinbed/dev1/down\",14,\"{\"type\":\"ack\"}\"");
        bridge.inject(Fault::Coverage(false));
        expect_line(&mut r, "+CEREG: 2");
        expect_line(&mut r, "+QMTSTAT: 0,7");
        s.write_all(b"BAD\r").unwrap();
        expect_line(&mut r, "ERROR");

        let (modem, _link) = bridge.stop();
        assert_eq!(modem.counters().delivered, 1);
        assert_eq!(modem.counters().errors, 1);
    }

    #[test]
    fn stop_before_any_connection_returns_the_modem() {
        let bridge =
            serve_chardev("127.0.0.1:0", Modem::new(Timing::default()), Box::new(FakeLink::new())).unwrap();
        let (modem, link) = bridge.stop();
        assert_eq!(modem.counters(), Default::default());
        assert_eq!(link.status(), crate::LinkStatus::Closed);
    }
}
