//! Binary content mode, the part the HTTP and Kafka bindings share: context attributes and
//! extensions as name/text pairs in message headers, data as the message body.
//!
//! Writing visits an event's attributes as text; reading collects header pairs and builds the
//! event, keeping its spec version (0.3 stays 0.3). Every extension read from headers is a string:
//! binary mode carries no type information.

use std::borrow::Cow;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::{DateTime, SecondsFormat, Utc};
use cloudevents::event::{AttributeValue, ExtensionValue, SpecVersion};
use cloudevents::{AttributesWriter, Data, Event, EventBuilder, EventBuilderV03, EventBuilderV10};
use url::Url;

use super::decode::{is_valid_attribute_name, DecodeError};

/// Visits every attribute and extension of `event` as (name, text), except `datacontenttype`,
/// which both bindings carry in their `content-type` header.
pub(crate) fn for_each_attribute(event: &Event, mut visit: impl FnMut(&str, Cow<'_, str>)) {
    for (name, value) in event.iter() {
        if name != "datacontenttype" {
            visit(name, attribute_text(value));
        }
    }
}

fn attribute_text(value: AttributeValue<'_>) -> Cow<'_, str> {
    match value {
        AttributeValue::String(s) => Cow::Borrowed(s),
        AttributeValue::URIRef(s) => Cow::Borrowed(s.as_str()),
        AttributeValue::URI(u) => Cow::Borrowed(u.as_str()),
        AttributeValue::SpecVersion(SpecVersion::V03) => Cow::Borrowed("0.3"),
        AttributeValue::SpecVersion(SpecVersion::V10) => Cow::Borrowed("1.0"),
        AttributeValue::Boolean(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        AttributeValue::Integer(i) => Cow::Owned(i.to_string()),
        AttributeValue::Time(t) => Cow::Owned(time_text(t)),
        AttributeValue::Binary(b) => Cow::Owned(BASE64_STANDARD.encode(b)),
    }
}

/// RFC 3339 as Knative's dispatchers write it (Java's `ISO_OFFSET_DATE_TIME`, Go's
/// `RFC3339Nano`): `Z` rather than `+00:00`, and a fraction with every digit the time holds but
/// no trailing zeros (`.5`, not `.500`; none for a whole second), so a sink comparing strings
/// sees what Knative sends and the value still round-trips.
pub(crate) fn time_text(time: &DateTime<Utc>) -> String {
    let mut text = time.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // Nanos always writes `.` and nine digits before the final `Z`.
    text.pop();
    let kept = text.trim_end_matches('0').trim_end_matches('.').len();
    text.truncate(kept);
    text.push('Z');
    text
}

/// Attributes collected from binary-mode headers, in any order, before the event is built.
#[derive(Debug, Default)]
pub(crate) struct BinaryAttributes {
    specversion: Option<String>,
    id: Option<String>,
    source: Option<String>,
    ty: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    datacontenttype: Option<String>,
    /// Extensions, plus the schema attribute whose name depends on the spec version
    /// (`dataschema` in 1.0, `schemaurl` in 0.3), which may arrive before `specversion`.
    others: Vec<(String, String)>,
}

impl BinaryAttributes {
    /// Records attribute `name` (without its header prefix).
    pub(crate) fn set(&mut self, name: &str, value: String) -> Result<(), DecodeError> {
        let slot = match name {
            "specversion" => &mut self.specversion,
            "id" => &mut self.id,
            "source" => &mut self.source,
            "type" => &mut self.ty,
            "subject" => &mut self.subject,
            "time" => &mut self.time,
            "datacontenttype" => &mut self.datacontenttype,
            _ if is_valid_attribute_name(name) => {
                self.others.push((name.to_owned(), value));
                return Ok(());
            }
            _ => return Err(DecodeError::InvalidExtensionName(name.to_owned())),
        };
        *slot = Some(value);
        Ok(())
    }

    /// The `content-type` header: it wins over a stray `datacontenttype` attribute header.
    pub(crate) fn set_content_type(&mut self, content_type: String) {
        self.datacontenttype = Some(content_type);
    }

    /// Builds the event; `data` is the message body, `None` or empty for an event without data.
    pub(crate) fn build(self, data: Option<Vec<u8>>) -> Result<Event, DecodeError> {
        let specversion = self
            .specversion
            .ok_or(DecodeError::MissingAttribute("specversion"))?;
        let version = SpecVersion::try_from(specversion.as_str())
            .map_err(|_| DecodeError::UnknownSpecVersion(specversion))?;
        let id = required(self.id, "id")?;
        let source = required(self.source, "source")?;
        let ty = required(self.ty, "type")?;
        let time = self.time.map(|t| parse_time(&t)).transpose()?;

        let schema_name = match version {
            SpecVersion::V10 => "dataschema",
            SpecVersion::V03 => "schemaurl",
        };
        let mut builder = EventBuilderV10::new().id(id).source(source).ty(ty);
        if let Some(subject) = self.subject {
            builder = builder.subject(subject);
        }
        if let Some(time) = time {
            builder = builder.time(time);
        }
        let mut schema = None;
        for (name, value) in self.others {
            if name == schema_name {
                let url =
                    Url::parse(&value).map_err(|e| DecodeError::invalid(name, e.to_string()))?;
                schema = Some(url);
            } else {
                builder = builder.extension(&name, ExtensionValue::String(value));
            }
        }
        let mut event = builder.build()?;
        event.set_dataschema(schema);
        event.set_datacontenttype(self.datacontenttype);
        if let Some(data) = data.filter(|d| !d.is_empty()) {
            event.set_data_unchecked(Data::Binary(data));
        }
        match version {
            SpecVersion::V10 => Ok(event),
            // The 1.0 builder is the one with public setters; 0.3 is a field-for-field move.
            SpecVersion::V03 => Ok(EventBuilderV03::from(event).build()?),
        }
    }
}

fn required(value: Option<String>, name: &'static str) -> Result<String, DecodeError> {
    match value {
        None => Err(DecodeError::MissingAttribute(name)),
        Some(v) if v.is_empty() => Err(DecodeError::invalid(name, "must not be empty")),
        Some(v) => Ok(v),
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DecodeError::invalid("time", format!("{text:?} is not RFC 3339: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::AttributesReader;

    fn attrs(pairs: &[(&str, &str)]) -> Result<BinaryAttributes, DecodeError> {
        let mut a = BinaryAttributes::default();
        for (name, value) in pairs {
            a.set(name, (*value).to_owned())?;
        }
        Ok(a)
    }

    const MINIMAL: [(&str, &str); 4] = [
        ("specversion", "1.0"),
        ("id", "1"),
        ("source", "/s"),
        ("type", "t"),
    ];

    #[test]
    fn builds_v10_and_v03_with_their_schema_attribute() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("dataschema", "http://schema.example/1"));
        pairs.push(("schemaurl", "http://schema.example/ext"));
        let ev = attrs(&pairs).unwrap().build(None).unwrap();
        assert_eq!(ev.specversion(), SpecVersion::V10);
        assert_eq!(ev.dataschema().unwrap().as_str(), "http://schema.example/1");
        assert_eq!(
            ev.extension("schemaurl"),
            Some(&"http://schema.example/ext".into())
        );

        // 0.3, with specversion arriving last.
        let pairs = [
            ("schemaurl", "http://schema.example/3"),
            ("id", "1"),
            ("source", "/s"),
            ("type", "t"),
            ("specversion", "0.3"),
        ];
        let ev = attrs(&pairs).unwrap().build(Some(b"x".to_vec())).unwrap();
        assert_eq!(ev.specversion(), SpecVersion::V03);
        assert_eq!(ev.dataschema().unwrap().as_str(), "http://schema.example/3");
        assert_eq!(ev.data(), Some(&Data::Binary(b"x".to_vec())));
    }

    #[test]
    fn rejects_what_the_spec_rejects() {
        let without = |name: &str| -> Vec<(&str, &str)> {
            MINIMAL
                .iter()
                .copied()
                .filter(|(n, _)| *n != name)
                .collect()
        };
        let with = |extra: (&'static str, &'static str)| {
            let mut v = MINIMAL.to_vec();
            v.push(extra);
            v
        };
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (without("specversion"), "MissingAttribute(\"specversion\")"),
            (without("id"), "MissingAttribute(\"id\")"),
            (without("source"), "MissingAttribute(\"source\")"),
            (without("type"), "MissingAttribute(\"type\")"),
            (with(("specversion", "2.0")), "UnknownSpecVersion(\"2.0\")"),
            (with(("id", "")), "InvalidAttribute { name: \"id\""),
            (
                with(("time", "yesterday")),
                "InvalidAttribute { name: \"time\"",
            ),
            (
                with(("dataschema", "not a url")),
                "InvalidAttribute { name: \"dataschema\"",
            ),
            (
                with(("bad-name", "x")),
                "InvalidExtensionName(\"bad-name\")",
            ),
        ];
        for (pairs, want) in cases {
            let got = attrs(&pairs).and_then(|a| a.build(None)).unwrap_err();
            assert!(
                format!("{got:?}").starts_with(want),
                "{pairs:?}: got {got:?}"
            );
        }
    }

    #[test]
    fn writes_every_attribute_as_text() {
        let mut ev = attrs(&MINIMAL).unwrap().build(None).unwrap();
        ev.set_time(Some(
            DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        ));
        ev.set_datacontenttype(Some("text/plain"));
        ev.set_extension("n", 42i64);
        ev.set_extension("b", true);
        let mut seen = Vec::new();
        for_each_attribute(&ev, |name, value| {
            seen.push((name.to_owned(), value.into_owned()))
        });
        seen.sort();
        let want = [
            ("b", "true"),
            ("id", "1"),
            ("n", "42"),
            ("source", "/s"),
            ("specversion", "1.0"),
            ("time", "2023-11-14T22:13:20.123Z"),
            ("type", "t"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn time_has_no_trailing_zeros_in_its_fraction() {
        let at = |ms: i64, extra_ns: u32| {
            DateTime::from_timestamp(
                ms.div_euclid(1000),
                (ms.rem_euclid(1000) as u32) * 1_000_000 + extra_ns,
            )
            .unwrap()
        };
        let cases = [
            (at(1_700_000_000_000, 0), "2023-11-14T22:13:20Z"),
            (at(1_700_000_000_500, 0), "2023-11-14T22:13:20.5Z"),
            (at(1_700_000_000_120, 0), "2023-11-14T22:13:20.12Z"),
            (at(1_700_000_000_123, 0), "2023-11-14T22:13:20.123Z"),
            (at(1_700_000_000_000, 4_500), "2023-11-14T22:13:20.0000045Z"),
            (at(1_700_000_000_001, 1), "2023-11-14T22:13:20.001000001Z"),
            (at(0, 0), "1970-01-01T00:00:00Z"),
            (at(-1, 0), "1969-12-31T23:59:59.999Z"),
        ];
        for (time, want) in cases {
            assert_eq!(time_text(&time), want);
            // Still the same instant when read back.
            assert_eq!(DateTime::parse_from_rfc3339(want).unwrap(), time);
        }
    }
}
