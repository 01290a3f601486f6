//! The modem's timing model: how long bytes, commands and network answers take in virtual time.

use serde::{Deserialize, Serialize};

/// Nanoseconds per millisecond.
pub const NS_PER_MS: u64 = 1_000_000;

/// Durations the modem model uses to place answers on the virtual timeline (all in
/// nanoseconds unless the name says otherwise).
///
/// The defaults describe an LTE-M (Cat-M1) module such as a BG95 on a 115200 baud UART:
///
/// | field | default | why |
/// |---|---|---|
/// | `uart_byte_ns` | 86 806 | 115200 baud, 8N1 = 10 bits per byte |
/// | `cmd_latency_ns` | 1 ms | AT command processing before the first answer byte |
/// | `rtt_ns` | 100 ms | one LTE-M network round trip (SYN/SYN-ACK, CONNECT/CONNACK, ...) |
/// | `attach_ns` | 2 s | network registration after CFUN=1 or when coverage comes back |
/// | `uplink_bps` | 375 000 | Cat-M1 peak uplink (half duplex, FDD) |
/// | `packet_overhead_bytes` | 60 | IPv4 (20) + TCP (20) + MQTT fixed/variable header (~6) + PDCP/RLC/MAC (~14) |
///
/// A network operation takes: transmit time of its bytes (plus `packet_overhead_bytes`) at
/// `uplink_bps` (power state *tx*), then, when an answer is awaited (TCP open, CONNACK,
/// SUBACK, PUBACK/PUBCOMP), `rtt_ns` plus the injected extra latency (power state *rx*).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Time one byte takes on the UART, in either direction.
    pub uart_byte_ns: u64,
    /// From the end of a command (its `\r`, or the last byte of QMTPUBEX data) to the start of
    /// the immediate answer (`OK`, `ERROR`, `>`, `+CEREG: ...`).
    pub cmd_latency_ns: u64,
    /// One network round trip.
    pub rtt_ns: u64,
    /// Network registration (attach) time, after AT+CFUN=1 or when coverage comes back.
    pub attach_ns: u64,
    /// Uplink rate in bit/s; the *tx* power state lasts the bytes sent at this rate.
    pub uplink_bps: u64,
    /// Bytes added to every packet sent (protocol headers below the MQTT payload).
    pub packet_overhead_bytes: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            uart_byte_ns: 86_806,
            cmd_latency_ns: NS_PER_MS,
            rtt_ns: 100 * NS_PER_MS,
            attach_ns: 2_000 * NS_PER_MS,
            uplink_bps: 375_000,
            packet_overhead_bytes: 60,
        }
    }
}

impl Timing {
    /// Time on air (power state *tx*) for a packet carrying `bytes` bytes, headers added.
    pub fn tx_ns(&self, bytes: usize) -> u64 {
        let bits = (bytes as u128 + u128::from(self.packet_overhead_bytes)) * 8;
        let bps = u128::from(self.uplink_bps.max(1));
        // Rounded up: a partial nanosecond still occupies the channel.
        u64::try_from((bits * 1_000_000_000).div_ceil(bps)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_time_of_a_small_publish_at_lte_m_rates() {
        let t = Timing::default();
        // (100 + 60) bytes * 8 bits / 375 kbit/s = 3.4133.. ms
        assert_eq!(t.tx_ns(100), 3_413_334);
        assert_eq!(t.tx_ns(0), 1_280_000);
    }

    #[test]
    fn zero_uplink_rate_does_not_divide_by_zero() {
        let t = Timing { uplink_bps: 0, ..Timing::default() };
        assert!(t.tx_ns(10) > 0);
    }
}
