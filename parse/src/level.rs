//! Level recognition: the level word near the start of a text line, the syslog `<PRI>` prefix,
//! and the mapping of structured level values (words, syslog, pino and OTLP numbers).

use silt_storage::record::{level_from_otlp_severity, level_from_syslog_severity, normalize_level};

use super::timestamp::starts_with_klog_header;

/// A level word must start within this many bytes of the line start.
pub(crate) const MAX_LEVEL_SCAN_BYTES: usize = 120;
/// A level word must be one of this many first whitespace-separated tokens (BGL-style lines
/// put it ninth).
pub(crate) const MAX_LEVEL_SCAN_TOKENS: usize = 10;
/// Longest level spelling `normalize_level` knows (`informational`).
const MAX_LEVEL_WORD_BYTES: usize = 13;
/// Shortest level spelling (`err`, `inf`...).
const MIN_LEVEL_WORD_BYTES: usize = 3;
/// Largest valid syslog PRI value (facility 23, severity 7).
const MAX_SYSLOG_PRI: u32 = 191;

/// The level of a text line: a syslog `<PRI>` prefix, the letter of a klog header or of an
/// Android logcat line, else a level word among the first tokens.
///
/// `timestamp_end` is the offset just past a timestamp found in the line, if any: a lowercase
/// word right after it counts as a level (`2024-01-02 03:04:05 info ...`).
///
/// Which tokens count, so that ordinary words are not taken for levels:
/// - bracketed in any case: `[error]`, `<WARN>`, `(info)`, `[INFO ]`;
/// - `level=`, `lvl=`, `severity=`, `loglevel=` values in any case;
/// - upper-case words: `INFO`, `WARN:`, `WARNING:root:...`;
/// - lower or mixed case words only as the first token, right after the timestamp (with
///   `-`, `|`, `:` or `,` between), or as `word:` right after a token ending in `:`
///   (`sshd[42]: error: ...`).
pub(crate) fn scan_line_level(line: &[u8], timestamp_end: Option<usize>) -> Option<&'static str> {
    if let Some(level) = syslog_pri_level(line)
        .or_else(|| klog_level(line))
        .or_else(|| logcat_level(line))
    {
        return Some(level);
    }
    let limit = line.len().min(MAX_LEVEL_SCAN_BYTES);
    let mut pos = 0;
    let mut prev_token_ends_with_colon = false;
    for token_index in 0..MAX_LEVEL_SCAN_TOKENS {
        while pos < line.len() && line[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= limit {
            return None;
        }
        let start = pos;
        while pos < line.len() && !line[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let token = &line[start..pos];
        let follows_timestamp = timestamp_end
            .is_some_and(|end| end <= start && line[end..start].iter().all(|&c| is_separator(c)));
        let context = TokenContext {
            is_first: token_index == 0,
            follows_timestamp,
            after_colon_token: prev_token_ends_with_colon,
        };
        if let Some(level) = token_level(token, context) {
            return Some(level);
        }
        prev_token_ends_with_colon = token.last() == Some(&b':');
    }
    None
}

/// Maps a structured level value given as a string: a known spelling is normalised, any other
/// non-empty word is kept trimmed; `None` for an empty string.
pub(crate) fn level_from_text(value: &str) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    Some(normalize_level(trimmed).map_or_else(|| trimmed.to_owned(), str::to_owned))
}

/// How a numeric level value is to be read, chosen by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumericLevel {
    /// Syslog severity 0 (emergency) – 7 (debug).
    Syslog,
    /// pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal; 0–7 are read
    /// as syslog severities (GELF's `level`).
    Pino,
    /// OpenTelemetry severity number 1–24.
    Otlp,
}

/// Maps a structured numeric level; `None` when out of range for its kind.
pub(crate) fn level_from_number(value: i64, kind: NumericLevel) -> Option<&'static str> {
    match kind {
        NumericLevel::Syslog => u8::try_from(value)
            .ok()
            .and_then(level_from_syslog_severity),
        NumericLevel::Otlp => i32::try_from(value).ok().and_then(level_from_otlp_severity),
        NumericLevel::Pino => Some(match value {
            0..=7 => return level_from_syslog_severity(value as u8),
            10 => "TRACE",
            20 => "DEBUG",
            30 => "INFO",
            40 => "WARN",
            50 => "ERROR",
            60 => "FATAL",
            _ => return None,
        }),
    }
}

#[derive(Debug, Clone, Copy)]
struct TokenContext {
    is_first: bool,
    follows_timestamp: bool,
    after_colon_token: bool,
}

fn is_separator(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'-' | b'|' | b':' | b',')
}

/// The level letters of klog and logcat: `V`erbose, `D`ebug, `I`nfo, `W`arn, `E`rror, `F`atal,
/// `A`ssert.
fn level_letter(letter: u8) -> Option<&'static str> {
    Some(match letter {
        b'V' => "TRACE",
        b'D' => "DEBUG",
        b'I' => "INFO",
        b'W' => "WARN",
        b'E' => "ERROR",
        b'F' | b'A' => "FATAL",
        _ => return None,
    })
}

/// The letter of a klog (glog) header `Lmmdd HH:mm:ss…` at the start of the line.
fn klog_level(line: &[u8]) -> Option<&'static str> {
    if !starts_with_klog_header(line) {
        return None;
    }
    level_letter(line[0])
}

/// Android logcat's `threadtime` lines: `MM-dd HH:mm:ss.SSS  pid  tid L tag: message`.
fn logcat_level(line: &[u8]) -> Option<&'static str> {
    let date = line.get(..18)?;
    let digit_at = |i: usize| date[i].is_ascii_digit();
    let shape = [0, 1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 17]
        .into_iter()
        .all(digit_at)
        && date[2] == b'-'
        && date[5] == b' '
        && date[8] == b':'
        && date[11] == b':'
        && date[14] == b'.';
    if !shape {
        return None;
    }
    let mut fields = line[18..]
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty());
    let pid = fields.next()?;
    let tid = fields.next()?;
    let letter = fields.next()?;
    let numeric = |f: &[u8]| f.iter().all(u8::is_ascii_digit);
    if !numeric(pid) || !numeric(tid) || letter.len() != 1 {
        return None;
    }
    level_letter(letter[0])
}

/// `<PRI>` at the very start of the line → the severity's level.
fn syslog_pri_level(line: &[u8]) -> Option<&'static str> {
    if line.first() != Some(&b'<') {
        return None;
    }
    let digit_count = line[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=3).contains(&digit_count) || line.get(1 + digit_count) != Some(&b'>') {
        return None;
    }
    let pri = line[1..=digit_count]
        .iter()
        .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
    if pri > MAX_SYSLOG_PRI {
        return None;
    }
    level_from_syslog_severity((pri % 8) as u8)
}

fn token_level(token: &[u8], context: TokenContext) -> Option<&'static str> {
    if let Some(eq) = token.iter().position(|&c| c == b'=') {
        return key_value_level(&token[..eq], &token[eq + 1..]);
    }
    let opened = token
        .iter()
        .take_while(|&&c| matches!(c, b'[' | b'(' | b'<' | b'{'))
        .count();
    let rest = &token[opened..];
    let word_len = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if !(MIN_LEVEL_WORD_BYTES..=MAX_LEVEL_WORD_BYTES).contains(&word_len) {
        return None;
    }
    let word = &rest[..word_len];
    let suffix = &rest[word_len..];
    let closed = matches!(suffix.first(), Some(b']' | b')' | b'>' | b'}'));
    let colon = suffix.first() == Some(&b':');
    if !suffix.is_empty() && !closed && !matches!(suffix[0], b':' | b',' | b';' | b'|') {
        return None;
    }
    let upper = word.iter().all(u8::is_ascii_uppercase);
    let accepted = opened > 0
        || closed
        || upper
        || context.is_first
        || context.follows_timestamp
        || (colon && context.after_colon_token);
    if !accepted {
        return None;
    }
    // `word` is ASCII letters, so always valid UTF-8.
    normalize_level(std::str::from_utf8(word).ok()?)
}

/// `level=info`, `lvl=WARN`, `severity="error"`...
fn key_value_level(key: &[u8], value: &[u8]) -> Option<&'static str> {
    let key = trim_bytes(key, |c| {
        !c.is_ascii_alphanumeric() && c != b'.' && c != b'_'
    });
    let is_level_key = [
        &b"level"[..],
        b"lvl",
        b"severity",
        b"loglevel",
        b"log.level",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k));
    if !is_level_key {
        return None;
    }
    let value = trim_bytes(value, |c| !c.is_ascii_alphabetic());
    normalize_level(std::str::from_utf8(value).ok()?)
}

fn trim_bytes(bytes: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|&c| !strip(c)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&c| !strip(c))
        .map_or(start, |p| p + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(line: &str) -> Option<&'static str> {
        scan_line_level(line.as_bytes(), None)
    }

    #[test]
    fn level_spellings_in_text() {
        assert_eq!(level("INFO starting"), Some("INFO"));
        assert_eq!(level("warning: disk almost full"), Some("WARN"));
        assert_eq!(level("err something broke"), Some("ERROR"));
        assert_eq!(level("x SEVERE: boom"), Some("ERROR"));
        assert_eq!(level("notice: hello"), Some("INFO"));
        assert_eq!(
            level("[Sun Dec 04 04:47:44 2005] [error] mod_jk"),
            Some("ERROR")
        );
        assert_eq!(
            level("[Sun Dec 04 04:47:44 2005] [notice] ok"),
            Some("INFO")
        );
        assert_eq!(level("main <WARN> careful"), Some("WARN"));
        assert_eq!(level("main (debug) careful"), Some("DEBUG"));
        assert_eq!(level("main [INFO ] spaced"), Some("INFO"));
        assert_eq!(level("main [ FATAL] spaced"), Some("FATAL"));
        assert_eq!(level("WARNING:root:python style"), Some("WARN"));
        assert_eq!(level("ts=1 level=warn msg=x"), Some("WARN"));
        assert_eq!(level("ts=1 lvl=\"Error\" msg=x"), Some("ERROR"));
        assert_eq!(
            level("081109 203615 148 INFO dfs.DataNode: x"),
            Some("INFO")
        );
        assert_eq!(
            level("2015-07-29 17:41:44,747 - WARN  [x] - y"),
            Some("WARN")
        );
        assert_eq!(
            level("a b c d e f g h i j ERROR"),
            None,
            "beyond the token window"
        );
        let bgl = "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 \
                   2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL FATAL data bus error";
        assert_eq!(level(bgl), Some("FATAL"), "the ninth token");
    }

    #[test]
    fn level_after_a_comma_following_the_timestamp() {
        let line = "2016-09-28 04:30:31, Warning           CSI    Unrecognized packageExtended";
        assert_eq!(scan_line_level(line.as_bytes(), Some(19)), Some("WARN"));
        let line = "2016-09-28 04:30:31, Info    CBS    Session: 30546174_3 initialized";
        assert_eq!(scan_line_level(line.as_bytes(), Some(19)), Some("INFO"));
    }

    #[test]
    fn klog_and_logcat_letters() {
        assert_eq!(
            level("E0312 10:22:33.123456    4711 reflector.go:138] watch failed"),
            Some("ERROR")
        );
        assert_eq!(
            level("I1202 07:00:01.000001       1 leaderelection.go:258] acquired"),
            Some("INFO")
        );
        assert_eq!(level("W0101 00:00:00.5 1 x.go:1] careful"), Some("WARN"));
        assert_eq!(level("X0312 10:22:33.1 1 x.go:1] no"), None);
        assert_eq!(level("E031 10:22:33 not a klog header"), None);
        assert_eq!(
            level("03-17 16:13:38.811  1702  2395 D WindowManager: freezing"),
            Some("DEBUG")
        );
        assert_eq!(
            level("03-17 16:13:38.811  1702 17061 W PowerManagerService: slow"),
            Some("WARN")
        );
        assert_eq!(
            level("12-01 09:15:00.004   900   900 E AndroidRuntime: FATAL EXCEPTION"),
            Some("ERROR")
        );
        assert_eq!(
            level("03-17 16:13:38.811  1702  2395 Dx WindowManager: not a letter"),
            None
        );
        assert_eq!(level("03-17 16:13:38.811 started D x"), None);
    }

    #[test]
    fn lowercase_words_need_a_level_position() {
        let line = "2024-01-02 03:04:05 info starting up";
        assert_eq!(scan_line_level(line.as_bytes(), Some(19)), Some("INFO"));
        let line = "2024-01-02 03:04:05 - debug - x";
        assert_eq!(scan_line_level(line.as_bytes(), Some(19)), Some("DEBUG"));
        assert_eq!(
            level("Dec 10 06:55:46 LabSZ sshd[24200]: error: Received"),
            Some("ERROR")
        );
        assert_eq!(level("connection error while reading"), None);
        assert_eq!(
            level("Dec 10 06:55:46 LabSZ sshd[1]: Connection error: x"),
            None
        );
        assert_eq!(level("we got an error here"), None);
        assert_eq!(level("the Error was bad"), None);
        assert_eq!(level("an INFORMATIONAL"), Some("INFO"));
        assert_eq!(level("errors everywhere"), None);
        assert_eq!(level("ERROR."), None);
    }

    #[test]
    fn syslog_pri_prefix() {
        assert_eq!(level("<13>Jan  1 00:00:00 host app: hi"), Some("INFO"));
        assert_eq!(level("<11>Jan  1 00:00:00 host app: hi"), Some("ERROR"));
        assert_eq!(level("<7>debug"), Some("DEBUG"));
        assert_eq!(level("<192>Jan  1 00:00:00 x"), None);
        assert_eq!(level("<1234>x"), None);
    }

    #[test]
    fn structured_values() {
        assert_eq!(level_from_text(" Warning "), Some("WARN".to_owned()));
        assert_eq!(level_from_text(" audit "), Some("audit".to_owned()));
        // Serilog, log15.
        assert_eq!(level_from_text("Verbose"), Some("TRACE".to_owned()));
        assert_eq!(level_from_text("dbug"), Some("DEBUG".to_owned()));
        assert_eq!(level_from_text("eror"), Some("ERROR".to_owned()));
        assert_eq!(level_from_text("  "), None);
        assert_eq!(level_from_number(3, NumericLevel::Syslog), Some("ERROR"));
        assert_eq!(level_from_number(8, NumericLevel::Syslog), None);
        assert_eq!(level_from_number(50, NumericLevel::Pino), Some("ERROR"));
        assert_eq!(level_from_number(35, NumericLevel::Pino), None);
        assert_eq!(level_from_number(9, NumericLevel::Otlp), Some("INFO"));
    }
}
