//! Record key to the `key` extension value, typed by the KafkaSource's
//! `kafkasources.sources.knative.dev/key-type` label, as Knative's dispatcher `KeyDeserializer`
//! does: numbers are big-endian (Kafka's serializers), and a key that does not fit its declared
//! type falls back to a string rather than failing the record.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use cloudevents::event::ExtensionValue;

use crate::engine::plan::KeyType;

/// The extension value of a (non-empty) record key.
pub fn key_value(key: &[u8], key_type: KeyType) -> ExtensionValue {
    let typed = match key_type {
        KeyType::String => None,
        KeyType::Int => int_value(key),
        KeyType::Float => float_text(key).map(ExtensionValue::String),
        KeyType::ByteArray => Some(ExtensionValue::String(BASE64_STANDARD.encode(key))),
    };
    typed.unwrap_or_else(|| ExtensionValue::String(String::from_utf8_lossy(key).into_owned()))
}

fn int_value(key: &[u8]) -> Option<ExtensionValue> {
    let n = match key.len() {
        4 => i64::from(i32::from_be_bytes(key.try_into().ok()?)),
        8 => i64::from_be_bytes(key.try_into().ok()?),
        _ => return None,
    };
    Some(ExtensionValue::Integer(n))
}

/// Floats become text, spelled as Java's `Float`/`Double.toString` spells ordinary values
/// ("1.5", "3.0", "NaN", "Infinity"); very large or small magnitudes switch to exponent form at
/// different thresholds than Java's.
fn float_text(key: &[u8]) -> Option<String> {
    // Each width formats itself: widening first would print 1.1f32 as 1.100000023841858.
    let text = match key.len() {
        4 => format!("{:?}", f32::from_be_bytes(key.try_into().ok()?)),
        8 => format!("{:?}", f64::from_be_bytes(key.try_into().ok()?)),
        _ => return None,
    };
    Some(match text.as_str() {
        "inf" => "Infinity".to_owned(),
        "-inf" => "-Infinity".to_owned(),
        _ => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> ExtensionValue {
        ExtensionValue::String(v.to_owned())
    }

    #[test]
    fn key_values_by_type() {
        let cases: Vec<(Vec<u8>, KeyType, ExtensionValue)> = vec![
            (b"user-1".to_vec(), KeyType::String, s("user-1")),
            (b"caf\xc3\xa9".to_vec(), KeyType::String, s("café")),
            (b"bad\xff".to_vec(), KeyType::String, s("bad\u{FFFD}")),
            (
                42i32.to_be_bytes().to_vec(),
                KeyType::Int,
                ExtensionValue::Integer(42),
            ),
            (
                (-7i32).to_be_bytes().to_vec(),
                KeyType::Int,
                ExtensionValue::Integer(-7),
            ),
            (
                (1i64 << 40).to_be_bytes().to_vec(),
                KeyType::Int,
                ExtensionValue::Integer(1 << 40),
            ),
            (b"123".to_vec(), KeyType::Int, s("123")),
            (b"12345".to_vec(), KeyType::Int, s("12345")),
            (1.5f32.to_be_bytes().to_vec(), KeyType::Float, s("1.5")),
            (1.1f32.to_be_bytes().to_vec(), KeyType::Float, s("1.1")),
            (1.5f64.to_be_bytes().to_vec(), KeyType::Float, s("1.5")),
            (3.0f64.to_be_bytes().to_vec(), KeyType::Float, s("3.0")),
            (
                (-0.25f64).to_be_bytes().to_vec(),
                KeyType::Float,
                s("-0.25"),
            ),
            (f64::NAN.to_be_bytes().to_vec(), KeyType::Float, s("NaN")),
            (
                f32::INFINITY.to_be_bytes().to_vec(),
                KeyType::Float,
                s("Infinity"),
            ),
            (
                f64::NEG_INFINITY.to_be_bytes().to_vec(),
                KeyType::Float,
                s("-Infinity"),
            ),
            (b"1.5".to_vec(), KeyType::Float, s("1.5")),
            (b"\x00\x01\xff".to_vec(), KeyType::ByteArray, s("AAH/")),
            (b"hello".to_vec(), KeyType::ByteArray, s("aGVsbG8=")),
        ];
        for (key, key_type, want) in cases {
            assert_eq!(key_value(&key, key_type), want, "{key:?} as {key_type:?}");
        }
    }
}
