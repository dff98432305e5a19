//! `silt inspect SEGMENT`: everything a segment file says about itself, and whether its
//! checksums hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use parquet::file::statistics::Statistics;
use serde_json::json;
use silt_storage::segment::shred::shredded_key;
use silt_storage::segment::{SegmentReader, footer_keys};

use super::{ReportFormat, format, runtime};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Path of the segment (`.parquet`) file.
    segment: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(inspect(args))
}

async fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let reader = SegmentReader::open_local(&args.segment)
        .await
        .with_context(|| format!("cannot inspect {}", args.segment.display()))?;
    let metadata = reader.metadata().clone();
    let footer = reader.footer().clone();
    let directory = reader.directory().clone();
    let file_size = reader.file().size();

    let (min_ts, max_ts) = time_range(&metadata);
    // Segments written before the key existed are sorted by (timestamp, _seq) alone.
    let row_order = metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == footer_keys::ROW_ORDER))
        .and_then(|k| k.value.clone())
        .unwrap_or_else(|| "timestamp,_seq".into());
    let row_groups: Vec<_> = metadata
        .row_groups()
        .iter()
        .map(|rg| json!({"rows": rg.num_rows(), "compressed_bytes": rg.compressed_size()}))
        .collect();
    let schema = parquet::arrow::parquet_to_arrow_schema(
        metadata.file_metadata().schema_descr(),
        metadata.file_metadata().key_value_metadata(),
    )?;
    // Per top-level column: its chunks' bytes, encodings and codecs over all row groups.
    let mut chunks: BTreeMap<&str, (i64, BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for rg in metadata.row_groups() {
        for chunk in rg.columns() {
            let top = chunk.column_descr().path().parts()[0].as_str();
            let entry = chunks.entry(top).or_default();
            entry.0 += chunk.compressed_size();
            for encoding in chunk.encodings() {
                entry.1.insert(encoding.to_string());
            }
            // The footer records no zstd level (parquet reads every one back as level 1).
            let codec = chunk.compression().to_string();
            let codec = codec.split('(').next().unwrap_or_default().to_owned();
            entry.2.insert(codec);
        }
    }
    let columns: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            let (bytes, encodings, codecs) = chunks.remove(f.name().as_str()).unwrap_or_default();
            json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "shredded_attribute": shredded_key(f.name()).is_some(),
                "bytes": bytes,
                "encodings": encodings,
                "compression": codecs,
            })
        })
        .collect();

    // Terms by kind, from the directory's field table (attributes counted together).
    let mut by_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for field in &directory.fields {
        let name = String::from_utf8_lossy(&field.field);
        let kind = if name.starts_with("attributes.") {
            "attributes".to_string()
        } else {
            name.into_owned()
        };
        let entry = by_kind.entry(kind).or_default();
        entry.0 += field.exact_terms;
        entry.1 += field.rare_terms;
    }
    let term_block_bytes: u64 = directory.blocks.iter().map(|b| b.length).sum();
    let fingerprint_bytes: u64 = directory.filters.iter().map(|b| b.length).sum();

    // Checksums: every term block and fingerprint partition (verify), every data stripe (by
    // decoding all rows), and the whole file's blake3.
    let mut checksum_error = reader.read(None, None).await.err().map(|e| e.to_string());
    let blake3 = match reader.verify().await {
        Ok(report) => Some(blake3::Hash::from(report.blake3).to_hex().to_string()),
        Err(e) => {
            checksum_error.get_or_insert(e.to_string());
            None
        }
    };

    let index_share = footer.index_length as f64 / file_size.max(1) as f64;
    let report = json!({
        "path": args.segment.display().to_string(),
        "tenant": footer.labels.tenant,
        "stream": footer.labels.stream,
        "partition": footer.labels.partition,
        "format_version": footer.format_version,
        "index_version": footer.index_version,
        "tokenizer_version": footer.tokenizer_version,
        "rows": reader.num_rows(),
        "bytes": file_size,
        "min_timestamp": min_ts.map(format::timestamp),
        "max_timestamp": max_ts.map(format::timestamp),
        "row_order": row_order,
        "row_groups": row_groups,
        "columns": columns,
        "index": {
            "offset": footer.index_offset,
            "bytes": footer.index_length,
            "share_of_file": index_share,
            "directory_bytes": footer.directory_length,
            "term_blocks": directory.blocks.len(),
            "term_block_bytes": term_block_bytes,
            "fingerprint_partitions": directory.filters.len(),
            "fingerprint_bytes": fingerprint_bytes,
            "terms": directory.terms,
            "fingerprinted_terms": directory.rare_terms,
            "rows_per_posting_block": directory.block_rows,
            "by_kind": by_kind
                .iter()
                .map(|(k, (exact, rare))| (k.clone(), json!({"terms": exact, "fingerprinted_terms": rare})))
                .collect::<serde_json::Map<_, _>>(),
        },
        "checksums": {
            "status": if checksum_error.is_none() { "ok" } else { "failed" },
            "error": checksum_error,
            "blake3": blake3,
            "index_blocks": directory.blocks.len() + directory.filters.len(),
            "data_stripes": directory.stripes.len(),
        },
    });

    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Text => print_text(&report),
    }
    Ok(if report["checksums"]["status"] == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn time_range(metadata: &parquet::file::metadata::ParquetMetaData) -> (Option<i64>, Option<i64>) {
    let mut min = None::<i64>;
    let mut max = None::<i64>;
    for rg in metadata.row_groups() {
        if let Some(Statistics::Int64(s)) = rg.column(0).statistics() {
            if let Some(&v) = s.min_opt() {
                min = Some(min.map_or(v, |m| m.min(v)));
            }
            if let Some(&v) = s.max_opt() {
                max = Some(max.map_or(v, |m| m.max(v)));
            }
        }
    }
    (min, max)
}

fn print_text(r: &serde_json::Value) {
    let s = |v: &serde_json::Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    println!("segment     {}", s(&r["path"]));
    println!(
        "labels      tenant {}  stream {}  partition {}",
        s(&r["tenant"]),
        s(&r["stream"]),
        s(&r["partition"])
    );
    println!(
        "format      v{} (index v{}, tokenizer v{})",
        r["format_version"], r["index_version"], r["tokenizer_version"]
    );
    println!("rows        {}", r["rows"]);
    println!(
        "size        {}",
        format::bytes(r["bytes"].as_u64().unwrap_or(0))
    );
    println!(
        "time        {} .. {}",
        s(&r["min_timestamp"]),
        s(&r["max_timestamp"])
    );
    println!("row order   {}", s(&r["row_order"]));
    let rgs = r["row_groups"].as_array().cloned().unwrap_or_default();
    println!("row groups  {}", rgs.len());
    for (i, rg) in rgs.iter().enumerate() {
        println!(
            "  #{i:<4} {:>9} rows  {:>10}",
            rg["rows"],
            format::bytes(rg["compressed_bytes"].as_u64().unwrap_or(0))
        );
    }
    println!("columns");
    let list = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    let columns = r["columns"].as_array().cloned().unwrap_or_default();
    let width = columns
        .iter()
        .map(|c| s(&c["name"]).len())
        .max()
        .unwrap_or(0);
    for c in columns {
        println!(
            "  {:<width$} {:>10}  {}  {} {}",
            s(&c["name"]),
            format::bytes(c["bytes"].as_u64().unwrap_or(0)),
            s(&c["type"]),
            list(&c["encodings"]),
            list(&c["compression"])
        );
    }
    let ix = &r["index"];
    let b = |v: &serde_json::Value| format::bytes(v.as_u64().unwrap_or(0));
    println!(
        "index       {} ({:.1}% of file), {} rows per posting block; directory {}",
        b(&ix["bytes"]),
        ix["share_of_file"].as_f64().unwrap_or(0.0) * 100.0,
        ix["rows_per_posting_block"],
        b(&ix["directory_bytes"]),
    );
    println!(
        "  dictionary   {} terms in {} blocks, {}",
        ix["terms"],
        ix["term_blocks"],
        b(&ix["term_block_bytes"])
    );
    println!(
        "  fingerprints {} terms in {} partitions, {}",
        ix["fingerprinted_terms"],
        ix["fingerprint_partitions"],
        b(&ix["fingerprint_bytes"])
    );
    if let Some(kinds) = ix["by_kind"].as_object() {
        for (kind, v) in kinds {
            println!(
                "  {kind:<20} {:>9} in dictionary {:>10} fingerprinted",
                v["terms"], v["fingerprinted_terms"]
            );
        }
    }
    let c = &r["checksums"];
    match c["error"].as_str() {
        None => println!(
            "checksums   ok: directory, {} index blocks, {} data stripes; blake3 {}",
            c["index_blocks"],
            c["data_stripes"],
            s(&c["blake3"])
        ),
        Some(e) => println!("checksums   FAILED: {e}"),
    }
}
