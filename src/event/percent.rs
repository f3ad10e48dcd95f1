//! Percent-encoding of CloudEvents attribute values in HTTP headers (HTTP protocol binding,
//! section 3.1.3.2).
//!
//! Encoding escapes space, `"`, `%` and every byte outside visible ASCII (0x21..=0x7E) of the
//! value's UTF-8 form as `%XX`, so an encoded value is always a valid header value. Decoding is
//! lenient where the spec allows (lowercase hex, a value wrapped in double quotes) and strict
//! where it matters: a broken escape or a result that is not valid UTF-8 is an error.

use std::borrow::Cow;

/// Why a header value could not be percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentDecodeError {
    #[error("incomplete percent escape at byte {at}")]
    Incomplete { at: usize },
    #[error("invalid percent escape at byte {at}: expected two hex digits")]
    InvalidHex { at: usize },
    #[error("decoded value is not valid UTF-8")]
    InvalidUtf8,
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn needs_escape(b: u8) -> bool {
    !(0x21..=0x7E).contains(&b) || b == b'"' || b == b'%'
}

/// Percent-encodes `value` for a `ce-*` header; borrows when nothing needs escaping (the usual
/// case for ids, types and sources).
pub fn encode(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    let Some(first) = bytes.iter().position(|&b| needs_escape(b)) else {
        return Cow::Borrowed(value);
    };
    let mut out = String::with_capacity(bytes.len() + 16);
    out.push_str(&value[..first]);
    for &b in &bytes[first..] {
        if needs_escape(b) {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0F)]));
        } else {
            out.push(char::from(b));
        }
    }
    Cow::Owned(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a `ce-*` header value. Borrows when the value holds no escape.
pub fn decode(value: &[u8]) -> Result<Cow<'_, str>, PercentDecodeError> {
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    };
    if !value.contains(&b'%') {
        return std::str::from_utf8(value)
            .map(Cow::Borrowed)
            .map_err(|_| PercentDecodeError::InvalidUtf8);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let (Some(&hi), Some(&lo)) = (value.get(i + 1), value.get(i + 2)) else {
            return Err(PercentDecodeError::Incomplete { at: i });
        };
        match (hex_value(hi), hex_value(lo)) {
            (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
            _ => return Err(PercentDecodeError::InvalidHex { at: i }),
        }
        i += 3;
    }
    // std's UTF-8 validation rejects overlong forms, surrogates and truncated sequences.
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PercentDecodeError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_spec_examples() {
        let cases = [
            ("Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
            ("percent%encoded", "percent%25encoded"),
            ("café", "caf%C3%A9"),
            ("say \"hi\"", "say%20%22hi%22"),
            ("tab\tnewline\n", "tab%09newline%0A"),
            ("", ""),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode(plain), encoded, "encode {plain:?}");
            assert_eq!(
                decode(encoded.as_bytes()).unwrap(),
                plain,
                "decode {encoded:?}"
            );
        }
    }

    #[test]
    fn encode_borrows_when_nothing_changes() {
        for value in [
            "partition:0/offset:12",
            "/apis/v1/namespaces/ns/kafkasources/s#t",
            "~!",
        ] {
            assert!(matches!(encode(value), Cow::Borrowed(_)), "{value:?}");
        }
        assert!(matches!(
            decode(b"plain-value"),
            Ok(Cow::Borrowed("plain-value"))
        ));
    }

    #[test]
    fn decode_is_lenient_where_allowed() {
        let cases: [(&[u8], &str); 5] = [
            (b"caf%c3%a9", "café"),
            (b"Euro%20%e2%82%ac", "Euro €"),
            (b"\"quoted value\"", "quoted value"),
            (b"\"caf%C3%A9\"", "café"),
            (b"\"", "\""),
        ];
        for (encoded, plain) in cases {
            assert_eq!(
                decode(encoded).unwrap(),
                plain,
                "{:?}",
                String::from_utf8_lossy(encoded)
            );
        }
    }

    #[test]
    fn decode_rejects_malformed_values() {
        let cases: [(&[u8], PercentDecodeError); 8] = [
            (b"%", PercentDecodeError::Incomplete { at: 0 }),
            (b"abc%", PercentDecodeError::Incomplete { at: 3 }),
            (b"abc%4", PercentDecodeError::Incomplete { at: 3 }),
            (b"%g0", PercentDecodeError::InvalidHex { at: 0 }),
            (b"x%0z", PercentDecodeError::InvalidHex { at: 1 }),
            (b"%C0%A0", PercentDecodeError::InvalidUtf8),
            (b"%ED%A0%80", PercentDecodeError::InvalidUtf8),
            (b"%E2", PercentDecodeError::InvalidUtf8),
        ];
        for (encoded, want) in cases {
            assert_eq!(
                decode(encoded),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(encoded)
            );
        }
        // Raw bytes that are not UTF-8 fail too, escaped or not.
        assert_eq!(decode(b"\xff"), Err(PercentDecodeError::InvalidUtf8));
    }

    #[test]
    fn encoded_values_are_visible_ascii() {
        let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let encoded = encode(&all);
        assert!(encoded
            .bytes()
            .all(|b| (0x21..=0x7E).contains(&b) && b != b'"'));
        assert_eq!(decode(encoded.as_bytes()).unwrap(), all);
    }
}
