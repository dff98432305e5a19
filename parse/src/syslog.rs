//! Syslog: one message (RFC 5424, RFC 3164/BSD, or text with no PRI) into a log record, and the
//! TCP framing (RFC 6587 octet counting or LF-terminated) that splits a byte stream into messages.

use std::fmt::Write as _;

use silt_storage::record::{LogRecord, level_from_syslog_severity};

use super::ParseOptions;
use super::calendar::{NANOS_PER_SEC, SECS_PER_DAY, year_of};
use super::flatten::keep_last_of_each_key;
use super::timestamp::parse_timestamp_str;

/// PRI of a message that has none: user.notice, what an RFC 3164 relay assigns (§4.3.3).
const DEFAULT_PRI: u8 = 13;
/// How far after "now" a BSD date may lie and still be taken as this (or next) year, as in the
/// text parser's year rule.
const FUTURE_TOLERANCE_NS: i64 = SECS_PER_DAY * NANOS_PER_SEC;
/// Largest valid PRI (facility 23, severity 7).
const MAX_PRI: u32 = 191;
const MAX_PRI_DIGITS: usize = 3;
/// RFC 5424's "no value" for a header field or the structured data.
const NILVALUE: &str = "-";
const UTF8_BOM: char = '\u{FEFF}';
/// How many bytes of a malformed PRI or octet count an error quotes.
const MAX_QUOTED_BYTES: usize = 12;

/// Facility names by code (RFC 5424 table 1, as syslog implementations spell them).
const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
/// Severity names by code, 0 (most severe) to 7.
const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

const FACILITY_KEY: &str = "syslog.facility";
const SEVERITY_KEY: &str = "syslog.severity";
const PROCID_KEY: &str = "syslog.procid";
const MSGID_KEY: &str = "syslog.msgid";
/// Structured data goes to `sd.<SD-ID>.<PARAM-NAME>` (or `sd.<SD-ID>` for an element without params).
const SD_KEY_PREFIX: &str = "sd.";

/// Why a syslog message was rejected. Only an empty message and a broken `<PRI>` are errors:
/// every other deviation is parsed as well as it can be, keeping the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    /// Nothing left after trimming trailing CR, LF and NUL.
    #[error("empty message")]
    Empty,
    /// `<digits>` with a value over 191, leading zeros (other than `<0>`) or over 3 digits.
    #[error("PRI must be <0>..<191>, found {found}")]
    PriOutOfRange { found: String },
    /// `<` and digits with no `>` after them.
    #[error("PRI must be <0>..<191>, found `{found}` with no closing `>`")]
    PriUnterminated { found: String },
    /// `<` not followed by a digit.
    #[error("PRI must be <0>..<191>, found `{found}`")]
    PriNotANumber { found: String },
}

/// Parses one syslog message (a UDP datagram or one TCP frame) into a record.
///
/// The format is detected per message: `<PRI>1 ` followed by a NILVALUE or an RFC 3339 date is
/// RFC 5424; anything else is RFC 3164 (BSD). A message without `<` is RFC 3164 content with
/// PRI 13 (user.notice). Trailing CR, LF and NUL are trimmed; invalid UTF-8 is replaced.
///
/// Columns: `timestamp` from the header (`None` when missing or unparsable), `level` from the
/// severity, `host` from HOSTNAME, `service` from APP-NAME or TAG, `message` from MSG.
/// Attributes: `syslog.facility` and `syslog.severity` (names), `syslog.procid`, `syslog.msgid`,
/// and each structured-data parameter as `sd.<SD-ID>.<PARAM-NAME>` (an element without
/// parameters as `sd.<SD-ID>` = ""); NILVALUE fields are left out, a repeated key keeps its last
/// value.
///
/// RFC 5424 structured data that does not parse is kept, unparsed, at the start of the message.
/// RFC 3164 dates have no year: the latest year that puts the date at most a day after
/// `opts.now_ns` is taken (a December date received in January is last year's, a January date
/// received on 31 December next year's), and the time is read at `opts.default_offset_secs`.
pub fn parse_syslog_message(msg: &[u8], opts: &ParseOptions) -> Result<LogRecord, SyslogError> {
    let end = msg
        .iter()
        .rposition(|&c| !matches!(c, b'\r' | b'\n' | 0))
        .map_or(0, |last| last + 1);
    let msg = &msg[..end];
    if msg.is_empty() {
        return Err(SyslogError::Empty);
    }
    let (pri, content) = split_pri(msg)?;
    let text = String::from_utf8_lossy(content);
    let rfc5424 = pri.is_some().then(|| rfc5424_body(&text)).flatten();
    let parts = match rfc5424 {
        Some(body) => parse_rfc5424(body, opts),
        None => parse_rfc3164(&text, opts),
    };
    Ok(build_record(pri.unwrap_or(DEFAULT_PRI), parts))
}

/// The header fields and message of one syslog message, borrowed from its text.
#[derive(Debug, Default)]
struct Parts<'a> {
    timestamp: Option<i64>,
    host: Option<&'a str>,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    app: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    structured: Vec<SdParam<'a>>,
    message: &'a str,
}

/// One structured-data parameter, or an element without parameters (`name` `None`).
#[derive(Debug)]
struct SdParam<'a> {
    id: &'a str,
    name: Option<&'a str>,
    value: String,
}

fn build_record(pri: u8, parts: Parts<'_>) -> LogRecord {
    let facility = usize::from(pri / 8);
    let severity = pri % 8;
    let mut attributes = Vec::with_capacity(4 + parts.structured.len());
    let facility_name = FACILITY_NAMES.get(facility).copied().unwrap_or("unknown");
    let severity_name = SEVERITY_NAMES
        .get(usize::from(severity))
        .copied()
        .unwrap_or("unknown");
    attributes.push((FACILITY_KEY.to_owned(), facility_name.to_owned()));
    attributes.push((SEVERITY_KEY.to_owned(), severity_name.to_owned()));
    for (key, value) in [(PROCID_KEY, parts.procid), (MSGID_KEY, parts.msgid)] {
        if let Some(value) = value {
            attributes.push((key.to_owned(), value.to_owned()));
        }
    }
    attributes.extend(structured_attributes(parts.structured));
    LogRecord {
        timestamp: parts.timestamp,
        level: level_from_syslog_severity(severity).map(str::to_owned),
        service: parts.app.map(str::to_owned),
        host: parts.host.map(str::to_owned),
        message: parts.message.to_owned(),
        attributes,
        ..LogRecord::default()
    }
}

/// Structured-data parameters as `sd.` attributes; a repeated key keeps its last value, in the
/// position of that last occurrence.
fn structured_attributes(params: Vec<SdParam<'_>>) -> impl Iterator<Item = (String, String)> {
    let mut attributes: Vec<(String, String)> = params
        .into_iter()
        .map(|SdParam { id, name, value }| {
            let mut key = String::with_capacity(
                SD_KEY_PREFIX.len() + id.len() + 1 + name.map_or(0, str::len),
            );
            key.push_str(SD_KEY_PREFIX);
            key.push_str(id);
            if let Some(name) = name {
                key.push('.');
                key.push_str(name);
            }
            (key, value)
        })
        .collect();
    keep_last_of_each_key(&mut attributes, |(key, _)| key.as_str());
    attributes.into_iter()
}

/// Splits off a leading `<PRI>`; `None` when the message does not start with `<`.
fn split_pri(msg: &[u8]) -> Result<(Option<u8>, &[u8]), SyslogError> {
    let Some(after_open) = msg.strip_prefix(b"<") else {
        return Ok((None, msg));
    };
    let digit_count = after_open.iter().take_while(|c| c.is_ascii_digit()).count();
    let digits = &after_open[..digit_count];
    if digit_count == 0 {
        let next = after_open.get(..1).unwrap_or_default();
        return Err(SyslogError::PriNotANumber {
            found: format!("<{}", quoted(next)),
        });
    }
    if after_open.get(digit_count) != Some(&b'>') {
        return Err(SyslogError::PriUnterminated {
            found: format!("<{}", quoted(digits)),
        });
    }
    let value = digits.iter().fold(0u32, |acc, &c| {
        acc.saturating_mul(10).saturating_add(u32::from(c - b'0'))
    });
    let leading_zero = digit_count > 1 && digits[0] == b'0';
    match u8::try_from(value) {
        Ok(pri) if digit_count <= MAX_PRI_DIGITS && !leading_zero && value <= MAX_PRI => {
            Ok((Some(pri), &after_open[digit_count + 1..]))
        }
        _ => Err(SyslogError::PriOutOfRange {
            found: format!("<{}>", quoted(digits)),
        }),
    }
}

/// Up to [`MAX_QUOTED_BYTES`] of `bytes` as text, `…` marking a cut.
fn quoted(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(MAX_QUOTED_BYTES)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if shown.len() < bytes.len() {
        text.push('…');
    }
    text
}

/// The text after `1 ` when `content` is an RFC 5424 message: version 1, then a NILVALUE or
/// an RFC 3339 date as the timestamp (so BSD text that happens to start with `1 ` stays BSD).
fn rfc5424_body(content: &str) -> Option<&str> {
    let body = content.strip_prefix("1 ")?;
    let mut rest = body;
    let first = next_token(&mut rest)?;
    (first == NILVALUE || looks_like_iso_date(first)).then_some(body)
}

/// `HEADER SP STRUCTURED-DATA [SP MSG]` after the version; missing trailing fields are `None`.
fn parse_rfc5424<'a>(body: &'a str, opts: &ParseOptions) -> Parts<'a> {
    let mut rest = body;
    let timestamp = next_token(&mut rest)
        .and_then(non_nil)
        .and_then(|text| parse_timestamp_str(text, opts));
    let host = next_token(&mut rest).and_then(non_nil);
    let app = next_token(&mut rest).and_then(non_nil);
    let procid = next_token(&mut rest).and_then(non_nil);
    let msgid = next_token(&mut rest).and_then(non_nil);
    let rest = rest.trim_start_matches(' ');
    let (structured, message) = split_structured_data(rest);
    let message = message.strip_prefix(' ').unwrap_or(message);
    Parts {
        timestamp,
        host,
        app,
        procid,
        msgid,
        structured,
        message: message.strip_prefix(UTF8_BOM).unwrap_or(message),
    }
}

/// Splits `STRUCTURED-DATA [SP MSG]` into the parameters and the rest. Structured data that does
/// not parse (or is not there) yields no parameters and leaves all of `text` as the message.
fn split_structured_data(text: &str) -> (Vec<SdParam<'_>>, &str) {
    if text == NILVALUE {
        return (Vec::new(), "");
    }
    if let Some(message) = text.strip_prefix("- ") {
        return (Vec::new(), message);
    }
    match parse_sd_elements(text) {
        Some((params, end)) => (params, &text[end..]),
        None => (Vec::new(), text),
    }
}

/// One or more `[SD-ID param="value" ...]` at the start of `text`, ending at a space or the end.
/// Returns the parameters and the offset past the last `]`. Inside a value `\"`, `\\` and `\]`
/// are unescaped and any other backslash is kept; an unescaped `]` is taken as text.
fn parse_sd_elements(text: &str) -> Option<(Vec<SdParam<'_>>, usize)> {
    let b = text.as_bytes();
    let is_name_end = |c: u8| matches!(c, b' ' | b'=' | b']' | b'"');
    let mut params = Vec::new();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let id_start = i;
        while b.get(i).is_some_and(|&c| !is_name_end(c)) {
            i += 1;
        }
        if i == id_start {
            return None;
        }
        let id = &text[id_start..i];
        let params_before = params.len();
        loop {
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            if *b.get(i)? == b']' {
                i += 1;
                break;
            }
            let name_start = i;
            while b.get(i).is_some_and(|&c| !is_name_end(c)) {
                i += 1;
            }
            if i == name_start || b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'"') {
                return None;
            }
            let name = &text[name_start..i];
            i += 2;
            let mut value = String::new();
            let mut segment_start = i;
            loop {
                match *b.get(i)? {
                    b'"' => break,
                    b'\\' if matches!(b.get(i + 1), Some(b'"' | b'\\' | b']')) => {
                        value.push_str(&text[segment_start..i]);
                        segment_start = i + 1;
                        i += 2;
                    }
                    _ => i += 1,
                }
            }
            value.push_str(&text[segment_start..i]);
            i += 1;
            params.push(SdParam {
                id,
                name: Some(name),
                value,
            });
        }
        if params.len() == params_before {
            params.push(SdParam {
                id,
                name: None,
                value: String::new(),
            });
        }
    }
    (i > 0 && matches!(b.get(i), None | Some(b' '))).then_some((params, i))
}

/// `[TIMESTAMP] [HOSTNAME] [TAG[PID]:] MSG`, each part only where it is recognisable:
/// a BSD date (`Mmm dd hh:mm:ss`) or an RFC 3339 one; after a date the next word is the
/// HOSTNAME unless it is clearly a tag (`tag:`, `tag[pid]:`); without a date there is no
/// HOSTNAME (RFC 3164 §4.3.2: the whole text is the message), though a leading tag is still read.
fn parse_rfc3164<'a>(text: &'a str, opts: &ParseOptions) -> Parts<'a> {
    let mut parts = Parts::default();
    let mut rest = text;
    let dated = if let Some(len) = bsd_date_len(text.as_bytes()) {
        parts.timestamp = bsd_date_ns(&text[..len], opts);
        rest = &text[len..];
        true
    } else {
        let token = text.split(' ').next().unwrap_or_default();
        if looks_like_iso_date(token) {
            parts.timestamp = parse_timestamp_str(token, opts);
            rest = &text[token.len()..];
            true
        } else {
            false
        }
    };
    if dated {
        rest = rest.trim_start_matches(' ');
        if parse_tag(rest).is_none() {
            let mut after_host = rest;
            parts.host = next_token(&mut after_host);
            rest = after_host.trim_start_matches(' ');
        }
    }
    match parse_tag(rest) {
        Some(tag) => {
            parts.app = Some(tag.name);
            parts.procid = tag.pid;
            parts.message = tag.message;
        }
        None => parts.message = rest,
    }
    parts
}

/// An RFC 3164 TAG with its optional `[PID]` and the message after it.
#[derive(Debug)]
struct Tag<'a> {
    name: &'a str,
    pid: Option<&'a str>,
    message: &'a str,
}

/// `name:`, `name[pid]:` or `name[pid]` followed by a space or the end, where the name runs up
/// to the first `[`, `:` or space. A word with neither colon nor `[pid]` is not taken for a tag,
/// so a message without one keeps its first word.
fn parse_tag(text: &str) -> Option<Tag<'_>> {
    let b = text.as_bytes();
    let name_len = b
        .iter()
        .position(|&c| matches!(c, b'[' | b':' | b' '))
        .unwrap_or(b.len());
    if name_len == 0 {
        return None;
    }
    let mut i = name_len;
    let mut pid = None;
    if b.get(i) == Some(&b'[') {
        let pid_len = b[i + 1..].iter().position(|&c| c == b']')?;
        let pid_text = &text[i + 1..i + 1 + pid_len];
        if pid_text.contains(' ') {
            return None;
        }
        pid = Some(pid_text).filter(|p| !p.is_empty());
        i += pid_len + 2;
    }
    let colon = b.get(i) == Some(&b':');
    if colon {
        i += 1;
    } else if i == name_len {
        return None;
    }
    let message = match b.get(i) {
        None => "",
        Some(b' ') => &text[i + 1..],
        Some(_) => return None,
    };
    Some(Tag {
        name: &text[..name_len],
        pid,
        message,
    })
}

/// Length of a BSD date at the start of `b`: three letters, one or two spaces, a one- or
/// two-digit day, a space, `hh:mm:ss` and an optional `.fraction`, then a space or the end.
/// Only the shape is checked here; the value is read by [`bsd_date_ns`].
fn bsd_date_len(b: &[u8]) -> Option<usize> {
    if !b.get(..3)?.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut i = 3;
    let spaces = count_while(b, i, |c| c == b' ');
    if !(1..=2).contains(&spaces) {
        return None;
    }
    i += spaces;
    let day_len = count_while(b, i, |c| c.is_ascii_digit());
    if !(1..=2).contains(&day_len) || b.get(i + day_len) != Some(&b' ') {
        return None;
    }
    i += day_len + 1;
    let time = b.get(i..i + 8)?;
    let time_shape = time.iter().enumerate().all(|(pos, &c)| {
        if pos == 2 || pos == 5 {
            c == b':'
        } else {
            c.is_ascii_digit()
        }
    });
    if !time_shape {
        return None;
    }
    i += 8;
    if b.get(i) == Some(&b'.') {
        let fraction_len = count_while(b, i + 1, |c| c.is_ascii_digit());
        if fraction_len > 0 {
            i += 1 + fraction_len;
        }
    }
    matches!(b.get(i), None | Some(b' ')).then_some(i)
}

/// A BSD date (no year) in nanoseconds, at the default offset: the latest year that puts it at
/// most a day after `opts.now_ns`. That is the text parser's rule (this year, or last year for a
/// date ahead of now: December received in January), plus next year for a January date received
/// in late December from a sender whose clock or zone runs ahead.
fn bsd_date_ns(date: &str, opts: &ParseOptions) -> Option<i64> {
    let next_year = year_of(opts.now_ns, opts.default_offset_secs) + 1;
    let latest_ok = opts.now_ns.saturating_add(FUTURE_TOLERANCE_NS);
    let mut with_year = String::with_capacity(date.len() + 8);
    // Writing to a String cannot fail.
    let _ = write!(with_year, "{date} {next_year}");
    match parse_timestamp_str(&with_year, opts) {
        Some(ns) if ns <= latest_ok => Some(ns),
        _ => parse_timestamp_str(date, opts),
    }
}

/// `yyyy-` at the start: an RFC 3339 date (checked fully by the timestamp parser).
fn looks_like_iso_date(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// The next space-separated word of `rest` (leading spaces skipped), advancing `rest` to the
/// space after it; `None` at the end.
fn next_token<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start_matches(' ');
    let len = text.find(' ').unwrap_or(text.len());
    let (token, after) = text.split_at(len);
    *rest = after;
    (!token.is_empty()).then_some(token)
}

fn non_nil(field: &str) -> Option<&str> {
    (field != NILVALUE).then_some(field)
}

fn count_while(b: &[u8], i: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(i..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| pred(c)).count())
}

/// Why the framer could not deliver a frame. After each error the stream re-synchronises by
/// itself: the next frame starts after the offending one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame over the limit, skipped whole. `len` is its announced octet count, or for an
    /// LF-terminated frame the bytes before the terminator (up to the end of the stream if none came).
    #[error("syslog frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLong { len: usize, max: usize },
    /// A frame starting with a digit 1-9 whose octet count is not digits then a space, or does
    /// not fit a `usize`; the input up to the next LF is discarded. Holds what was found.
    #[error("octet count must be digits then a space, found `{0}`")]
    BadLength(String),
    /// The stream ended inside an octet-counted frame.
    #[error("stream ended {received} bytes into an octet-counted frame of {len} bytes")]
    Truncated { len: usize, received: usize },
}

/// Where the framer stands at the first unconsumed byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FramerState {
    /// At or inside a frame still held in the buffer.
    Framing,
    /// Dropping the rest of an octet-counted frame that was reported too long.
    SkippingCounted { remaining: usize },
    /// Dropping input up to the next LF or NUL. `seen` bytes of this line dropped so far;
    /// `too_long`: the line outgrew the limit and is reported when it ends (else a bad octet
    /// count was already reported).
    SkippingLine { seen: usize, too_long: bool },
}

/// Splits a TCP byte stream into syslog frames.
///
/// Each frame is framed as it starts: with a digit 1-9, RFC 6587 octet counting (`LEN SP MSG`);
/// otherwise non-transparent framing, ending at LF or NUL, a CR before it dropped, empty frames
/// skipped. Frames over `max_frame_bytes` yield [`FrameError::TooLong`] and are skipped whole
/// (octet counting: LEN bytes, even when they arrive in later pushes; LF framing: up to the next
/// LF), so the stream re-synchronises. The frames and errors are the same however the stream is
/// cut into pushes. Memory stays bounded by `max_frame_bytes` and the size of one push (a small
/// multiple of their sum), provided [`SyslogFramer::next_frame`] is drained after each push.
#[derive(Debug)]
pub struct SyslogFramer {
    max_frame_bytes: usize,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// Bytes after `pos` already searched for a line terminator without finding one.
    scanned: usize,
    state: FramerState,
}

/// More octet-count digits than any `usize` has.
const MAX_LEN_DIGITS: usize = 20;
/// Consumed bytes at the front of the buffer are dropped once they are at least this many
/// and at least half the buffer, so each byte is moved a bounded number of times.
const COMPACT_MIN_BYTES: usize = 4096;

impl SyslogFramer {
    /// A framer that refuses frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        SyslogFramer {
            max_frame_bytes,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            state: FramerState::Framing,
        }
    }

    /// Appends the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= COMPACT_MIN_BYTES && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let max = self.max_frame_bytes;
        loop {
            let pending = &self.buf[self.pos..];
            match self.state {
                FramerState::SkippingCounted { remaining } => {
                    let dropped = remaining.min(pending.len());
                    self.pos += dropped;
                    if dropped < remaining {
                        self.state = FramerState::SkippingCounted {
                            remaining: remaining - dropped,
                        };
                        return None;
                    }
                    self.state = FramerState::Framing;
                }
                FramerState::SkippingLine { seen, too_long } => {
                    let Some(end) = memchr::memchr2(b'\n', 0, pending) else {
                        self.pos = self.buf.len();
                        self.state = FramerState::SkippingLine {
                            seen: seen.saturating_add(pending.len()),
                            too_long,
                        };
                        return None;
                    };
                    self.pos += end + 1;
                    self.state = FramerState::Framing;
                    if too_long {
                        let len = seen.saturating_add(end);
                        return Some(Err(FrameError::TooLong { len, max }));
                    }
                }
                FramerState::Framing => {
                    let &first = pending.first()?;
                    if (b'1'..=b'9').contains(&first) {
                        return self.octet_counted_frame();
                    }
                    let search_from = self.scanned.min(pending.len());
                    let Some(found) = memchr::memchr2(b'\n', 0, &pending[search_from..]) else {
                        self.scanned = pending.len();
                        if pending.len() > max {
                            self.state = FramerState::SkippingLine {
                                seen: pending.len(),
                                too_long: true,
                            };
                            self.pos = self.buf.len();
                            self.scanned = 0;
                        }
                        return None;
                    };
                    let end = search_from + found;
                    let start = self.pos;
                    self.pos += end + 1;
                    self.scanned = 0;
                    if end > max {
                        return Some(Err(FrameError::TooLong { len: end, max }));
                    }
                    let line = &self.buf[start..start + end];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if !line.is_empty() {
                        return Some(Ok(line.to_vec()));
                    }
                }
            }
        }
    }

    /// At the end of the stream: the next complete frame if any is left, else the trailing
    /// partial LF frame (if non-empty) or an error for a truncated octet-counted frame, a cut
    /// octet count, or an unterminated over-long line (a frame already reported too long is not
    /// reported again). Returns `None` once everything is delivered, and leaves the framer empty,
    /// ready for a new stream.
    pub fn finish(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if let Some(frame) = self.next_frame() {
            return Some(frame);
        }
        let pending = &self.buf[self.pos..];
        let last = match self.state {
            FramerState::SkippingLine {
                seen,
                too_long: true,
            } => Some(Err(FrameError::TooLong {
                len: seen,
                max: self.max_frame_bytes,
            })),
            // Reported when the skip began.
            FramerState::SkippingLine { .. } | FramerState::SkippingCounted { .. } => None,
            FramerState::Framing => match pending.first() {
                None => None,
                Some(b'1'..=b'9') => Some(Err(match parse_octet_count(pending) {
                    OctetCount::Complete { len, header_len } => FrameError::Truncated {
                        len,
                        received: pending.len() - header_len,
                    },
                    OctetCount::Bad(found) => FrameError::BadLength(found),
                    OctetCount::Incomplete => FrameError::BadLength(quoted(pending)),
                })),
                Some(_) => {
                    let line = pending.strip_suffix(b"\r").unwrap_or(pending);
                    (!line.is_empty()).then(|| Ok(line.to_vec()))
                }
            },
        };
        self.buf.clear();
        self.pos = 0;
        self.scanned = 0;
        self.state = FramerState::Framing;
        last
    }

    /// `LEN SP MSG` at `pos`: the frame, an error, or `None` until more bytes arrive.
    fn octet_counted_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let max = self.max_frame_bytes;
        let pending = &self.buf[self.pos..];
        match parse_octet_count(pending) {
            OctetCount::Incomplete => None,
            OctetCount::Bad(found) => {
                self.state = FramerState::SkippingLine {
                    seen: 0,
                    too_long: false,
                };
                Some(Err(FrameError::BadLength(found)))
            }
            OctetCount::Complete { len, header_len } if len > max => {
                self.pos += header_len;
                self.state = FramerState::SkippingCounted { remaining: len };
                Some(Err(FrameError::TooLong { len, max }))
            }
            OctetCount::Complete { len, header_len } => {
                // With a limit near `usize::MAX` the end may not be representable: such a frame
                // can never arrive, so it is waited for (and reported truncated at `finish`).
                let end = header_len.checked_add(len)?;
                let frame = pending.get(header_len..end)?.to_vec();
                self.pos += end;
                Some(Ok(frame))
            }
        }
    }
}

/// The `LEN SP` header of an octet-counted frame.
#[derive(Debug)]
enum OctetCount {
    /// Only digits so far.
    Incomplete,
    /// What was found instead of digits then a space.
    Bad(String),
    Complete {
        len: usize,
        header_len: usize,
    },
}

/// Reads `LEN SP` at the start of `b`, which starts with a digit 1-9.
fn parse_octet_count(b: &[u8]) -> OctetCount {
    let digit_count = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digit_count > MAX_LEN_DIGITS {
        return OctetCount::Bad(quoted(&b[..digit_count]));
    }
    match b.get(digit_count) {
        None => return OctetCount::Incomplete,
        Some(b' ') => {}
        Some(_) => return OctetCount::Bad(quoted(&b[..=digit_count])),
    }
    let len = b[..digit_count].iter().try_fold(0usize, |acc, &c| {
        acc.checked_mul(10)?.checked_add(usize::from(c - b'0'))
    });
    match len {
        Some(len) => OctetCount::Complete {
            len,
            header_len: digit_count + 1,
        },
        None => OctetCount::Bad(quoted(&b[..=digit_count])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-22T12:00:00Z, the day the `logger` examples were captured.
    const NOW_NS: i64 = 1_795_348_800_000_000_000;

    fn opts() -> ParseOptions {
        ParseOptions::utc_at(NOW_NS)
    }

    fn parse(msg: &str) -> LogRecord {
        parse_syslog_message(msg.as_bytes(), &opts()).unwrap()
    }

    fn attrs(record: &LogRecord) -> Vec<(&str, &str)> {
        record
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a str> {
        record
            .attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// (timestamp, level, host, service, message) of a record.
    fn columns(
        record: &LogRecord,
    ) -> (Option<i64>, Option<&str>, Option<&str>, Option<&str>, &str) {
        (
            record.timestamp,
            record.level.as_deref(),
            record.host.as_deref(),
            record.service.as_deref(),
            record.message.as_str(),
        )
    }

    #[test]
    fn rfc5424_example_1_bom_and_nil_procid() {
        let record = parse(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{FEFF}'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!(
            columns(&record),
            (
                Some(1_065_910_455_003_000_000),
                Some("FATAL"),
                Some("mymachine.example.com"),
                Some("su"),
                "'su root' failed for lonvick on /dev/pts/8",
            )
        );
        assert_eq!(
            attrs(&record),
            [
                ("syslog.facility", "auth"),
                ("syslog.severity", "crit"),
                ("syslog.msgid", "ID47"),
            ]
        );
    }

    #[test]
    fn rfc5424_example_2_offset_and_microseconds() {
        let record = parse(
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        );
        assert_eq!(
            columns(&record),
            (
                Some(1_061_727_255_000_003_000),
                Some("INFO"),
                Some("192.0.2.1"),
                Some("myproc"),
                "%% It's time to make the do-nuts.",
            )
        );
        assert_eq!(
            attrs(&record),
            [
                ("syslog.facility", "local4"),
                ("syslog.severity", "notice"),
                ("syslog.procid", "8710"),
            ]
        );
    }

    #[test]
    fn rfc5424_example_3_structured_data_and_message() {
        let record = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{FEFF}An application event log entry...",
        );
        assert_eq!(record.message, "An application event log entry...");
        assert_eq!(record.service.as_deref(), Some("evntslog"));
        assert_eq!(
            attrs(&record),
            [
                ("syslog.facility", "local4"),
                ("syslog.severity", "notice"),
                ("syslog.msgid", "ID47"),
                ("sd.exampleSDID@32473.iut", "3"),
                ("sd.exampleSDID@32473.eventSource", "Application"),
                ("sd.exampleSDID@32473.eventID", "1011"),
            ]
        );
    }

    #[test]
    fn rfc5424_example_4_two_elements_no_message() {
        let record = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        );
        assert_eq!(record.timestamp, Some(1_065_910_455_003_000_000));
        assert_eq!(record.message, "");
        assert_eq!(
            attr(&record, "sd.examplePriority@32473.class"),
            Some("high")
        );
        assert_eq!(attr(&record, "sd.exampleSDID@32473.eventID"), Some("1011"));
        assert_eq!(record.attributes.len(), 7);
    }

    #[test]
    fn rfc3164_examples() {
        let record =
            parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(
            columns(&record),
            (
                Some(1_791_756_855_000_000_000),
                Some("FATAL"),
                Some("mymachine"),
                Some("su"),
                "'su root' failed for lonvick on /dev/pts/8",
            )
        );
        assert_eq!(
            attrs(&record),
            [("syslog.facility", "auth"), ("syslog.severity", "crit")]
        );
        // What a relay makes of "Use the BFG!": no tag, so the message keeps its first word.
        let record = parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!");
        assert_eq!(
            columns(&record),
            (
                Some(1_770_312_738_000_000_000),
                Some("INFO"),
                Some("10.0.0.99"),
                None,
                "Use the BFG!",
            )
        );
        // Non-compliant: a zone and year after the date; "CST" is taken for the host.
        let record = parse(
            "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.",
        );
        assert_eq!(record.timestamp, Some(1_787_549_640_000_000_000));
        assert_eq!(record.host.as_deref(), Some("CST"));
        assert_eq!(
            record.message,
            "1987 mymachine myproc[10]: %% It's time to make the do-nuts."
        );
        // No valid date: the whole text is the message (RFC 3164 §4.3.2).
        let text = "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!";
        let record = parse(&format!("<0>{text}"));
        assert_eq!(columns(&record), (None, Some("FATAL"), None, None, text));
        assert_eq!(
            attrs(&record),
            [("syslog.facility", "kern"), ("syslog.severity", "emerg")]
        );
    }

    #[test]
    fn rfc3164_tags_pids_and_missing_hostname() {
        let record = parse("<30>Nov 22 10:00:00 web1 sshd[24200]: Accepted publickey");
        assert_eq!(record.host.as_deref(), Some("web1"));
        assert_eq!(record.service.as_deref(), Some("sshd"));
        assert_eq!(attr(&record, "syslog.procid"), Some("24200"));
        assert_eq!(attr(&record, "syslog.facility"), Some("daemon"));
        assert_eq!(record.message, "Accepted publickey");
        // What glibc's syslog() writes to /dev/log: no hostname.
        let record = parse("<13>Nov 22 10:00:00 app[12]: hi");
        assert_eq!(
            columns(&record),
            (
                Some(1_795_341_600_000_000_000),
                Some("INFO"),
                None,
                Some("app"),
                "hi"
            )
        );
        let record = parse("<13>Nov 22 10:00:00 postfix/smtpd: x");
        assert_eq!(
            (record.host, record.service.as_deref()),
            (None, Some("postfix/smtpd"))
        );
        // `tag[pid]` without a colon is still a tag; a plain word after the host is message.
        let record = parse("<13>Nov 22 10:00:00 h kernel[0] boot");
        assert_eq!(
            (record.service.as_deref(), record.message.as_str()),
            (Some("kernel"), "boot")
        );
        let record = parse("<13>Nov 22 10:00:00 h see http://x: y");
        assert_eq!(
            (record.service, record.message.as_str()),
            (None, "see http://x: y")
        );
        // An IPv6 host is not a tag.
        let record = parse("<13>Nov 22 10:00:00 fe80::1 app: hi");
        assert_eq!(record.host.as_deref(), Some("fe80::1"));
        assert_eq!(record.service.as_deref(), Some("app"));
        // Empty pid, header only, date only.
        let record = parse("<13>Nov 22 10:00:00 h app[]: hi");
        assert_eq!(attr(&record, "syslog.procid"), None);
        assert_eq!(record.service.as_deref(), Some("app"));
        let record = parse("<13>Nov 22 10:00:00 h");
        assert_eq!(
            (record.host.as_deref(), record.message.as_str()),
            (Some("h"), "")
        );
        let record = parse("<13>Nov 22 10:00:00");
        assert_eq!(
            (
                record.timestamp.is_some(),
                record.host,
                record.message.as_str()
            ),
            (true, None, "")
        );
    }

    #[test]
    fn rfc3164_dates() {
        // Space-padded and unpadded days, a fraction, the default offset.
        assert_eq!(
            parse("<13>Nov  2 10:00:00 h x").timestamp,
            Some(1_795_341_600_000_000_000 - 20 * 86_400 * 1_000_000_000)
        );
        assert_eq!(parse("<13>Nov 2 10:00:00 h x").host.as_deref(), Some("h"));
        assert_eq!(
            parse("<13>Nov 22 10:00:00.5 h x").timestamp,
            Some(1_795_341_600_500_000_000)
        );
        let east = ParseOptions {
            default_offset_secs: 3600,
            ..opts()
        };
        let record = parse_syslog_message(b"<13>Nov 22 10:00:00 h x", &east).unwrap();
        assert_eq!(record.timestamp, Some(1_795_338_000_000_000_000));
        // rsyslog's RFC 3339 date in place of the BSD one, with and without a hostname.
        let record = parse("<13>2026-11-22T10:00:00.123456+00:00 myhost app[1]: hi");
        assert_eq!(
            columns(&record),
            (
                Some(1_795_341_600_123_456_000),
                Some("INFO"),
                Some("myhost"),
                Some("app"),
                "hi"
            )
        );
        let record = parse("<13>2026-11-22T11:00:00+01:00 app: hi");
        assert_eq!(
            columns(&record),
            (
                Some(1_795_341_600_000_000_000),
                Some("INFO"),
                None,
                Some("app"),
                "hi"
            )
        );
        // A date shape with an impossible value: no timestamp, header still split.
        let record = parse("<13>Feb 30 10:00:00 h app: x");
        assert_eq!(
            (
                record.timestamp,
                record.host.as_deref(),
                record.message.as_str()
            ),
            (None, Some("h"), "x")
        );
    }

    #[test]
    fn year_rollover() {
        let at = |now_ns: i64, msg: &str| {
            let opts = ParseOptions { now_ns, ..opts() };
            parse_syslog_message(msg.as_bytes(), &opts)
                .unwrap()
                .timestamp
        };
        // 2027-01-05T00:00Z: December is last year's.
        assert_eq!(
            at(1_799_107_200_000_000_000, "<13>Dec 31 23:59:59 h x"),
            Some(1_798_761_599_000_000_000)
        );
        // 2026-12-31T23:59Z: a sender 90 s ahead already writes January of 2027.
        assert_eq!(
            at(1_798_761_540_000_000_000, "<13>Jan  1 00:00:30 h x"),
            Some(1_798_761_630_000_000_000)
        );
        // Earlier this year stays this year, however long ago.
        assert_eq!(
            at(NOW_NS, "<13>Feb  5 17:32:18 h x"),
            Some(1_770_312_738_000_000_000)
        );
        // Feb 29 only exists in the past leap year.
        let mar_2025 = 1_740_787_200_000_000_000; // 2025-03-01T00:00Z
        assert_eq!(
            at(mar_2025, "<13>Feb 29 10:00:00 h x"),
            Some(1_709_200_800_000_000_000) // 2024-02-29T10:00Z
        );
    }

    #[test]
    fn logger_rfc5424() {
        // util-linux logger 2.38.1 `--rfc5424` (UDP datagram; TCP adds an LF): isSynced="0" and
        // no syncAccuracy when the clock is not known to be synchronised.
        let record = parse(
            "<13>1 2026-11-22T10:00:00.123456+00:00 myhost root - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello world",
        );
        assert_eq!(
            columns(&record),
            (
                Some(1_795_341_600_123_456_000),
                Some("INFO"),
                Some("myhost"),
                Some("root"),
                "hello world"
            )
        );
        assert_eq!(
            attrs(&record),
            [
                ("syslog.facility", "user"),
                ("syslog.severity", "notice"),
                ("sd.timeQuality.tzKnown", "1"),
                ("sd.timeQuality.isSynced", "0"),
            ]
        );
        let record = parse(
            "<13>1 2026-11-22T10:00:00.123456+00:00 myhost root - - [timeQuality tzKnown=\"1\" isSynced=\"1\" syncAccuracy=\"45000\"] hello world\n",
        );
        assert_eq!(attr(&record, "sd.timeQuality.syncAccuracy"), Some("45000"));
        assert_eq!(record.message, "hello world");
        // `-t app -p local3.err -i --msgid ID47 --sd-id zoo@123 --sd-param 'tiger="hun\]gry"'`.
        let record = parse(
            "<155>1 2026-11-22T09:05:20.558990+00:00 vm app 9329 ID47 [timeQuality tzKnown=\"1\" isSynced=\"0\"][zoo@123 tiger=\"hun\\]gry\"] hi",
        );
        assert_eq!(record.level.as_deref(), Some("ERROR"));
        assert_eq!(record.timestamp, Some(1_795_338_320_558_990_000));
        assert_eq!(
            attrs(&record)[..4],
            [
                ("syslog.facility", "local3"),
                ("syslog.severity", "err"),
                ("syslog.procid", "9329"),
                ("syslog.msgid", "ID47"),
            ]
        );
        assert_eq!(attr(&record, "sd.zoo@123.tiger"), Some("hun]gry"));
        // `--rfc5424=notq,notime` and `--rfc5424=nohost`.
        let record = parse("<13>1 - vm root - - - hi");
        assert_eq!(
            columns(&record),
            (None, Some("INFO"), Some("vm"), Some("root"), "hi")
        );
        let record = parse(
            "<13>1 2026-11-22T09:05:20.867665+00:00 - root - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hi",
        );
        assert_eq!(record.host, None);
    }

    #[test]
    fn logger_rfc3164() {
        let record = parse("<13>Nov 22 10:00:00 myhost root: hello world");
        assert_eq!(
            columns(&record),
            (
                Some(1_795_341_600_000_000_000),
                Some("INFO"),
                Some("myhost"),
                Some("root"),
                "hello world"
            )
        );
        let record = parse("<155>Nov 22 09:05:20 vm app: hi");
        assert_eq!(record.level.as_deref(), Some("ERROR"));
        assert_eq!(record.timestamp, Some(1_795_338_320_000_000_000));
        assert_eq!(attr(&record, "syslog.facility"), Some("local3"));
        let record = parse("<13>Nov 22 09:05:20 vm root[9331]: hi pid");
        assert_eq!(attr(&record, "syslog.procid"), Some("9331"));
        // logger's default on a local socket: RFC 3164 without the hostname.
        let record = parse("<13>Nov 22 09:05:20 root: local default");
        assert_eq!(
            (
                record.host,
                record.service.as_deref(),
                record.message.as_str()
            ),
            (None, Some("root"), "local default")
        );
    }

    #[test]
    fn nilvalues_and_missing_fields() {
        let record = parse("<14>1 - - - - - -");
        assert_eq!(columns(&record), (None, Some("INFO"), None, None, ""));
        assert_eq!(
            attrs(&record),
            [("syslog.facility", "user"), ("syslog.severity", "info")]
        );
        // Truncated headers: what is there is used.
        let record = parse("<14>1 2003-10-11T22:14:15Z host");
        assert_eq!(
            columns(&record),
            (
                Some(1_065_910_455_000_000_000),
                Some("INFO"),
                Some("host"),
                None,
                ""
            )
        );
        let record = parse("<14>1 - h a p m");
        assert_eq!(attr(&record, "syslog.msgid"), Some("m"));
        assert_eq!(record.message, "");
        // An unparsable timestamp is dropped, the rest still read.
        let record = parse("<14>1 2003-13-45T99:00:00Z h a - - - m");
        assert_eq!((record.timestamp, record.message.as_str()), (None, "m"));
        // Missing STRUCTURED-DATA or broken SD: kept in the message, unparsed.
        let record = parse("<14>1 - h a - - hello world");
        assert_eq!(record.message, "hello world");
        let record = parse("<14>1 - h a - - [x a=\"unterminated] rest");
        assert_eq!(record.message, "[x a=\"unterminated] rest");
        assert_eq!(record.attributes.len(), 2);
        let record = parse("<14>1 - h a - - [x a=\"1\"]glued");
        assert_eq!(record.message, "[x a=\"1\"]glued");
        // "1 " followed by something that is not a timestamp is BSD text.
        let record = parse("<14>1 apple fell");
        assert_eq!(
            columns(&record),
            (None, Some("INFO"), None, None, "1 apple fell")
        );
    }

    #[test]
    fn structured_data_values() {
        let record = parse(
            r#"<14>1 - - - - - [a@1 q="say \"hi\"" path="C:\\dir" br="x\]y" raw="a]b" other="\n" utf="é"][flag][a@1 q="again"] m"#,
        );
        assert_eq!(
            attrs(&record)[2..],
            [
                ("sd.a@1.path", r"C:\dir"),
                ("sd.a@1.br", "x]y"),
                ("sd.a@1.raw", "a]b"),
                ("sd.a@1.other", r"\n"),
                ("sd.a@1.utf", "é"),
                ("sd.flag", ""),
                ("sd.a@1.q", "again"),
            ]
        );
        assert_eq!(record.message, "m");
        // `sd.a.b` from an element `a.b` and from `a` with param `b`: one key, the last value.
        let record = parse(r#"<14>1 - - - - - [a.b][a b="2"]"#);
        assert_eq!(attrs(&record)[2..], [("sd.a.b", "2")]);
        let record = parse(r#"<14>1 - - - - - [a  b="1"  ]"#);
        assert_eq!(attr(&record, "sd.a.b"), Some("1"));
        for broken in [
            r#"[]"#,
            r#"[a b]"#,
            r#"[a b=1]"#,
            r#"[a ="1"]"#,
            r#"[a b="1""#,
            r#"[a"#,
            "[a b=\"1\\\"]",
        ] {
            let record = parse(&format!("<14>1 - - - - - {broken}"));
            assert_eq!(record.message, broken);
            assert_eq!(record.attributes.len(), 2, "{broken}");
        }
    }

    #[test]
    fn bad_pri_is_an_error() {
        let err = |msg: &[u8]| parse_syslog_message(msg, &opts()).unwrap_err().to_string();
        assert_eq!(
            err(b"<200>1 - - - - - -"),
            "PRI must be <0>..<191>, found <200>"
        );
        assert_eq!(err(b"<192>x"), "PRI must be <0>..<191>, found <192>");
        assert_eq!(err(b"<013>x"), "PRI must be <0>..<191>, found <013>");
        assert_eq!(err(b"<00>x"), "PRI must be <0>..<191>, found <00>");
        assert_eq!(err(b"<1234>x"), "PRI must be <0>..<191>, found <1234>");
        assert_eq!(
            err(b"<99999999999999999999>x"),
            "PRI must be <0>..<191>, found <999999999999\u{2026}>"
        );
        assert_eq!(
            err(b"<13 x"),
            "PRI must be <0>..<191>, found `<13` with no closing `>`"
        );
        assert_eq!(
            err(b"<13"),
            "PRI must be <0>..<191>, found `<13` with no closing `>`"
        );
        assert_eq!(err(b"<>x"), "PRI must be <0>..<191>, found `<>`");
        assert_eq!(err(b"<x>"), "PRI must be <0>..<191>, found `<x`");
        assert_eq!(err(b"<"), "PRI must be <0>..<191>, found `<`");
        assert_eq!(
            parse_syslog_message(b"<192>x", &opts()),
            Err(SyslogError::PriOutOfRange {
                found: "<192>".to_owned()
            })
        );
        // The edges are fine.
        assert_eq!(parse("<0>x").level.as_deref(), Some("FATAL"));
        let record = parse("<191>x");
        assert_eq!(
            attrs(&record),
            [("syslog.facility", "local7"), ("syslog.severity", "debug")]
        );
        assert_eq!(record.level.as_deref(), Some("DEBUG"));
    }

    #[test]
    fn no_pri_is_user_notice_text() {
        let record = parse("Nov 22 10:00:00 myhost app: hi");
        assert_eq!(
            columns(&record),
            (
                Some(1_795_341_600_000_000_000),
                Some("INFO"),
                Some("myhost"),
                Some("app"),
                "hi"
            )
        );
        assert_eq!(
            attrs(&record),
            [("syslog.facility", "user"), ("syslog.severity", "notice")]
        );
        let record = parse("just some words");
        assert_eq!(
            columns(&record),
            (None, Some("INFO"), None, None, "just some words")
        );
        // Never RFC 5424 without a PRI.
        assert_eq!(parse("1 - h a - - - m").message, "1 - h a - - - m");
    }

    #[test]
    fn trimming_empty_and_invalid_utf8() {
        assert_eq!(parse_syslog_message(b"", &opts()), Err(SyslogError::Empty));
        assert_eq!(
            parse_syslog_message(b"\r\n\0\n", &opts()),
            Err(SyslogError::Empty)
        );
        assert_eq!(
            parse_syslog_message(b"", &opts()).unwrap_err().to_string(),
            "empty message"
        );
        assert_eq!(parse("<13>Nov 22 10:00:00 h a: hi\r\n\0").message, "hi");
        assert_eq!(parse("<13>").message, "");
        let record =
            parse_syslog_message(b"<13>1 - h\xff a - - - caf\xc3 \xEF\xBB\xBFx", &opts()).unwrap();
        assert_eq!(record.host.as_deref(), Some("h\u{FFFD}"));
        assert_eq!(record.message, "caf\u{FFFD} \u{FEFF}x");
        // A BOM only counts at the start of an RFC 5424 MSG.
        let record =
            parse_syslog_message(b"<13>1 - h a - - - \xEF\xBB\xBF\xEF\xBB\xBFx", &opts()).unwrap();
        assert_eq!(record.message, "\u{FEFF}x");
    }

    /// Every frame and error, pushing `input` in chunks of `chunk` bytes, then `finish` to the end.
    fn frames(max: usize, input: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut framer = SyslogFramer::new(max);
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.push(piece);
            while let Some(frame) = framer.next_frame() {
                out.push(frame);
            }
        }
        while let Some(frame) = framer.finish() {
            out.push(frame);
        }
        out
    }

    fn ok(frame: &str) -> Result<Vec<u8>, FrameError> {
        Ok(frame.as_bytes().to_vec())
    }

    /// Framed whole and byte by byte, which must agree.
    fn framed(max: usize, input: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        let whole = frames(max, input, input.len());
        assert_eq!(frames(max, input, 1), whole, "byte by byte");
        assert_eq!(frames(max, input, 3), whole, "3-byte chunks");
        whole
    }

    #[test]
    fn framer_octet_counting() {
        // What `logger -T --octet-count` sends.
        let msg = "<13>1 2026-11-22T09:05:20.644078+00:00 vm root - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] tcp two";
        let stream = format!("{} {msg}10 <13>x\ny\n z", msg.len());
        assert_eq!(
            framed(1024, stream.as_bytes()),
            [ok(msg), ok("<13>x\ny\n z")]
        );
        // An LF after each frame, as some senders add, is an empty frame and skipped.
        assert_eq!(framed(1024, b"3 abc\n3 def\n"), [ok("abc"), ok("def")]);
    }

    #[test]
    fn framer_lf_and_nul() {
        let stream =
            b"<13>Nov 22 09:05:20 vm root: tcp three\n<13>a\r\n\n\r\n<13>b\0<13>c\n<13>tail";
        assert_eq!(
            framed(1024, stream),
            [
                ok("<13>Nov 22 09:05:20 vm root: tcp three"),
                ok("<13>a"),
                ok("<13>b"),
                ok("<13>c"),
                ok("<13>tail"),
            ]
        );
        assert_eq!(
            framed(1024, b"<13>a\n<13>tail\r"),
            [ok("<13>a"), ok("<13>tail")]
        );
        assert_eq!(framed(1024, b""), []);
        assert_eq!(framed(1024, b"\n\r\n"), []);
        // A frame that starts with 0 is LF-framed.
        assert_eq!(framed(1024, b"0 x\n"), [ok("0 x")]);
    }

    #[test]
    fn framer_mixed_framings() {
        assert_eq!(
            framed(1024, b"<1>lf\n4 <2>o<3>lf\n"),
            [ok("<1>lf"), ok("<2>o"), ok("<3>lf")]
        );
    }

    #[test]
    fn framer_too_long_octet_counted_resynchronises() {
        let stream = b"5 abcde12 0123456789ab3 xyz";
        assert_eq!(
            framed(8, stream),
            [
                ok("abcde"),
                Err(FrameError::TooLong { len: 12, max: 8 }),
                ok("xyz")
            ]
        );
        // The skipped bytes arrive in later pushes.
        let mut framer = SyslogFramer::new(4);
        framer.push(b"10 01");
        assert_eq!(
            framer.next_frame(),
            Some(Err(FrameError::TooLong { len: 10, max: 4 }))
        );
        assert_eq!(framer.next_frame(), None);
        framer.push(b"2345");
        assert_eq!(framer.next_frame(), None);
        framer.push(b"67891 z");
        assert_eq!(framer.next_frame(), Some(Ok(b"z".to_vec())));
        assert_eq!(framer.next_frame(), None);
        assert_eq!(framer.finish(), None);
        // A limit of usize::MAX: an announced length near it is waited for, never overflows.
        let mut framer = SyslogFramer::new(usize::MAX);
        framer.push(b"18446744073709551615 abc");
        assert_eq!(framer.next_frame(), None);
        assert_eq!(
            framer.finish(),
            Some(Err(FrameError::Truncated {
                len: usize::MAX,
                received: 3
            }))
        );
        // A huge announced length is skipped without being held.
        let mut framer = SyslogFramer::new(16);
        framer.push(b"18446744073709551615 ");
        assert_eq!(
            framer.next_frame(),
            Some(Err(FrameError::TooLong {
                len: usize::MAX,
                max: 16
            }))
        );
        for _ in 0..100 {
            framer.push(&[b'x'; 1000]);
            assert_eq!(framer.next_frame(), None);
            assert!(framer.buf.len() <= 1000);
        }
    }

    #[test]
    fn framer_too_long_lf_resynchronises() {
        let stream = b"<1>ok\n<2>this line is too long\r\n<3>fine\n";
        assert_eq!(
            framed(10, stream),
            [
                ok("<1>ok"),
                Err(FrameError::TooLong { len: 25, max: 10 }),
                ok("<3>fine")
            ]
        );
        // Memory stays bounded while the over-long line goes on.
        let mut framer = SyslogFramer::new(64);
        framer.push(b"<1>");
        for _ in 0..1000 {
            framer.push(&[b'y'; 100]);
            assert_eq!(framer.next_frame(), None);
            assert!(framer.buf.len() <= 64 + 100);
        }
        framer.push(b"y\n<2>next\n");
        assert_eq!(
            framer.next_frame(),
            Some(Err(FrameError::TooLong {
                len: 100_004,
                max: 64
            }))
        );
        assert_eq!(framer.next_frame(), Some(Ok(b"<2>next".to_vec())));
        // An over-long line cut by the end of the stream.
        assert_eq!(
            framed(4, b"<1>abcdef"),
            [Err(FrameError::TooLong { len: 9, max: 4 })]
        );
        // Exactly at the limit is fine.
        assert_eq!(
            framed(4, b"abcd\n1234\n"),
            [ok("abcd"), Err(FrameError::BadLength("1234\n".to_owned()))]
        );
    }

    #[test]
    fn framer_bad_length_skips_the_line() {
        assert_eq!(
            framed(1024, b"12abc\n<13>next\n"),
            [Err(FrameError::BadLength("12a".to_owned())), ok("<13>next")]
        );
        assert_eq!(
            framed(1024, b"2024-01-02 not a syslog frame\n3 abc"),
            [Err(FrameError::BadLength("2024-".to_owned())), ok("abc")]
        );
        assert_eq!(
            framed(1024, b"123456789012345678901234 x\n1 y"),
            [
                Err(FrameError::BadLength("123456789012\u{2026}".to_owned())),
                ok("y")
            ]
        );
        // A length that does not fit a usize.
        assert_eq!(
            framed(1024, b"99999999999999999999 x\n1 y"),
            [
                Err(FrameError::BadLength("999999999999\u{2026}".to_owned())),
                ok("y")
            ]
        );
        assert_eq!(
            FrameError::BadLength("12a".to_owned()).to_string(),
            "octet count must be digits then a space, found `12a`"
        );
    }

    #[test]
    fn framer_truncated_at_finish() {
        assert_eq!(
            framed(1024, b"3 abc10 short"),
            [
                ok("abc"),
                Err(FrameError::Truncated {
                    len: 10,
                    received: 5
                })
            ]
        );
        assert_eq!(
            framed(1024, b"3 abc10 "),
            [
                ok("abc"),
                Err(FrameError::Truncated {
                    len: 10,
                    received: 0
                })
            ]
        );
        assert_eq!(
            framed(1024, b"3 abc10"),
            [ok("abc"), Err(FrameError::BadLength("10".to_owned()))]
        );
        assert_eq!(
            FrameError::Truncated {
                len: 10,
                received: 5
            }
            .to_string(),
            "stream ended 5 bytes into an octet-counted frame of 10 bytes"
        );
        // A too-long frame cut short was already reported.
        assert_eq!(
            framed(4, b"10 abc"),
            [Err(FrameError::TooLong { len: 10, max: 4 })]
        );
        // The framer is reusable after finish.
        let mut framer = SyslogFramer::new(16);
        framer.push(b"5 ab");
        assert!(matches!(
            framer.finish(),
            Some(Err(FrameError::Truncated { .. }))
        ));
        assert_eq!(framer.finish(), None);
        framer.push(b"1 a");
        assert_eq!(framer.next_frame(), Some(Ok(b"a".to_vec())));
    }

    #[test]
    fn framed_messages_parse() {
        let stream =
            b"<13>Nov 22 09:05:20 vm root: tcp three\n35 <13>1 - vm root - - [x@1 k=\"v\"] tcp";
        let records: Vec<LogRecord> = frames(1024, stream, 7)
            .into_iter()
            .map(|frame| parse_syslog_message(&frame.unwrap(), &opts()).unwrap())
            .collect();
        assert_eq!(records[0].message, "tcp three");
        assert_eq!(records[1].message, "tcp");
        assert_eq!(attr(&records[1], "sd.x@1.k"), Some("v"));
    }

    /// Bytes that look like syslog streams often enough to reach the interesting paths.
    fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\0".to_vec()),
            Just(b"<13>".to_vec()),
            Just(b" ".to_vec()),
            (1usize..40).prop_map(|n| format!("{n} ").into_bytes()),
            "[0-9]{1,3}".prop_map(String::into_bytes),
            "[a-z<>\\[\\]=\" -]{0,12}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    /// Bytes that look like syslog messages.
    fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"<13>".to_vec()),
            Just(b"<165>1 ".to_vec()),
            Just(b"2003-10-11T22:14:15.003Z ".to_vec()),
            Just(b"Nov 22 10:00:00 ".to_vec()),
            Just(b"- ".to_vec()),
            Just(b"[a@1 b=\"c\\\"\\]\"]".to_vec()),
            Just(b"app[12]: ".to_vec()),
            Just(b"\xEF\xBB\xBF".to_vec()),
            "[a-z0-9<>\\[\\]=\"\\\\:. -]{0,12}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    fn assert_unique_keys(record: &LogRecord) {
        let mut keys: Vec<&str> = record.attributes.iter().map(|(k, _)| k.as_str()).collect();
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            count,
            "attribute keys must be unique: {:?}",
            record.attributes
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn framer_ignores_chunking(
            input in stream_bytes(),
            max in 0usize..48,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let whole = frames(max, &input, input.len());
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
            cuts.sort_unstable();
            let mut framer = SyslogFramer::new(max);
            let mut chunked = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                framer.push(&input[start..cut]);
                start = cut;
                while let Some(frame) = framer.next_frame() {
                    chunked.push(frame);
                }
            }
            while let Some(frame) = framer.finish() {
                chunked.push(frame);
            }
            prop_assert_eq!(&chunked, &whole);
            prop_assert_eq!(frames(max, &input, 1), whole);
        }

        #[test]
        fn framer_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256), max in 0usize..64, chunk in 1usize..16) {
            for frame in frames(max, &input, chunk).into_iter().flatten() {
                prop_assert!(frame.len() <= max);
            }
        }

        #[test]
        fn parse_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(record) = parse_syslog_message(&input, &opts()) {
                assert_unique_keys(&record);
            }
        }

        #[test]
        fn parse_never_panics_on_syslog_like_input(input in message_bytes(), now_ns in any::<i64>(), offset in any::<i32>()) {
            let opts = ParseOptions { default_offset_secs: offset, now_ns, multiline: false };
            if let Ok(record) = parse_syslog_message(&input, &opts) {
                assert_unique_keys(&record);
            }
        }
    }
}
