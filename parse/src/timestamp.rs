//! Timestamp recognition: a hand-written byte scanner for the date formats found in log lines,
//! epoch numbers by magnitude, and resolving zones and the syslog missing year to UTC nanoseconds.

use super::ParseOptions;
use super::calendar::{NANOS_PER_SEC, SECS_PER_DAY, days_from_civil, days_in_month, year_of};

/// A timestamp must start within this many bytes of the line start to be recognised.
pub(crate) const MAX_TIMESTAMP_SCAN_BYTES: usize = 64;
/// A timestamp must start within this many whitespace-separated tokens of the line start (the
/// epoch seconds of HPC-style lines are the fifth token).
pub(crate) const MAX_TIMESTAMP_SCAN_TOKENS: usize = 5;

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z: epoch numbers outside this range are not timestamps.
const EPOCH_MIN_SECS: i64 = 946_684_800;
const EPOCH_MAX_SECS: i64 = 4_102_444_800;
/// Syslog dates without a year may lie at most this far after "now" before the previous year is used.
const SYSLOG_FUTURE_TOLERANCE_SECS: i64 = SECS_PER_DAY;
/// Years whose every instant fits an `i64` of nanoseconds since the epoch.
const MIN_YEAR: i64 = 1678;
const MAX_YEAR: i64 = 2261;

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];

/// Which year a parsed date has.
#[derive(Debug, Clone, Copy)]
enum Year {
    Given(i64),
    /// Syslog style: no year in the text, chosen relative to `ParseOptions::now_ns`.
    Missing,
}

/// A calendar date and wall-clock time as written, before zone and year resolution.
#[derive(Debug, Clone, Copy)]
struct WallTime {
    year: Year,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Explicit UTC offset in seconds; `None` = `ParseOptions::default_offset_secs`.
    offset_secs: Option<i32>,
}

impl WallTime {
    /// A time written without a zone: `ParseOptions::default_offset_secs` applies.
    fn zoneless(
        year: Year,
        (month, day): (u32, u32),
        (hour, minute, second): (u32, u32, u32),
        nanos: u32,
    ) -> Self {
        WallTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset_secs: None,
        }
    }
}

/// Finds a timestamp starting within the first tokens of a text line; the first one found wins,
/// except that an epoch number gives way to a later date with a year in the window (BGL lines
/// carry both, the date with microseconds), but not to one without a year (Thunderbird's syslog
/// date after the epoch).
///
/// Epoch numbers count in the first token (also bracketed or quoted) and as whole later tokens
/// (`- 1117838570 2005.06.03 ...`), when they fall between 2000 and 2100. The number-pair
/// `yyMMdd HHmmss` and the klog header count only in the first token.
///
/// Returns the timestamp in UTC nanoseconds and the byte offset just past it.
pub(crate) fn scan_line_timestamp(line: &[u8], opts: &ParseOptions) -> Option<(i64, usize)> {
    let limit = line.len().min(MAX_TIMESTAMP_SCAN_BYTES);
    let mut tokens_seen = 0;
    let mut epoch = None;
    for start in 0..limit {
        let byte = line[start];
        let prev = if start == 0 { b' ' } else { line[start - 1] };
        if prev.is_ascii_whitespace() && !byte.is_ascii_whitespace() {
            tokens_seen += 1;
            if tokens_seen > MAX_TIMESTAMP_SCAN_TOKENS {
                break;
            }
        }
        if !byte.is_ascii_alphanumeric() || !is_candidate_boundary(prev) {
            continue;
        }
        let first_token = tokens_seen <= 1;
        if let Some((wall, end)) = parse_wall_time_at(line, start, first_token) {
            if let Some(ns) = resolve(wall, opts) {
                let has_year = matches!(wall.year, Year::Given(_));
                return Some(if has_year {
                    (ns, end)
                } else {
                    epoch.unwrap_or((ns, end))
                });
            }
        } else if epoch.is_none()
            && (first_token || prev.is_ascii_whitespace())
            && let Some((ns, end)) = parse_epoch_at(line, start)
            && (first_token || line.get(end).is_none_or(u8::is_ascii_whitespace))
        {
            epoch = Some((ns, end));
        }
    }
    epoch
}

/// Parses a whole string (surrounding whitespace allowed) as a timestamp in any recognised format,
/// including epoch numbers and a bare `yyyy-MM-dd` date (midnight).
pub(crate) fn parse_timestamp_str(text: &str, opts: &ParseOptions) -> Option<i64> {
    let bytes = text.trim().as_bytes();
    if bytes.is_empty() {
        return None;
    }
    if let Some((wall, end)) = parse_wall_time_at(bytes, 0, true)
        && end == bytes.len()
    {
        return resolve(wall, opts);
    }
    if let Some((ns, end)) = parse_epoch_at(bytes, 0)
        && end == bytes.len()
    {
        return Some(ns);
    }
    let (year, month, day, end) = parse_ymd(bytes, 0)?;
    if end != bytes.len() {
        return None;
    }
    resolve(
        WallTime::zoneless(Year::Given(year), (month, day), (0, 0, 0), 0),
        opts,
    )
}

/// Interprets an integer as epoch seconds, milliseconds, microseconds or nanoseconds, whichever
/// puts it between 2000 and 2100.
pub(crate) fn epoch_ns_from_integer(value: i128) -> Option<i64> {
    const SCALES: [i128; 4] = [1_000_000_000, 1_000_000, 1_000, 1];
    for (step, scale) in SCALES.into_iter().enumerate() {
        let unit_per_sec = 1000_i128.pow(step as u32);
        let min = i128::from(EPOCH_MIN_SECS) * unit_per_sec;
        let max = i128::from(EPOCH_MAX_SECS) * unit_per_sec;
        if (min..max).contains(&value) {
            return i64::try_from(value * scale).ok();
        }
    }
    None
}

/// Like [`epoch_ns_from_integer`] for a possibly fractional number.
pub(crate) fn epoch_ns_from_float(value: f64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    let mut unit_per_sec = 1.0_f64;
    for _ in 0..4 {
        let secs = value / unit_per_sec;
        if secs >= EPOCH_MIN_SECS as f64 && secs < EPOCH_MAX_SECS as f64 {
            // Round to whole microseconds: an f64 holds no more precision than that here.
            let micros = (secs * 1e6).round() as i64;
            return Some(micros * 1_000);
        }
        unit_per_sec *= 1000.0;
    }
    None
}

fn is_candidate_boundary(prev: u8) -> bool {
    prev.is_ascii_whitespace()
        || matches!(
            prev,
            b'[' | b'(' | b'{' | b'<' | b'>' | b'"' | b'\'' | b'=' | b',' | b'|'
        )
}

/// Tries every calendar format at `start`; `None` when none matches there. `first_token` admits
/// the forms that look like something else elsewhere in a line.
fn parse_wall_time_at(b: &[u8], start: usize, first_token: bool) -> Option<(WallTime, usize)> {
    let first = *b.get(start)?;
    if first.is_ascii_digit() {
        parse_iso_like(b, start)
            .or_else(|| parse_dashed_dotted(b, start))
            .or_else(|| parse_compact_dash(b, start))
            .or_else(|| parse_slash_short(b, start))
            .or_else(|| parse_common_log(b, start))
            .or_else(|| parse_month_day(b, start))
            .or_else(|| {
                // `yyMMdd HHmmss` looks like two numbers: only where numbers may be timestamps.
                first_token.then(|| parse_hdfs(b, start)).flatten()
            })
    } else if first.is_ascii_alphabetic() {
        parse_month_name(b, start).or_else(|| {
            // `I0312 ...` is a klog header only at the start of a line.
            first_token.then(|| parse_klog(b, start)).flatten()
        })
    } else {
        None
    }
}

/// `yyyy-MM-dd[T ]HH:mm:ss[.,frac][zone]`, also with `/` between the date parts.
fn parse_iso_like(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let (year, month, day, i) = parse_ymd(b, start)?;
    if !matches!(b.get(i), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (mut wall, i) = with_time(Year::Given(year), month, day, b, i + 1, b".,")?;
    let (offset_secs, i) = parse_zone(b, i);
    wall.offset_secs = offset_secs;
    Some((wall, i))
}

/// `HH:mm:ss` at `time_at` and an optional fraction after one of `separators`, on a date read
/// before it; no zone.
fn with_time(
    year: Year,
    month: u32,
    day: u32,
    b: &[u8],
    time_at: usize,
    separators: &[u8],
) -> Option<(WallTime, usize)> {
    let (hour, minute, second, i) = parse_hms(b, time_at)?;
    let (nanos, end) = parse_fraction(b, i, separators);
    Some((
        WallTime::zoneless(year, (month, day), (hour, minute, second), nanos),
        end,
    ))
}

/// `yyyy-MM-dd` or `yyyy/MM/dd`; returns the date and the offset past it.
fn parse_ymd(b: &[u8], i: usize) -> Option<(i64, u32, u32, usize)> {
    let year = digits(b, i, 4)?;
    let sep = *b.get(i + 4)?;
    if sep != b'-' && sep != b'/' {
        return None;
    }
    let month = digits(b, i + 5, 2)?;
    if b.get(i + 7) != Some(&sep) {
        return None;
    }
    let day = digits(b, i + 8, 2)?;
    Some((i64::from(year), month, day, i + 10))
}

/// `yyyy-MM-dd-HH.mm.ss[.ffffff]` (DB2, BGL).
fn parse_dashed_dotted(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let (year, month, day, i) = parse_ymd(b, start)?;
    if b.get(i) != Some(&b'-') || b.get(i + 3) != Some(&b'.') || b.get(i + 6) != Some(&b'.') {
        return None;
    }
    let hour = digits(b, i + 1, 2)?;
    let minute = digits(b, i + 4, 2)?;
    let second = digits(b, i + 7, 2)?;
    let (nanos, end) = parse_fraction(b, i + 9, b".");
    let wall = WallTime::zoneless(
        Year::Given(year),
        (month, day),
        (hour, minute, second),
        nanos,
    );
    Some((wall, end))
}

/// `yyyyMMdd-HH:mm:ss:SSS` (fraction optional, after `:` or `.`).
fn parse_compact_dash(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let year = digits(b, start, 4)?;
    let month = digits(b, start + 4, 2)?;
    let day = digits(b, start + 6, 2)?;
    if b.get(start + 8) != Some(&b'-') {
        return None;
    }
    with_time(
        Year::Given(i64::from(year)),
        month,
        day,
        b,
        start + 9,
        b":.",
    )
}

/// `yy/MM/dd HH:mm:ss[.,frac]`.
fn parse_slash_short(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let year = digits(b, start, 2)?;
    if b.get(start + 2) != Some(&b'/') || b.get(start + 5) != Some(&b'/') {
        return None;
    }
    let month = digits(b, start + 3, 2)?;
    let day = digits(b, start + 6, 2)?;
    if b.get(start + 8) != Some(&b' ') {
        return None;
    }
    with_time(
        Year::Given(two_digit_year(year)),
        month,
        day,
        b,
        start + 9,
        b".,",
    )
}

/// `MM-dd HH:mm:ss[.frac]` (Android logcat) or `MM.dd HH:mm:ss` (Proxifier): no year, resolved
/// like syslog dates.
fn parse_month_day(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let month = digits(b, start, 2)?;
    if !matches!(b.get(start + 2), Some(b'-' | b'.')) {
        return None;
    }
    let day = digits(b, start + 3, 2)?;
    if b.get(start + 5) != Some(&b' ') {
        return None;
    }
    with_time(Year::Missing, month, day, b, start + 6, b".,")
}

/// Whether the line starts with a klog header (see [`parse_klog`]).
pub(crate) fn starts_with_klog_header(line: &[u8]) -> bool {
    parse_klog(line, 0).is_some()
}

/// The klog (Kubernetes, glog) header `Lmmdd HH:mm:ss.uuuuuu`, `L` one of `IWEF`: no year,
/// resolved like syslog dates.
fn parse_klog(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    if !matches!(b.get(start), Some(b'I' | b'W' | b'E' | b'F')) {
        return None;
    }
    let month = digits(b, start + 1, 2)?;
    let day = digits(b, start + 3, 2)?;
    if b.get(start + 5) != Some(&b' ') {
        return None;
    }
    with_time(Year::Missing, month, day, b, start + 6, b".")
}

/// `yyMMdd HHmmss` as HDFS writes it; both numbers must end at a non-digit.
fn parse_hdfs(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let year = digits(b, start, 2)?;
    let month = digits(b, start + 2, 2)?;
    let day = digits(b, start + 4, 2)?;
    if b.get(start + 6) != Some(&b' ') {
        return None;
    }
    let hour = digits(b, start + 7, 2)?;
    let minute = digits(b, start + 9, 2)?;
    let second = digits(b, start + 11, 2)?;
    let end = start + 13;
    if b.get(end).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let year = Year::Given(two_digit_year(year));
    Some((
        WallTime::zoneless(year, (month, day), (hour, minute, second), 0),
        end,
    ))
}

/// Apache common log format: `dd/MMM/yyyy:HH:mm:ss[ +hhmm]`.
fn parse_common_log(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let day = digits(b, start, 2)?;
    if b.get(start + 2) != Some(&b'/') || b.get(start + 6) != Some(&b'/') {
        return None;
    }
    let month = month_number(b.get(start + 3..start + 6)?)?;
    let year = digits(b, start + 7, 4)?;
    if b.get(start + 11) != Some(&b':') {
        return None;
    }
    let (mut wall, i) = with_time(
        Year::Given(i64::from(year)),
        month,
        day,
        b,
        start + 12,
        b".",
    )?;
    let (offset_secs, i) = if b.get(i) == Some(&b' ') && matches!(b.get(i + 1), Some(b'+' | b'-')) {
        match parse_zone(b, i + 1) {
            (Some(offset), end) => (Some(offset), end),
            (None, _) => (None, i),
        }
    } else {
        (None, i)
    };
    wall.offset_secs = offset_secs;
    Some((wall, i))
}

/// `[Www ]MMM d HH:mm:ss[.frac][ yyyy]`: syslog (no year) and Apache error log (weekday, year).
fn parse_month_name(b: &[u8], start: usize) -> Option<(WallTime, usize)> {
    let mut i = start;
    if b.get(i..i + 3).is_some_and(weekday_matches) && b.get(i + 3) == Some(&b' ') {
        i += 4;
    }
    let month = month_number(b.get(i..i + 3)?)?;
    i += 3;
    let spaces = count_while(b, i, |c| c == b' ');
    if spaces == 0 || spaces > 2 {
        return None;
    }
    i += spaces;
    let day_len = count_while(b, i, |c| c.is_ascii_digit());
    if day_len == 0 || day_len > 2 || b.get(i + day_len) != Some(&b' ') {
        return None;
    }
    let day = digits(b, i, day_len)?;
    let (mut wall, mut i) = with_time(Year::Missing, month, day, b, i + day_len + 1, b".,")?;
    if b.get(i) == Some(&b' ')
        && let Some(y) = digits(b, i + 1, 4)
        && !b.get(i + 5).is_some_and(u8::is_ascii_digit)
    {
        wall.year = Year::Given(i64::from(y));
        i += 5;
    }
    Some((wall, i))
}

/// An epoch number (with optional `.fraction` for seconds) that ends at a non-alphanumeric byte.
fn parse_epoch_at(b: &[u8], start: usize) -> Option<(i64, usize)> {
    let int_len = count_while(b, start, |c| c.is_ascii_digit());
    if !(9..=19).contains(&int_len) {
        return None;
    }
    let int_end = start + int_len;
    let value: i128 = std::str::from_utf8(&b[start..int_end]).ok()?.parse().ok()?;
    let (frac_nanos, end) = if b.get(int_end) == Some(&b'.') {
        let (nanos, end) = parse_fraction(b, int_end, b".");
        if end == int_end {
            (0, int_end)
        } else {
            (nanos, end)
        }
    } else {
        (0, int_end)
    };
    if b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let ns = epoch_ns_from_integer(value)?;
    // A fraction only makes sense on seconds.
    if frac_nanos != 0 && !(EPOCH_MIN_SECS..EPOCH_MAX_SECS).contains(&i64::try_from(value).ok()?) {
        return None;
    }
    Some((ns + i64::from(frac_nanos), end))
}

/// `HH:mm:ss`.
fn parse_hms(b: &[u8], i: usize) -> Option<(u32, u32, u32, usize)> {
    let hour = digits(b, i, 2)?;
    if b.get(i + 2) != Some(&b':') || b.get(i + 5) != Some(&b':') {
        return None;
    }
    let minute = digits(b, i + 3, 2)?;
    let second = digits(b, i + 6, 2)?;
    Some((hour, minute, second, i + 8))
}

/// An optional fraction after one of `separators`; digits past nanoseconds are consumed and ignored.
fn parse_fraction(b: &[u8], i: usize, separators: &[u8]) -> (u32, usize) {
    let Some(&sep) = b.get(i) else { return (0, i) };
    if !separators.contains(&sep) {
        return (0, i);
    }
    let len = count_while(b, i + 1, |c| c.is_ascii_digit());
    if len == 0 {
        return (0, i);
    }
    let mut nanos = 0u32;
    for pos in 0..9 {
        let digit = if pos < len {
            u32::from(b[i + 1 + pos] - b'0')
        } else {
            0
        };
        nanos = nanos * 10 + digit;
    }
    (nanos, i + 1 + len)
}

/// An optional zone right after a time: `Z`, `+hh:mm`, `+hhmm`, `+hh` (or `-`).
fn parse_zone(b: &[u8], i: usize) -> (Option<i32>, usize) {
    match b.get(i) {
        Some(b'Z' | b'z') => (Some(0), i + 1),
        Some(&sign @ (b'+' | b'-')) => {
            let Some(hours) = digits(b, i + 1, 2) else {
                return (None, i);
            };
            let (minutes, end) = if b.get(i + 3) == Some(&b':') {
                match digits(b, i + 4, 2) {
                    Some(m) => (m, i + 6),
                    None => return (None, i),
                }
            } else if let Some(m) = digits(b, i + 3, 2) {
                (m, i + 5)
            } else {
                (0, i + 3)
            };
            if hours > 23 || minutes > 59 || b.get(end).is_some_and(u8::is_ascii_digit) {
                return (None, i);
            }
            let secs = (hours * 3600 + minutes * 60) as i32;
            (Some(if sign == b'-' { -secs } else { secs }), end)
        }
        _ => (None, i),
    }
}

/// Converts a wall time to UTC nanoseconds; `None` for impossible dates or out-of-range years.
fn resolve(wall: WallTime, opts: &ParseOptions) -> Option<i64> {
    if !(1..=12).contains(&wall.month)
        || wall.day == 0
        || wall.hour > 23
        || wall.minute > 59
        || wall.second > 60
    {
        return None;
    }
    let offset = wall.offset_secs.unwrap_or(opts.default_offset_secs);
    match wall.year {
        Year::Given(year) => to_utc_ns(year, &wall, offset),
        Year::Missing => {
            let this_year = year_of(opts.now_ns, offset);
            let latest_ok = opts
                .now_ns
                .saturating_add(SYSLOG_FUTURE_TOLERANCE_SECS * NANOS_PER_SEC);
            match to_utc_ns(this_year, &wall, offset) {
                Some(ns) if ns <= latest_ok => Some(ns),
                _ => to_utc_ns(this_year - 1, &wall, offset),
            }
        }
    }
}

fn to_utc_ns(year: i64, wall: &WallTime, offset_secs: i32) -> Option<i64> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) || wall.day > days_in_month(year, wall.month) {
        return None;
    }
    let days = days_from_civil(year, wall.month, wall.day);
    let secs = days * SECS_PER_DAY + i64::from(wall.hour * 3600 + wall.minute * 60 + wall.second)
        - i64::from(offset_secs);
    secs.checked_mul(NANOS_PER_SEC)?
        .checked_add(i64::from(wall.nanos))
}

fn two_digit_year(yy: u32) -> i64 {
    // POSIX strptime pivot: 69–99 are 1900s, 00–68 are 2000s.
    i64::from(if yy < 69 { 2000 + yy } else { 1900 + yy })
}

/// Exactly `n` ASCII digits at `i` as a number.
fn digits(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let slice = b.get(i..i + n)?;
    let mut value = 0u32;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(c - b'0');
    }
    Some(value)
}

fn count_while(b: &[u8], i: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(i..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| pred(c)).count())
}

fn month_number(word: &[u8]) -> Option<u32> {
    let lower = [
        word[0].to_ascii_lowercase(),
        word[1].to_ascii_lowercase(),
        word[2].to_ascii_lowercase(),
    ];
    MONTHS
        .iter()
        .position(|m| **m == lower)
        .map(|idx| idx as u32 + 1)
}

fn weekday_matches(word: &[u8]) -> bool {
    let lower = [
        word[0].to_ascii_lowercase(),
        word[1].to_ascii_lowercase(),
        word[2].to_ascii_lowercase(),
    ];
    WEEKDAYS.iter().any(|w| **w == lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-02T03:04:05Z.
    const NS: i64 = 1_704_164_645_000_000_000;

    fn opts() -> ParseOptions {
        ParseOptions::utc_at(NS)
    }

    #[test]
    fn whole_strings() {
        for text in [
            "2024-01-02T03:04:05Z",
            " 2024-01-02T04:04:05+01:00 ",
            "2024-01-02t03:04:05z",
            "2024-01-02 03:04:05",
            "2024-01-02 03:04:05.000000",
            "2024/01/02 03:04:05",
            "20240102-03:04:05:000",
            "24/01/02 03:04:05",
            "240102 030405",
            "02/Jan/2024:03:04:05 +0000",
            "Tue Jan 02 03:04:05 2024",
            "Jan  2 03:04:05",
            "1704164645",
            "1704164645000",
        ] {
            assert_eq!(parse_timestamp_str(text, &opts()), Some(NS), "{text:?}");
        }
        for text in [
            "",
            "2024-01-02T03:04:05Z trailing",
            "yesterday",
            "12345",
            "2024-01-02T",
        ] {
            assert_eq!(parse_timestamp_str(text, &opts()), None, "{text:?}");
        }
    }

    #[test]
    fn scan_reports_the_end_offset() {
        let line = b"[2024-01-02 03:04:05,123] x";
        assert_eq!(
            scan_line_timestamp(line, &opts()),
            Some((NS + 123_000_000, 24))
        );
    }

    #[test]
    fn fractions_and_zones() {
        let ns = |text: &str| parse_timestamp_str(text, &opts());
        assert_eq!(
            ns("2024-01-02T03:04:05.1234567891Z"),
            Some(NS + 123_456_789)
        );
        assert_eq!(ns("2024-01-02T05:04:05+02"), Some(NS));
        assert_eq!(ns("2024-01-02T01:04:05-0200"), Some(NS));
        assert_eq!(ns("2024-01-02T03:04:05+25:00"), None);
        assert_eq!(
            ns("1677-01-01T00:00:00Z"),
            None,
            "before the i64 nanosecond range"
        );
        assert_eq!(
            ns("9999-01-01T00:00:00Z"),
            None,
            "after the i64 nanosecond range"
        );
    }

    #[test]
    fn epoch_by_magnitude() {
        assert_eq!(epoch_ns_from_integer(1_704_164_645), Some(NS));
        assert_eq!(epoch_ns_from_integer(1_704_164_645_000), Some(NS));
        assert_eq!(epoch_ns_from_integer(1_704_164_645_000_000), Some(NS));
        assert_eq!(epoch_ns_from_integer(i128::from(NS)), Some(NS));
        assert_eq!(epoch_ns_from_integer(946_684_799), None);
        assert_eq!(epoch_ns_from_integer(4_102_444_800), None);
        assert_eq!(epoch_ns_from_integer(-1_704_164_645), None);
        assert_eq!(epoch_ns_from_float(1_704_164_645.5), Some(NS + 500_000_000));
        assert_eq!(
            epoch_ns_from_float(1_704_164_645_500.0),
            Some(NS + 500_000_000)
        );
        assert_eq!(epoch_ns_from_float(f64::NAN), None);
        assert_eq!(epoch_ns_from_float(12.5), None);
    }
}
