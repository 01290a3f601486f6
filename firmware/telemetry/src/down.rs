//! Parsing of the twin's messages on `twinbed/<dev>/down` (PROTOCOL.md §2):
//!
//! ```text
//! {"type":"ack","boot":B,"seq":S}
//! {"type":"desired","version":V,"state":{"interval_s":N,...}}
//! ```
//!
//! Rules:
//! - the payload must be one well-formed JSON object (whitespace around it allowed), else
//!   [`Error::Syntax`] with the byte offset; a member's value nesting more than 64 non-empty
//!   arrays or objects is refused the same way (the scanner is iterative, its stack a 64-bit
//!   word: no recursion, no buffer);
//! - keys may come in any order; unknown keys (at the top and inside `state`) are skipped
//!   whatever their value; a repeated key: the last one counts;
//! - `boot`, `seq`: integers in `0..=u32::MAX`; `version`: in `0..=u64::MAX`; `interval_s`:
//!   in `0..=u32::MAX`, or `null` (= not set). No sign, fraction or exponent:
//!   anything else is [`Error::BadValue`]. Keys of the other message type are ignored
//!   (`seq` in a `desired` message is not checked);
//! - a missing required key is [`Error::MissingKey`]; a `type` other than `ack` and `desired`
//!   is [`Error::UnknownType`] (for forward compatibility: ignore such a message);
//! - strings may hold any JSON escape; keys and the `type` value are compared after decoding
//!   them (`"typ\u0065"` is `"type"`). Bytes above 0x7F in strings are not checked for UTF-8
//!   validity: no key or value the device reads can contain them.

use crate::Error;

/// A message from the twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    /// Every record of boot `boot` with seq ≤ `seq` is stored (or declared dropped): pass to
    /// [`Outbox::ack`](crate::Outbox::ack).
    Ack {
        /// Boot id.
        boot: u32,
        /// Highest acked seq.
        seq: u32,
    },
    /// The desired state.
    Desired(Desired),
}

/// The desired state this firmware understands. Other keys of `state` are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The twin's version of the desired state (reported back in a `desired_applied` event).
    pub version: u64,
    /// Sampling interval, seconds; `None` when absent or `null`.
    pub interval_s: Option<u32>,
}

/// Parses one down message (see the module docs for what is accepted).
pub fn parse_down(payload: &[u8]) -> Result<Down, Error> {
    let mut p = Scanner { s: payload, i: 0 };
    let (mut typ, mut boot, mut seq, mut version, mut state) = (None, None, None, None, None);
    p.object(|key, value| {
        if key_is(key, "type") {
            typ = Some(value);
        } else if key_is(key, "boot") {
            boot = Some(value);
        } else if key_is(key, "seq") {
            seq = Some(value);
        } else if key_is(key, "version") {
            version = Some(value);
        } else if key_is(key, "state") {
            state = Some(value);
        }
    })?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err());
    }
    let typ = typ.ok_or(Error::MissingKey { key: "type" })?;
    let string_is = |v: &[u8], s: &str| v.len() >= 2 && v[0] == b'"' && key_is(&v[1..v.len() - 1], s);
    if string_is(typ, "ack") {
        Ok(Down::Ack { boot: req_u32(boot, "boot")?, seq: req_u32(seq, "seq")? })
    } else if string_is(typ, "desired") {
        let version = unsigned(version.ok_or(Error::MissingKey { key: "version" })?)
            .ok_or(Error::BadValue { key: "version" })?;
        let state = state.ok_or(Error::MissingKey { key: "state" })?;
        if state.first() != Some(&b'{') {
            return Err(Error::BadValue { key: "state" });
        }
        let mut interval = None;
        // Already validated as a value: this second pass cannot fail on syntax.
        Scanner { s: state, i: 0 }.object(|key, value| {
            if key_is(key, "interval_s") {
                interval = Some(value);
            }
        })?;
        let interval_s = match interval {
            None | Some(b"null") => None,
            Some(v) => Some(
                unsigned(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or(Error::BadValue { key: "interval_s" })?,
            ),
        };
        Ok(Down::Desired(Desired { version, interval_s }))
    } else if typ.first() == Some(&b'"') {
        Err(Error::UnknownType)
    } else {
        Err(Error::BadValue { key: "type" })
    }
}

fn req_u32(v: Option<&[u8]>, key: &'static str) -> Result<u32, Error> {
    let v = v.ok_or(Error::MissingKey { key })?;
    unsigned(v).and_then(|n| u32::try_from(n).ok()).ok_or(Error::BadValue { key })
}

/// A JSON number that is a plain unsigned integer (digits only) fitting a u64.
fn unsigned(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Whether the raw contents of a JSON string (between the quotes, escapes undecoded, already
/// validated) decode to the ASCII string `want`.
fn key_is(raw: &[u8], want: &str) -> bool {
    let want = want.as_bytes();
    let (mut i, mut k) = (0, 0);
    while i < raw.len() {
        let mut c = raw[i];
        i += 1;
        if c == b'\\' {
            let Some(&e) = raw.get(i) else { return false };
            i += 1;
            c = match e {
                b'b' => 0x08,
                b'f' => 0x0C,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => {
                    let Some(code) = raw.get(i..i + 4).and_then(hex4) else { return false };
                    i += 4;
                    match u8::try_from(code) {
                        Ok(c) if c < 0x80 => c,
                        _ => return false,
                    }
                }
                other => other, // \" \\ \/
            };
        }
        if want.get(k) != Some(&c) {
            return false;
        }
        k += 1;
    }
    k == want.len()
}

fn hex4(h: &[u8]) -> Option<u32> {
    h.iter().try_fold(0u32, |acc, &b| Some(acc * 16 + (b as char).to_digit(16)?))
}

/// A validating JSON scanner over a byte slice.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn err(&self) -> Error {
        Error::Syntax { at: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), Error> {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// An object; calls `f(raw key contents, value bytes)` for each member.
    fn object(&mut self, mut f: impl FnMut(&'a [u8], &'a [u8])) -> Result<(), Error> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.eat(b':')?;
            self.ws();
            let start = self.i;
            self.value()?;
            f(key, &self.s[start..self.i]);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    /// A string at the cursor; returns its raw contents (between the quotes).
    fn string(&mut self) -> Result<&'a [u8], Error> {
        if self.peek() != Some(b'"') {
            return Err(self.err());
        }
        self.i += 1;
        let start = self.i;
        loop {
            let Some(c) = self.peek() else { return Err(self.err()) };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(&self.s[start..self.i - 1]);
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            if self.s.get(self.i..self.i + 4).and_then(hex4).is_none() {
                                return Err(self.err());
                            }
                            self.i += 4;
                        }
                        _ => return Err(self.err()),
                    }
                }
                0x00..=0x1F => return Err(self.err()),
                _ => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), Error> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err()),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err());
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Error> {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// Any JSON value at the cursor, nesting at most 64 deep. Iterative: `stack` holds one bit
    /// per open container (1: object, 0: array).
    fn value(&mut self) -> Result<(), Error> {
        let mut stack: u64 = 0;
        let mut depth = 0u32;
        loop {
            // A value starts here.
            self.ws();
            let mut opened = false;
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    self.i += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        if depth == 64 {
                            return Err(self.err());
                        }
                        stack = (stack << 1) | u64::from(open == b'{');
                        depth += 1;
                        if open == b'{' {
                            self.string()?;
                            self.eat(b':')?;
                        }
                        opened = true;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.err()),
            }
            if opened {
                continue;
            }
            // After a value: close containers, or go on to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let in_object = stack & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if in_object {
                            self.ws();
                            self.string()?;
                            self.eat(b':')?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return Err(self.err()),
                }
                self.i += 1;
                stack >>= 1;
                depth -= 1;
            }
        }
    }
}
