//! Small parsers for the modem's lines. All total: any input gives a value or `None`.

/// `line` without leading and trailing spaces.
pub(crate) fn trim(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|&b| b != b' ').unwrap_or(line.len());
    let end = line.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
    &line[start..end.max(start)]
}

/// The rest of `line` after `prefix` (e.g. `+QMTOPEN:`), without leading spaces.
pub(crate) fn after<'l>(line: &'l [u8], prefix: &[u8]) -> Option<&'l [u8]> {
    line.strip_prefix(prefix).map(trim)
}

/// A decimal integer with an optional `-`, spaces around it allowed, at most 9 digits.
pub(crate) fn int(field: &[u8]) -> Option<i32> {
    let f = trim(field);
    let (neg, digits) = match f.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, f),
    };
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
    Some(if neg { -v } else { v })
}

/// The first `K` comma-separated fields of `rest` as integers; `None` if there are fewer or
/// one of them is not an integer. Fields after the `K`th are not looked at.
pub(crate) fn ints<const K: usize>(rest: &[u8]) -> Option<[i32; K]> {
    let mut out = [0; K];
    let mut fields = rest.split(|&b| b == b',');
    for slot in out.iter_mut() {
        *slot = int(fields.next()?)?;
    }
    Some(out)
}

/// The header of `+QMTRECV: <client>,<msg_id>,"<topic>",<len>,"` (the line so far, ending at
/// the payload's opening quote): `(msg_id, topic, len)`.
pub(crate) fn recv_header(line: &[u8]) -> Option<(u16, &[u8], usize)> {
    let rest = after(line, b"+QMTRECV:")?;
    let rest = rest.strip_suffix(b",\"")?;
    // <client>,<msg_id>,
    let mut parts = rest.splitn(3, |&b| b == b',');
    int(parts.next()?)?;
    let msg_id = u16::try_from(int(parts.next()?)?).ok()?;
    // "<topic>",<len>
    let rest = trim(parts.next()?).strip_prefix(b"\"")?;
    let close = rest.iter().position(|&b| b == b'"')?;
    let topic = &rest[..close];
    let len = trim(&rest[close + 1..]).strip_prefix(b",")?;
    let len = usize::try_from(int(len)?).ok()?;
    Some((msg_id, topic, len))
}

/// A string argument the modem can take inside quotes: 1..=128 bytes of printable ASCII
/// without `"`.
pub(crate) fn valid_arg(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'"')
}

/// Builds a command line in a fixed buffer.
pub(crate) struct Line {
    buf: [u8; 192],
    len: usize,
}

impl Line {
    pub(crate) fn new(start: &str) -> Self {
        let mut l = Line { buf: [0; 192], len: 0 };
        l.push(start.as_bytes());
        l
    }

    /// Appends; arguments are validated to fit (at most 2 strings of 128 bytes and a few
    /// numbers), so nothing is lost in practice; excess is dropped rather than panicking.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> &mut Self {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    pub(crate) fn num(&mut self, mut v: u32) -> &mut Self {
        let mut d = [0u8; 10];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&d[i..])
    }

    pub(crate) fn quoted(&mut self, s: &str) -> &mut Self {
        self.push(b"\"").push(s.as_bytes()).push(b"\"")
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        assert_eq!(trim(b"  a b "), b"a b");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(int(b" -12 "), Some(-12));
        assert_eq!(int(b"-"), None);
        assert_eq!(int(b"1234567890"), None);
        assert_eq!(int(b"1a"), None);
        assert_eq!(ints::<2>(b"0, 5,x"), Some([0, 5]));
        assert_eq!(ints::<3>(b"0,5"), None);
        assert_eq!(recv_header(b"+QMTRECV: 0,7,\"a/b\",12,\""), Some((7, &b"a/b"[..], 12)));
        assert_eq!(recv_header(b"+QMTRECV: 0,7,\"a/b\""), None);
        assert_eq!(recv_header(b"+QMTRECV: 0,70000,\"a\",1,\""), None);
        assert_eq!(recv_header(b"+QMTRECV: 0,1,\"a\",-1,\""), None);
        assert_eq!(recv_header(b"+QMTRECV: 0,1,\"\",0,\""), Some((1, &b""[..], 0)));
        assert!(valid_arg("twinbed/dev-1/up/telemetry"));
        assert!(!valid_arg("") && !valid_arg("a\"b") && !valid_arg("a\rb") && !valid_arg(&"x".repeat(129)));
    }
}
