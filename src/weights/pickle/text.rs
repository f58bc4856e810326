//! Text encodings: latin-1 (Python 2 strings), decimal and two's complement integers (INT, LONG,
//! LONG1, LONG4), and the quoting and escapes of the protocol-0 STRING and UNICODE opcodes.

use super::machine::{Item, Machine, Obj};
use super::{limit, malformed, Result, MAX_DECIMAL_DIGITS};

impl Machine<'_> {
    /// A text integer (INT, LONG): i64 when it fits.
    pub(super) fn decimal(&mut self, text: &[u8], at: usize) -> Result<Item> {
        let text = std::str::from_utf8(text).map_err(|_| malformed("integer", at, "not ASCII"))?.trim();
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..).unwrap_or("")),
            Some(b'+') => (false, text.get(1..).unwrap_or("")),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("integer", at, format!("'{text}' is not an integer")));
        }
        if digits.len() > MAX_DECIMAL_DIGITS {
            return Err(limit(at, format!("integer with more than {MAX_DECIMAL_DIGITS} digits")));
        }
        if let Ok(v) = text.parse::<i64>() {
            return Ok(Item::Int(v));
        }
        let bytes = decimal_to_twos_complement(digits.as_bytes(), negative);
        self.int_from_le(&bytes, at)
    }

    /// A little-endian two's complement integer (LONG1, LONG4): i64 when it fits.
    pub(super) fn int_from_le(&mut self, bytes: &[u8], at: usize) -> Result<Item> {
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let fill = if negative { 0xff } else { 0 };
        // Drop sign-extension bytes that do not change the value.
        let mut len = bytes.len();
        while len > 1 {
            match (bytes.get(len - 1), bytes.get(len - 2)) {
                (Some(&last), Some(&prev)) if last == fill && (prev & 0x80) == (fill & 0x80) => len -= 1,
                _ => break,
            }
        }
        let bytes = bytes.get(..len).unwrap_or(&[]);
        if bytes.len() <= 8 {
            let mut full = [fill; 8];
            for (dst, src) in full.iter_mut().zip(bytes) {
                *dst = *src;
            }
            return Ok(Item::Int(i64::from_le_bytes(full)));
        }
        self.alloc(Obj::BigInt(bytes.to_vec()), at)
    }
}

pub(super) fn latin1_decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

pub(super) fn latin1_encode(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Decimal digits to little-endian two's complement bytes (digits checked by the caller; quadratic,
/// so the caller bounds their number).
pub(super) fn decimal_to_twos_complement(digits: &[u8], negative: bool) -> Vec<u8> {
    let mut magnitude: Vec<u8> = Vec::new();
    for &d in digits {
        let mut carry = d.wrapping_sub(b'0') as u32;
        for byte in magnitude.iter_mut() {
            let v = *byte as u32 * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.push(carry as u8);
            carry >>= 8;
        }
    }
    magnitude.push(0); // room for the sign bit
    if negative {
        let mut carry = 1u16;
        for byte in magnitude.iter_mut() {
            let v = (!*byte) as u16 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
    }
    magnitude
}

/// The argument of STRING: a quoted Python 2 `repr` of a byte string.
pub(super) fn unquote_string(text: &[u8]) -> Option<Vec<u8>> {
    let (&first, rest) = text.split_first()?;
    let (&last, body) = rest.split_last()?;
    if first != last || !matches!(first, b'\'' | b'"') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut it = body.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next()? {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hi = (it.next()? as char).to_digit(16)?;
                let lo = (it.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            d @ b'0'..=b'7' => {
                let mut v = (d - b'0') as u32;
                for _ in 0..2 {
                    match it.peek() {
                        Some(&o @ b'0'..=b'7') => {
                            v = v * 8 + (o - b'0') as u32;
                            it.next();
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// The argument of UNICODE: latin-1 text with `\uXXXX` and `\UXXXXXXXX` escapes.
pub(super) fn raw_unicode_unescape(text: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        let digits = match (b, text.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => {
                out.push(b as char);
                i += 1;
                continue;
            }
        };
        let hex = std::str::from_utf8(text.get(i + 2..i + 2 + digits)?).ok()?;
        out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
        i += 2 + digits;
    }
    Some(out)
}
