//! One parsed log row before it reaches Arrow: what parsers produce and the WAL stores.
//! Owns level normalisation; knows nothing about file formats.

/// A log row as parsers produce it. Timestamps are nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRecord {
    /// Event time; `None` when the input had none, the engine then uses `observed_timestamp`.
    pub timestamp: Option<i64>,
    /// Normalised level (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) or, from
    /// structured input only, the caller's own word when it is not one of those.
    pub level: Option<String>,
    pub service: Option<String>,
    pub host: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// Full text; for unstructured input the whole raw line.
    pub message: String,
    /// Every other field, flattened with dotted keys; non-string JSON values as their JSON text.
    /// Keys are unique (the last value of a repeated key wins).
    pub attributes: Vec<(String, String)>,
}

/// The normalised level words, lowest first.
pub const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// Maps the common spellings of a level to one of [`LEVELS`]; `None` when the word is not a level.
///
/// Case-insensitive. Accepts syslog severities by name (`emerg`, `alert`, `crit`, `err`, `notice`),
/// Java/log4j words (`SEVERE`, `FINE`, `FINEST`, `CONFIG`), and short forms (`WRN`, `ERR`,
/// `DBG`, `INF`, `FTL`, `CRT`). Single letters are not levels here: too many words look like them.
pub fn normalize_level(word: &str) -> Option<&'static str> {
    let mut buf = [0u8; 16];
    let bytes = word.as_bytes();
    if bytes.is_empty() || bytes.len() > buf.len() {
        return None;
    }
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = src.to_ascii_lowercase();
    }
    let lower = &buf[..bytes.len()];
    Some(match lower {
        b"trace" | b"trc" | b"finest" | b"finer" | b"verbose" | b"vrb" => "TRACE",
        b"debug" | b"dbg" | b"dbug" | b"fine" | b"config" => "DEBUG",
        b"info" | b"inf" | b"information" | b"informational" | b"notice" => "INFO",
        b"warn" | b"warning" | b"wrn" => "WARN",
        b"error" | b"err" | b"eror" | b"severe" | b"failure" => "ERROR",
        b"fatal" | b"ftl" | b"critical" | b"crit" | b"crt" | b"alert" | b"emerg" | b"emergency"
        | b"panic" => "FATAL",
        _ => return None,
    })
}

/// Maps a syslog severity (0 emergency … 7 debug) to a normalised level.
pub fn level_from_syslog_severity(severity: u8) -> Option<&'static str> {
    Some(match severity {
        0..=2 => "FATAL",
        3 => "ERROR",
        4 => "WARN",
        5 | 6 => "INFO",
        7 => "DEBUG",
        _ => return None,
    })
}

/// Maps an OpenTelemetry severity number (1–24) to a normalised level.
pub fn level_from_otlp_severity(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_spellings() {
        assert_eq!(normalize_level("Warning"), Some("WARN"));
        assert_eq!(normalize_level("SEVERE"), Some("ERROR"));
        assert_eq!(normalize_level("notice"), Some("INFO"));
        assert_eq!(normalize_level("crit"), Some("FATAL"));
        assert_eq!(normalize_level("combo"), None);
        assert_eq!(normalize_level(""), None);
        assert_eq!(level_from_syslog_severity(3), Some("ERROR"));
        assert_eq!(level_from_otlp_severity(9), Some("INFO"));
        assert_eq!(level_from_otlp_severity(0), None);
    }
}
