//! A minimal GDB Remote Serial Protocol client: just what twinbed needs to stop the guest at a
//! symbol and read registers (breakpoints, continue, read all registers).
//!
//! Packets are `$<data>#<two hex digits of the modulo-256 sum of data>`, each acknowledged by
//! the receiver with `+`. QEMU 7.2 does not offer no-ack mode (`QStartNoAckMode` gets an empty,
//! "unsupported" reply), so the reader thread acks every packet it receives and skips the stub's
//! acks of ours (the transport is a local socket: nothing is ever re-sent). Reading happens on a thread of its own ([`spawn_reader`]) that turns the byte stream into
//! packets, so the owner can wait on the guest's console and the stub at once.

use std::io::{self, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;

/// Frames `data` as an RSP packet.
pub fn frame(data: &str) -> Vec<u8> {
    let sum = data.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${data}#{sum:02x}").into_bytes()
}

/// Reads one packet's data from `r`, skipping acks (`+`/`-`) before it. `Ok(None)` at EOF.
pub fn read_packet<R: Read>(r: &mut R) -> io::Result<Option<String>> {
    let mut byte = [0u8; 1];
    loop {
        if r.read(&mut byte)? == 0 {
            return Ok(None);
        }
        if byte[0] == b'$' {
            break;
        }
        // '+', '-' (acks) and anything else between packets are skipped.
    }
    let mut data = Vec::new();
    loop {
        if r.read(&mut byte)? == 0 {
            return Ok(None);
        }
        if byte[0] == b'#' {
            break;
        }
        data.push(byte[0]);
    }
    let mut sum = [0u8; 2];
    r.read_exact(&mut sum)?;
    let want = u8::from_str_radix(std::str::from_utf8(&sum).unwrap_or("zz"), 16)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "gdb packet: bad checksum digits"))?;
    let got = data.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    if want != got {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("gdb packet: checksum {got:02x} != {want:02x}"),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

/// The writing half of a connection to a gdbstub.
#[derive(Debug)]
pub struct GdbClient {
    stream: UnixStream,
}

impl GdbClient {
    /// Wraps a fresh connection; returns the client and a stream clone for the reader thread.
    pub fn new(stream: UnixStream) -> io::Result<(GdbClient, UnixStream)> {
        let reader = stream.try_clone()?;
        Ok((GdbClient { stream }, reader))
    }

    /// Sends one packet.
    pub fn send(&mut self, data: &str) -> io::Result<()> {
        tracing::trace!(target: "gdb", "-> {data}");
        self.stream.write_all(&frame(data))
    }
}

/// Parses a `g` reply (ARM: r0..r15 as 8 hex digits each, target byte order) into r0..r15.
pub fn parse_core_registers(reply: &str) -> Option<[u32; 16]> {
    let mut regs = [0u32; 16];
    for (i, r) in regs.iter_mut().enumerate() {
        let hex = reply.get(i * 8..i * 8 + 8)?;
        *r = u32::from_str_radix(hex, 16).ok()?.swap_bytes();
    }
    Some(regs)
}

/// Reads packets from `stream` until EOF or error, acknowledging each (`+`) and sending it
/// through `tx` wrapped by `wrap`; sends `closed` at the end.
pub fn spawn_reader<E: Send + 'static>(
    stream: UnixStream,
    tx: Sender<E>,
    wrap: fn(String) -> E,
    closed: E,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut ack = match stream.try_clone() {
            Ok(s) => s,
            Err(_) => {
                let _ = tx.send(closed);
                return;
            }
        };
        let mut r = BufReader::new(stream);
        while let Ok(Some(p)) = read_packet(&mut r) {
            tracing::trace!(target: "gdb", "<- {p}");
            if ack.write_all(b"+").is_err() || tx.send(wrap(p)).is_err() {
                return;
            }
        }
        let _ = tx.send(closed);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_reads_packets() {
        assert_eq!(frame("OK"), b"$OK#9a");
        assert_eq!(frame("c"), b"$c#63");
        let mut wire: &[u8] = b"+$OK#9a+$T05thread:01;#07";
        assert_eq!(read_packet(&mut wire).unwrap().as_deref(), Some("OK"));
        assert_eq!(read_packet(&mut wire).unwrap().as_deref(), Some("T05thread:01;"));
        assert_eq!(read_packet(&mut wire).unwrap(), None);
    }

    #[test]
    fn rejects_a_bad_checksum() {
        let mut wire: &[u8] = b"$OK#00";
        assert!(read_packet(&mut wire).is_err());
    }

    #[test]
    fn parses_little_endian_registers() {
        let mut reply = String::from("e8030000"); // r0 = 1000
        reply.push_str("02000000"); // r1 = 2
        reply.push_str(&"00000000".repeat(14));
        let regs = parse_core_registers(&reply).unwrap();
        assert_eq!((regs[0], regs[1]), (1000, 2));
        assert!(parse_core_registers("e803").is_none());
    }
}
