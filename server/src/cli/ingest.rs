//! `silt ingest`: reads files or stdin (decompressed, transcoded), parses them on a second thread
//! and writes them through the engine (past the WAL unless `--wal`); returns once every row is in
//! segments.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use silt_engine::parse::body::{looks_like_json_document, parse_json_events};
use silt_engine::parse::{InputFormat, LineParser, ParseOptions, detect_format};
use silt_engine::{DEFAULT_STREAM, DEFAULT_TENANT, Engine, EngineOptions};
use silt_storage::record::LogRecord;

use super::DataDirArgs;

/// Bytes read from an input at a time.
const READ_CHUNK_BYTES: usize = 8 << 20;
/// Rows per engine request (one WAL record each).
const REQUEST_ROWS: usize = 16 * 1024;
/// Rejected lines printed to stderr; the rest are counted (and all go to `--errors`).
const MAX_PRINTED_ERRORS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// A JSON document if the file starts like one, NDJSON if the first lines are JSON objects,
    /// plain text otherwise (decided per file).
    Auto,
    Ndjson,
    Text,
    /// A JSON document: an array of events, or objects one after another, pretty-printed or not
    /// (read whole, up to 1 GiB).
    Json,
}

/// Largest JSON document file `silt ingest` reads (it is parsed whole, unlike lines).
const MAX_JSON_DOCUMENT_BYTES: u64 = 1 << 30;

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// Tenant the rows belong to.
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Stream within the tenant.
    #[arg(long, default_value = DEFAULT_STREAM)]
    stream: String,
    /// Input format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Attach continuation lines (indented lines, stack traces) to the line before (text only).
    #[arg(long)]
    multiline: bool,
    /// Zone of timestamps written without one: `Z`/`UTC` or an offset such as `+02:00`, `-0530`.
    #[arg(long, value_name = "OFFSET", default_value = "Z", value_parser = silt_engine::parse::parse_utc_offset)]
    utc_offset: i32,
    /// Write every rejected line (file, line number, reason) to this file.
    #[arg(long, value_name = "FILE")]
    errors: Option<PathBuf>,
    /// Also write every batch to the write-ahead log, so that rows read before a failure (a full
    /// disk, a crash) are kept and flushed when the data directory is next opened. Without it
    /// the rows go straight to segments, ~12% less CPU; on a failure, the rows already in
    /// segments are a prefix of the input, and `silt ingest` says how many they are.
    #[arg(long)]
    wal: bool,
    /// Files to ingest (gzip or zstd compressed ones too); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

enum Message {
    Rows(Vec<LogRecord>),
    Rejected {
        file: String,
        line: u64,
        reason: String,
    },
    Progress {
        bytes: u64,
        lines: u64,
    },
}

/// Transparent huge pages off for this process. mimalloc asks for them (`MADV_HUGEPAGE`) and
/// gives freed memory back within 10 ms, so every memtable batch and flush buffer faulted in fresh
/// 2 MiB pages that the kernel zeroed whole: `clear_page_erms` was 13% of `silt ingest`'s CPU.
/// Off, 2 M benchmark lines took 1.2 s of system time instead of 2.3–3.2 s, and peak RSS was 665
/// instead of 780 MiB. Only here: with them off in the query benchmark too, its 21-hit needle
/// and per-minute count took ~28% longer.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "cannot turn transparent huge pages off");
    }
}

pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    disable_transparent_huge_pages();
    let total_bytes: u64 = args
        .files
        .iter()
        .filter(|f| f.as_os_str() != "-")
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    for file in args.files.iter().filter(|f| f.as_os_str() != "-") {
        File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    }
    let options = EngineOptions {
        unlogged: !args.wal,
        ..EngineOptions::new(args.data.dir())
    };
    let (engine, report) = Engine::open(options)
        .with_context(|| format!("cannot open data directory {}", args.data.dir().display()))?;
    if report.wal_rows_replayed > 0 {
        eprintln!(
            "recovered {} acknowledged rows from the write-ahead log",
            report.wal_rows_replayed
        );
    }
    let mut errors_out = match &args.errors {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };

    let progress = progress_bar(total_bytes);
    let started = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<anyhow::Result<Message>>(2);
    // Ingested requests go back to the parser thread to be dropped there: their strings were
    // allocated on it, and freeing them on this thread made the allocator hand every block back
    // across threads (~5% of `silt ingest`'s CPU).
    let (spent_tx, spent) = mpsc::channel::<Vec<LogRecord>>();
    let files = args.files.clone();
    let options = ParseOptions {
        multiline: args.multiline,
        default_offset_secs: args.utc_offset,
        ..ParseOptions::default()
    };
    let format = args.format;
    let reader = std::thread::Builder::new()
        .name("silt-parse".into())
        .spawn(move || {
            for file in files {
                if let Err(e) = parse_file(&file, format, options, &tx, &spent) {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        })
        .context("cannot start the parser thread")?;

    let (mut lines, mut rejected, mut rows_ingested, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    // `_seq` of the first row read, to count the rows in segments after a failure.
    let mut first_seq = None;
    // Without the WAL, what a failure leaves: a prefix of the rows read, in segments.
    let not_stored = |engine: &Engine, first_seq: Option<u64>, rows_ingested: u64| -> String {
        let stored = match (first_seq, engine.flushed_seq(&args.tenant)) {
            (Some(first), Some(flushed)) if flushed >= first => flushed - first + 1,
            _ => 0,
        };
        format!(
            "of the {rows_ingested} rows read, the first {stored} (in input order, rejected \
             lines not counted) are in segments; the others were not stored"
        )
    };
    for message in rx {
        match message? {
            Message::Rows(rows) => {
                let receipt = engine.ingest(&args.tenant, &args.stream, &rows);
                let receipt = match receipt {
                    Ok(receipt) => receipt,
                    Err(e) if args.wal => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "cannot ingest into tenant {} after {rows_ingested} rows (they are \
                             durable: in segments, or in the write-ahead log until the data \
                             directory is next opened and flushed; of the {} rows of the failed \
                             batch, all or none are kept; later rows were not stored)",
                            args.tenant,
                            rows.len()
                        )));
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "cannot ingest into tenant {}: {}",
                            args.tenant,
                            not_stored(&engine, first_seq, rows_ingested)
                        )));
                    }
                };
                first_seq.get_or_insert(receipt.first_seq);
                rows_ingested += rows.len() as u64;
                // The parser thread may be done: then the rows are dropped here.
                let _ = spent_tx.send(rows);
            }
            Message::Rejected { file, line, reason } => {
                rejected += 1;
                if rejected <= MAX_PRINTED_ERRORS {
                    progress.suspend(|| eprintln!("{file}:{line}: rejected: {reason}"));
                }
                if let Some(out) = errors_out.as_mut() {
                    writeln!(out, "{file}:{line}: {reason}")
                        .context("cannot write the errors file")?;
                }
            }
            Message::Progress { bytes: b, lines: l } => {
                bytes += b;
                lines += l;
                progress.set_position(bytes);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                progress.set_message(format!(
                    "{lines} lines, {:.1} MB/s",
                    bytes as f64 / 1e6 / secs
                ));
            }
        }
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the parser thread panicked"))?;
    progress.set_message("flushing to segments");
    if args.wal {
        engine.shutdown().with_context(|| {
            format!(
                "cannot flush to segments (all {rows_ingested} rows are durable, those not in \
                 segments in the write-ahead log, flushed when the data directory is next opened \
                 with room to spare: do not ingest them again)"
            )
        })?;
    } else {
        let flushed = engine.flush_all();
        if let Err(e) = flushed {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot flush to segments: {}",
                not_stored(&engine, first_seq, rows_ingested)
            )));
        }
        engine
            .shutdown()
            .context("cannot close the data directory")?;
    }
    progress.finish_and_clear();
    if let Some(mut out) = errors_out {
        out.flush().context("cannot write the errors file")?;
    }
    if rejected > MAX_PRINTED_ERRORS {
        eprintln!(
            "… and {} more rejected lines{}",
            rejected - MAX_PRINTED_ERRORS,
            if args.errors.is_some() {
                ""
            } else {
                " (see --errors FILE)"
            }
        );
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {rows_ingested} lines ({rejected} rejected) in {secs:.2} s, {:.0} lines/s",
        rows_ingested as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if total_bytes > 0 {
        ProgressBar::new(total_bytes)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
    )
    .expect("valid template");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Parses one input and sends its rows in requests of [`REQUEST_ROWS`].
fn parse_file(
    path: &PathBuf,
    format: FormatArg,
    options: ParseOptions,
    tx: &mpsc::SyncSender<anyhow::Result<Message>>,
    spent: &mpsc::Receiver<Vec<LogRecord>>,
) -> anyhow::Result<()> {
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {name}"))?)
    };
    let consumed = Rc::new(Cell::new(0u64));
    let mut input = decompressed(
        Counted {
            inner: raw,
            consumed: Rc::clone(&consumed),
        },
        &name,
    )?;
    let mut reported = 0u64;
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut first = true;
    let mut parser: Option<LineParser> = None;
    // The records of one chunk; kept between chunks so it is not regrown for each.
    let mut results = Vec::new();
    let mut requests = Requests::new(&name, tx, spent);
    loop {
        let n = read_full(&mut input, &mut buf).with_context(|| format!("cannot read {name}"))?;
        let chunk = &buf[..n];
        if first {
            first = false;
            let input_format = match format {
                FormatArg::Ndjson => InputFormat::Ndjson,
                FormatArg::Text => InputFormat::Text,
                FormatArg::Json => return parse_json_file(chunk, input, &name, options, tx, spent),
                FormatArg::Auto if looks_like_json_document(chunk) => {
                    return parse_json_file(chunk, input, &name, options, tx, spent).map_err(|e| {
                        anyhow::anyhow!(
                            "{e:#} (read as a JSON document because of how it starts; \
                             --format text or --format ndjson reads it as lines)"
                        )
                    });
                }
                FormatArg::Auto => detect_format(chunk),
            };
            parser = Some(LineParser::new(input_format, options));
        }
        if n == 0 {
            results = parser.take().expect("created on the first chunk").finish();
        } else {
            parser
                .as_mut()
                .expect("created on the first chunk")
                .feed_into(chunk, &mut results);
        }
        let lines = results.len() as u64;
        for result in results.drain(..) {
            if !requests.send(result.map_err(|e| (e.line, e.reason))) {
                return Ok(());
            }
        }
        // Input bytes as stored (compressed, if it is), to match the sizes the bar started from.
        let bytes = consumed.get() - reported;
        reported = consumed.get();
        let _ = tx.send(Ok(Message::Progress { bytes, lines }));
        if n == 0 {
            break;
        }
    }
    requests.finish();
    Ok(())
}

/// Parses a JSON document file whole (its first `head` bytes already read) and sends its events
/// like lines: rows in requests, rejections numbered by event (1-based).
fn parse_json_file(
    head: &[u8],
    rest: Box<dyn Read>,
    name: &str,
    options: ParseOptions,
    tx: &mpsc::SyncSender<anyhow::Result<Message>>,
    spent: &mpsc::Receiver<Vec<LogRecord>>,
) -> anyhow::Result<()> {
    let mut doc = head.to_vec();
    rest.take(MAX_JSON_DOCUMENT_BYTES + 1 - head.len() as u64)
        .read_to_end(&mut doc)
        .with_context(|| format!("cannot read {name}"))?;
    if doc.len() as u64 > MAX_JSON_DOCUMENT_BYTES {
        anyhow::bail!(
            "{name} is a JSON document over {} GiB; convert it to NDJSON (`jq -c '.[]'`) to ingest it as lines",
            MAX_JSON_DOCUMENT_BYTES >> 30
        );
    }
    let mut requests = Requests::new(name, tx, spent);
    let mut events = 0u64;
    let mut closed = false;
    let outcome = parse_json_events(&doc, &options, |index, event| {
        if !closed {
            events += 1;
            closed = !requests.send(event.map_err(|reason| (index + 1, reason)));
        }
    });
    requests.finish();
    let _ = tx.send(Ok(Message::Progress {
        bytes: doc.len() as u64,
        lines: events,
    }));
    outcome.map_err(|e| {
        let at = e
            .offset
            .map(|o| format!(" at byte {o}"))
            .unwrap_or_default();
        anyhow::anyhow!("{name}{at}: invalid JSON: {}", e.message)
    })
}

/// Rows of one input on their way to the engine: gathered into requests of [`REQUEST_ROWS`],
/// while each rejected line or event is sent as it comes.
struct Requests<'a> {
    file: &'a str,
    pending: Vec<LogRecord>,
    tx: &'a mpsc::SyncSender<anyhow::Result<Message>>,
    /// Requests the engine is done with, to drop on this thread (which allocated them).
    spent: &'a mpsc::Receiver<Vec<LogRecord>>,
}

impl<'a> Requests<'a> {
    fn new(
        file: &'a str,
        tx: &'a mpsc::SyncSender<anyhow::Result<Message>>,
        spent: &'a mpsc::Receiver<Vec<LogRecord>>,
    ) -> Self {
        Requests {
            file,
            pending: Vec::with_capacity(REQUEST_ROWS),
            tx,
            spent,
        }
    }

    /// An empty request: a spent one cleared (its rows dropped here), or a new one.
    fn next_request(&self) -> Vec<LogRecord> {
        let mut reused = None;
        for mut spent in self.spent.try_iter() {
            spent.clear();
            reused = Some(spent);
        }
        reused.unwrap_or_else(|| Vec::with_capacity(REQUEST_ROWS))
    }

    /// A record, or a rejection `(line, reason)`; false once the engine side has gone.
    fn send(&mut self, event: Result<LogRecord, (u64, String)>) -> bool {
        let message = match event {
            Ok(record) => {
                self.pending.push(record);
                if self.pending.len() < REQUEST_ROWS {
                    return true;
                }
                let next = self.next_request();
                let rows = std::mem::replace(&mut self.pending, next);
                Message::Rows(rows)
            }
            Err((line, reason)) => Message::Rejected {
                file: self.file.to_string(),
                line,
                reason,
            },
        };
        self.tx.send(Ok(message)).is_ok()
    }

    /// Sends the last, partial request.
    fn finish(self) {
        if !self.pending.is_empty() {
            let _ = self.tx.send(Ok(Message::Rows(self.pending)));
        }
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

/// The input decompressed when it starts with a gzip or zstd magic number (`.gz` from
/// logrotate, `.zst`), as it is otherwise; then transcoded to UTF-8 when it starts with a UTF-16
/// byte-order mark. Concatenated gzip members and zstd frames are read one after another.
fn decompressed<R: Read + 'static>(input: R, name: &str) -> anyhow::Result<Box<dyn Read>> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let magic = input
        .fill_buf()
        .with_context(|| format!("cannot read {name}"))?;
    let plain: Box<dyn Read> = match magic {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .with_context(|| format!("cannot read {name} as zstd"))?,
        ),
        _ => Box::new(input),
    };
    let mut plain = BufReader::with_capacity(1 << 16, plain);
    let bom = plain
        .fill_buf()
        .with_context(|| format!("cannot read {name}"))?;
    Ok(match bom {
        [0xff, 0xfe, ..] => Box::new(Utf16Reader::new(plain, u16::from_le_bytes)),
        [0xfe, 0xff, ..] => Box::new(Utf16Reader::new(plain, u16::from_be_bytes)),
        _ => Box::new(plain),
    })
}

/// UTF-16 input (with its byte-order mark, as Windows tools write text) read as UTF-8; unpaired
/// surrogates and a dangling odd byte become U+FFFD.
struct Utf16Reader<R> {
    inner: R,
    unit: fn([u8; 2]) -> u16,
    /// Input bytes not decoded yet: an odd byte, or a high surrogate waiting for its pair.
    pending: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    started: bool,
}

impl<R: BufRead> Utf16Reader<R> {
    fn new(inner: R, unit: fn([u8; 2]) -> u16) -> Self {
        Utf16Reader {
            inner,
            unit,
            pending: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            started: false,
        }
    }

    /// Decodes the next input bytes into `out`; false at the end of the input.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.out.clear();
        self.out_pos = 0;
        let bytes = self.inner.fill_buf()?;
        let at_end = bytes.is_empty();
        self.pending.extend_from_slice(bytes);
        let read = bytes.len();
        self.inner.consume(read);
        let mut units: Vec<u16> = self
            .pending
            .chunks_exact(2)
            .map(|pair| (self.unit)([pair[0], pair[1]]))
            .collect();
        let mut kept = self.pending.len() % 2;
        if !at_end && units.last().is_some_and(|u| (0xd800..0xdc00).contains(u)) {
            units.pop();
            kept += 2;
        }
        // The byte-order mark itself is not text.
        let skip = usize::from(!self.started && units.first() == Some(&0xfeff));
        self.started |= !units.is_empty();
        for c in char::decode_utf16(units.into_iter().skip(skip)) {
            let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
            self.out
                .extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
        }
        if at_end && kept > 0 {
            let mut replacement = [0u8; 4];
            let replacement = char::REPLACEMENT_CHARACTER.encode_utf8(&mut replacement);
            self.out.extend_from_slice(replacement.as_bytes());
            kept = 0;
        }
        self.pending.drain(..self.pending.len() - kept);
        Ok(!at_end || !self.out.is_empty())
    }
}

impl<R: BufRead> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.out_pos == self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Fills `buf` as far as the input allows; returns the bytes read (0 at the end).
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::{Read, Utf16Reader};

    #[test]
    fn utf16_input_reads_as_utf8() {
        let text = "2024-01-01 00:00:00 ERROR naïve 日本 🎉\r\nnext\r\n";
        for big_endian in [false, true] {
            let mut bytes: Vec<u8> = Vec::new();
            for unit in std::iter::once(0xfeff).chain(text.encode_utf16()) {
                bytes.extend(if big_endian {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                });
            }
            // A reader that hands out 3 bytes at a time splits units and surrogate pairs.
            let inner = std::io::BufReader::with_capacity(3, &bytes[..]);
            let unit = if big_endian {
                u16::from_be_bytes
            } else {
                u16::from_le_bytes
            };
            let mut out = String::new();
            Utf16Reader::new(inner, unit)
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, text, "big endian: {big_endian}");
        }
        // An unpaired surrogate and a dangling odd byte.
        let bytes = [0xff, 0xfe, 0x41, 0x00, 0x00, 0xd8, 0x42, 0x00, 0x43];
        let mut out = String::new();
        Utf16Reader::new(&bytes[..], u16::from_le_bytes)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "A\u{fffd}B\u{fffd}");
    }
}
