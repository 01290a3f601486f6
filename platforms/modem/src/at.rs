//! Parsing of one AT command line (the bytes before its `\r`) into a [`Command`].
//!
//! Syntax accepted (Quectel BG95/BG96 "AT Commands Manual" §1.4 and "MQTT Application Note"):
//! the `AT` prefix and command names are case-insensitive; arguments are separated by `,`
//! without spaces; strings are in double quotes with no escapes (a string cannot contain `"`);
//! numbers are unsigned decimal. Anything else is an error (the caller answers `ERROR`).

/// Longest payload AT+QMTPUBEX accepts (Quectel allows up to 4096 on BG95; twinbed payloads are
/// at most 1024 bytes, PROTOCOL.md §2).
pub const MAX_PUBLISH_LEN: usize = 4096;
/// Longest host name for AT+QMTOPEN.
pub const MAX_HOST_LEN: usize = 255;
/// Longest client id for AT+QMTCONN.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Longest topic (MQTT allows 65535; the modem keeps command lines short).
pub const MAX_TOPIC_LEN: usize = 1024;

/// One parsed command of the subset (PROTOCOL.md §1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `AT`
    At,
    /// `AT+GSN`: the IMEI.
    Gsn,
    /// `AT+CFUN=0` (false) / `AT+CFUN=1` (true)
    Cfun(bool),
    /// `AT+CEREG?`
    CeregQuery,
    /// `AT+QMTOPEN=0,"<host>",<port>`
    QmtOpen {
        /// Broker host.
        host: String,
        /// Broker port.
        port: u16,
    },
    /// `AT+QMTCONN=0,"<client_id>"`
    QmtConn {
        /// MQTT client id.
        client_id: String,
    },
    /// `AT+QMTSUB=0,<msg_id>,"<topic>",<qos>`
    QmtSub {
        /// Packet id (1..=65535).
        msg_id: u16,
        /// Topic filter.
        topic: String,
        /// Requested QoS (0..=2).
        qos: u8,
    },
    /// `AT+QMTPUBEX=0,<msg_id>,<qos>,<retain>,"<topic>",<len>`
    QmtPubEx {
        /// Packet id (0 for QoS 0, 1..=65535 otherwise).
        msg_id: u16,
        /// QoS (0..=2).
        qos: u8,
        /// Retain flag.
        retain: bool,
        /// Topic name (no wildcards).
        topic: String,
        /// Payload length that follows the `>` prompt.
        len: usize,
    },
    /// `AT+QMTDISC=0`
    QmtDisc,
    /// `AT+QMTCLOSE=0`
    QmtClose,
}

/// An argument: a quoted string or an unsigned number.
#[derive(Debug, PartialEq, Eq)]
enum Arg<'a> {
    Str(&'a [u8]),
    Num(u32),
}

/// Parses one command line (without its terminator). `None` means "answer ERROR".
pub fn parse(line: &[u8]) -> Option<Command> {
    let rest = strip_prefix_ci(line, b"AT")?;
    if rest.is_empty() {
        return Some(Command::At);
    }
    let rest = rest.strip_prefix(b"+")?;
    // Name: up to '=', '?' or the end.
    let name_end = rest.iter().position(|&b| b == b'=' || b == b'?').unwrap_or(rest.len());
    let (name, tail) = rest.split_at(name_end);
    let name = name.to_ascii_uppercase();
    match (name.as_slice(), tail) {
        (b"CEREG", b"?") => Some(Command::CeregQuery),
        (b"GSN", b"") => Some(Command::Gsn),
        (b"CFUN", _) => match args(tail.strip_prefix(b"=")?)?.as_slice() {
            [Arg::Num(0)] => Some(Command::Cfun(false)),
            [Arg::Num(1)] => Some(Command::Cfun(true)),
            _ => None,
        },
        (b"QMTOPEN", _) => match args(tail.strip_prefix(b"=")?)?.as_slice() {
            [Arg::Num(0), Arg::Str(host), Arg::Num(port)] => {
                let host = text(host, MAX_HOST_LEN)?;
                let port = u16::try_from(*port).ok().filter(|&p| p != 0)?;
                Some(Command::QmtOpen { host, port })
            }
            _ => None,
        },
        (b"QMTCONN", _) => match args(tail.strip_prefix(b"=")?)?.as_slice() {
            [Arg::Num(0), Arg::Str(id)] => Some(Command::QmtConn { client_id: text(id, MAX_CLIENT_ID_LEN)? }),
            _ => None,
        },
        (b"QMTSUB", _) => match args(tail.strip_prefix(b"=")?)?.as_slice() {
            [Arg::Num(0), Arg::Num(msg_id), Arg::Str(topic), Arg::Num(qos)] => {
                let msg_id = u16::try_from(*msg_id).ok().filter(|&m| m != 0)?;
                let topic = text(topic, MAX_TOPIC_LEN)?;
                if !valid_filter(&topic) || *qos > 2 {
                    return None;
                }
                Some(Command::QmtSub { msg_id, topic, qos: *qos as u8 })
            }
            _ => None,
        },
        (b"QMTPUBEX", _) => match args(tail.strip_prefix(b"=")?)?.as_slice() {
            [Arg::Num(0), Arg::Num(msg_id), Arg::Num(qos), Arg::Num(retain), Arg::Str(topic), Arg::Num(len)] =>
            {
                let msg_id = u16::try_from(*msg_id).ok()?;
                // Quectel: <msgid> is 0 for QoS 0 and 1..=65535 otherwise.
                let id_ok = if *qos == 0 { msg_id == 0 } else { *qos <= 2 && msg_id != 0 };
                let len = usize::try_from(*len).ok()?;
                let topic = text(topic, MAX_TOPIC_LEN)?;
                if !id_ok || *retain > 1 || !(1..=MAX_PUBLISH_LEN).contains(&len) || !valid_topic(&topic) {
                    return None;
                }
                Some(Command::QmtPubEx { msg_id, qos: *qos as u8, retain: *retain == 1, topic, len })
            }
            _ => None,
        },
        (b"QMTDISC", _) => match args(tail.strip_prefix(b"=")?)?.as_slice() {
            [Arg::Num(0)] => Some(Command::QmtDisc),
            _ => None,
        },
        (b"QMTCLOSE", _) => match args(tail.strip_prefix(b"=")?)?.as_slice() {
            [Arg::Num(0)] => Some(Command::QmtClose),
            _ => None,
        },
        _ => None,
    }
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

/// Splits `a,"b",3` into arguments. `None` on any syntax error.
fn args(mut s: &[u8]) -> Option<Vec<Arg<'_>>> {
    let mut out = Vec::new();
    loop {
        if let Some(r) = s.strip_prefix(b"\"") {
            let end = r.iter().position(|&b| b == b'"')?;
            out.push(Arg::Str(&r[..end]));
            s = &r[end + 1..];
        } else {
            let end = s.iter().position(|&b| b == b',').unwrap_or(s.len());
            let digits = &s[..end];
            if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            out.push(Arg::Num(n));
            s = &s[end..];
        }
        match s.split_first() {
            None => return Some(out),
            Some((b',', r)) => s = r,
            Some(_) => return None,
        }
    }
}

/// A quoted argument as text: non-empty, at most `max` bytes, printable ASCII or UTF-8 without
/// control characters.
fn text(s: &[u8], max: usize) -> Option<String> {
    if s.is_empty() || s.len() > max {
        return None;
    }
    let s = std::str::from_utf8(s).ok()?;
    if s.chars().any(char::is_control) {
        return None;
    }
    Some(s.to_owned())
}

/// An MQTT topic name (MQTT 3.1.1 §4.7): no wildcards, no NUL.
fn valid_topic(t: &str) -> bool {
    !t.is_empty() && !t.contains(['+', '#', '\0'])
}

/// An MQTT topic filter (MQTT 3.1.1 §4.7.1): `+` fills a whole level, `#` only as the last level.
fn valid_filter(f: &str) -> bool {
    if f.is_empty() || f.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = f.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| {
        (!l.contains('+') || *l == "+") && (!l.contains('#') || (*l == "#" && i == levels.len() - 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Command> {
        parse(s.as_bytes())
    }

    #[rustfmt::skip]
    #[test]
    fn accepted_commands() {
        assert_eq!(p("AT"), Some(Command::At));
        assert_eq!(p("at"), Some(Command::At));
        assert_eq!(p("AT+CFUN=0"), Some(Command::Cfun(false)));
        assert_eq!(p("at+cfun=1"), Some(Command::Cfun(true)));
        assert_eq!(p("AT+CEREG?"), Some(Command::CeregQuery));
        assert_eq!(p("AT+QMTOPEN=0,\"broker.local\",1883"),
                   Some(Command::QmtOpen { host: "broker.local".into(), port: 1883 }));
        assert_eq!(p("AT+QMTCONN=0,\"dev1\""), Some(Command::QmtConn { client_id: "dev1".into() }));
        assert_eq!(p("AT+QMTSUB=0,1,\"twinbed/dev1/down\",1"),
                   Some(Command::QmtSub { msg_id: 1, topic: "twinbed/dev1/down".into(), qos: 1 }));
        assert_eq!(p("AT+QMTSUB=0,65535,\"a/+/#\",0"),
                   Some(Command::QmtSub { msg_id: 65535, topic: "a/+/#".into(), qos: 0 }));
        assert_eq!(p("AT+QMTPUBEX=0,7,1,0,\"twinbed/dev1/up/telemetry\",42"),
                   Some(Command::QmtPubEx { msg_id: 7, qos: 1, retain: false,
                                            topic: "twinbed/dev1/up/telemetry".into(), len: 42 }));
        assert_eq!(p("AT+QMTPUBEX=0,0,0,1,\"t\",1"),
                   Some(Command::QmtPubEx { msg_id: 0, qos: 0, retain: true, topic: "t".into(), len: 1 }));
        assert_eq!(p("AT+QMTDISC=0"), Some(Command::QmtDisc));
        assert_eq!(p("AT+QMTCLOSE=0"), Some(Command::QmtClose));
    }

    #[rustfmt::skip]
    #[test]
    fn refused_commands() {
        for bad in [
            "", "A", "ATX", "AT+", "AT+CFUN", "AT+CFUN=2", "AT+CFUN=1,0", "AT+CFUN?", "AT+CEREG",
            "AT+CEREG=1", "ATE0", "AT+QMTOPEN=1,\"h\",1883", "AT+QMTOPEN=0,\"h\",0",
            "AT+QMTOPEN=0,\"h\",65536", "AT+QMTOPEN=0,\"\",1883", "AT+QMTOPEN=0,h,1883",
            "AT+QMTOPEN=0,\"h\"", "AT+QMTOPEN=0,\"h\",1883,", "AT+QMTOPEN=0, \"h\",1883",
            "AT+QMTOPEN=0,\"h,1883", "AT+QMTOPEN=0,\"h\"x,1883", "AT+QMTCONN=0", "AT+QMTCONN=0,\"\"",
            "AT+QMTCONN=0,\"a\",\"user\",\"pw\"", "AT+QMTCONN=1,\"a\"",
            "AT+QMTSUB=0,0,\"t\",1", "AT+QMTSUB=0,1,\"t\",3", "AT+QMTSUB=0,1,\"a/#/b\",1",
            "AT+QMTSUB=0,1,\"a+\",1", "AT+QMTSUB=0,70000,\"t\",1",
            "AT+QMTPUBEX=0,1,0,0,\"t\",1", "AT+QMTPUBEX=0,0,1,0,\"t\",1", "AT+QMTPUBEX=0,1,3,0,\"t\",1",
            "AT+QMTPUBEX=0,1,1,2,\"t\",1", "AT+QMTPUBEX=0,1,1,0,\"t/#\",1", "AT+QMTPUBEX=0,1,1,0,\"t\",0",
            "AT+QMTPUBEX=0,1,1,0,\"t\",4097", "AT+QMTPUBEX=0,1,1,0,\"t\",99999999999",
            "AT+QMTDISC=1", "AT+QMTDISC", "AT+QMTCLOSE=0,0", "AT+QMTCLOSE=-1", "AT+QMTOPEN=0,\"h\x01\",1",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
        assert_eq!(parse(b"AT+QMTCONN=0,\"\xff\xfe\""), None, "not UTF-8");
    }
}
