//! Reading samples out of Prometheus text exposition (what `/metrics` serves), for assertions.

/// The value of one sample in Prometheus text: the line whose metric name is `name` and whose
/// labels include every pair of `labels` (other labels may be present). `None` when absent.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(Sample::parse)
        .find(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|sample| sample.value)
}

/// One sample line of the text format.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    /// Parses `name{k="v",...} value [timestamp]`; label values carry `\\`, `\"`, `\n` escapes.
    fn parse(line: &str) -> Option<Sample> {
        let name_end = line.find(['{', ' '])?;
        let name = line[..name_end].to_string();
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(after_brace) = rest.strip_prefix('{') {
            let mut chars = after_brace.char_indices();
            let mut key = String::new();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '}' => break i + 1,
                    ',' | ' ' => {}
                    '=' => {
                        if chars.next()?.1 != '"' {
                            return None;
                        }
                        let mut value = String::new();
                        loop {
                            match chars.next()?.1 {
                                '"' => break,
                                '\\' => match chars.next()?.1 {
                                    'n' => value.push('\n'),
                                    other => value.push(other),
                                },
                                other => value.push(other),
                            }
                        }
                        labels.push((std::mem::take(&mut key), value));
                    }
                    other => key.push(other),
                }
            };
            rest = &after_brace[end..];
        }
        let value = rest.split_whitespace().next()?.parse().ok()?;
        Some(Sample {
            name,
            labels,
            value,
        })
    }
}
