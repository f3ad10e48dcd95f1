//! ISO-8601 durations as Knative's delivery fields use them (`PT0.3S`, `PT10M`, `P1D`).

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is negative; durations must be zero or more")]
    Negative(String),
    #[error("{0:?} is not an ISO-8601 duration (e.g. PT0.3S, PT10S, PT1M)")]
    Invalid(String),
}

/// Parses an ISO-8601 duration. Fractions are honoured to the millisecond, only on seconds;
/// a year counts 365 days and a month 30. Anything after a valid prefix is an error (the iso8601
/// crate alone would ignore it), and so is a `T` with nothing after it.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    if trimmed.ends_with('T') {
        return Err(DurationError::Invalid(text.to_owned()));
    }
    match iso8601::parsers::parse_duration(trimmed.as_bytes()) {
        Ok(([], parsed)) => Ok(parsed.into()),
        _ => Err(DurationError::Invalid(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_knative_durations() {
        let ms = Duration::from_millis;
        let cases = [
            ("PT0.3S", ms(300)),
            ("PT0.25S", ms(250)),
            ("PT1.5S", ms(1500)),
            ("PT0,5S", ms(500)),
            ("PT10S", ms(10_000)),
            ("PT600S", ms(600_000)),
            ("PT0S", ms(0)),
            ("PT2M", ms(120_000)),
            ("PT1H30M", ms(5_400_000)),
            ("P1D", ms(86_400_000)),
            ("P1DT1S", ms(86_401_000)),
            ("P1W", ms(7 * 86_400_000)),
            (" PT1S ", ms(1000)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_negative_and_malformed() {
        for text in ["-PT1S", "-P1D"] {
            assert_eq!(
                parse(text),
                Err(DurationError::Negative(text.into())),
                "{text}"
            );
        }
        for text in [
            "",
            "P",
            "PT",
            "P1DT",
            "10s",
            "PT1S trailing",
            "PTS",
            "1S",
            "PT1.S5",
        ] {
            assert_eq!(
                parse(text),
                Err(DurationError::Invalid(text.into())),
                "{text}"
            );
        }
    }
}
