//! `slaflow replay`: drive the pipeline from NDJSON files and write the outputs.
//!
//! Files are read round-robin in fixed-size chunks so that all streams' watermarks
//! advance together (bounded buffering) and the run is deterministic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::engine::Outputs;
use crate::engine::incidents::Incident;
use crate::event::rows::Corrupt;
use crate::event::{DeadLetter, Topic};
use crate::eventtime::StreamId;
use crate::pipeline::{Counts, Pipeline};
use crate::report::{ReportError, Tables, capacity_report, sla_reports};
use crate::sink::file::{FileSinkError, NdjsonWriter, write_json};
use crate::source::ChunkSource;
use crate::source::Lines;
use crate::source::file::{FileSourceError, NdjsonFile};
use crate::time::Millis;

/// Lines read from each file per round.
pub const CHUNK_LINES: usize = 8192;

/// What a replay needs.
#[derive(Debug, Clone)]
pub struct ReplayArgs {
    /// Monitoring NDJSON files.
    pub monitoring: Vec<PathBuf>,
    /// Ticket NDJSON files.
    pub tickets: Vec<PathBuf>,
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// Report period start.
    pub from: Option<Millis>,
    /// Report period end; also the minimum final watermark.
    pub to: Option<Millis>,
    /// Processing clock of the `future` check (`--now`).
    pub now: Millis,
}

/// A replay failure.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input file.
    #[error(transparent)]
    Input(#[from] FileSourceError),
    /// An output file.
    #[error(transparent)]
    Output(#[from] FileSinkError),
    /// Report computation.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Arguments that cannot work.
    #[error("{0}")]
    Args(String),
    /// An output record could not be encoded (a bug).
    #[error("cannot encode an output record: {0}")]
    Encode(#[from] serde_json::Error),
    /// A decoded batch broke the decoder's invariants (a bug).
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Runs a replay and returns the final counts.
pub fn replay(config: Arc<Config>, args: &ReplayArgs) -> Result<Counts, ReplayError> {
    if let (Some(f), Some(t)) = (args.from, args.to)
        && f >= t
    {
        return Err(ReplayError::Args("--from must be before --to".into()));
    }
    // Every input is opened before any output is created, so a missing file fails cleanly.
    let mut files = open_inputs(&args.monitoring, &args.tickets)?;
    std::fs::create_dir_all(&args.out).map_err(|source| FileSinkError {
        path: args.out.clone(),
        source,
    })?;
    let mut dead_out = NdjsonWriter::create(&args.out.join("deadletter.ndjson"))?;
    let Replayed {
        pipeline,
        incidents,
    } = run(config, &mut files, args.to, args.now, &mut |d| {
        dead_out.write_dead_letters(d)
    })?;
    dead_out.close()?;
    let incident_lines: Result<Vec<String>, _> = incidents.iter().map(Incident::to_json).collect();
    write_ndjson(
        &args.out.join("incidents.ndjson"),
        incident_lines?.into_iter(),
    )?;
    let lines = pipeline.engine().tickets().lines();
    let lines: Result<Vec<String>, _> = lines.iter().map(serde_json::to_string).collect();
    write_ndjson(&args.out.join("tickets.ndjson"), lines?.into_iter())?;
    write_reports(&pipeline, &incidents, args)?;
    let counts = pipeline.counts().clone();
    write_json(&args.out.join("summary.json"), &counts)?;
    Ok(counts)
}

/// A replay's end state: the pipeline after every file, and every incident
/// action in `incidents.ndjson` order.
pub struct Replayed {
    /// The pipeline (engine, counts, event time).
    pub pipeline: Pipeline,
    /// Incident actions, sorted.
    pub incidents: Vec<Incident>,
}

/// Opens the inputs, each one stream: monitoring files first, then tickets.
pub fn open_inputs(
    monitoring: &[PathBuf],
    tickets: &[PathBuf],
) -> Result<Vec<NdjsonFile>, ReplayError> {
    if monitoring.is_empty() && tickets.is_empty() {
        return Err(ReplayError::Args(
            "no input files: give --monitoring and/or --tickets".into(),
        ));
    }
    let inputs = (monitoring.iter().map(|p| (Topic::Monitoring, p)))
        .chain(tickets.iter().map(|p| (Topic::Tickets, p)));
    let mut files = Vec::new();
    for (index, (topic, path)) in inputs.enumerate() {
        let partition = index as i32;
        files.push(NdjsonFile::open(path, StreamId { topic, partition })?);
    }
    Ok(files)
}

/// Reads every stream (file or partition) to its end through a fresh pipeline,
/// chunk by chunk and stream by stream, and finishes at `to` at least; dead
/// letters go to `dead`.
pub fn run<S: ChunkSource>(
    config: Arc<Config>,
    files: &mut [S],
    to: Option<Millis>,
    now: Millis,
    dead: &mut dyn FnMut(&[DeadLetter]) -> Result<(), FileSinkError>,
) -> Result<Replayed, ReplayError> {
    let kafka = config.kafka_or_default();
    let mut pipeline = Pipeline::new(config, [kafka.monitoring_topic, kafka.tickets_topic]);
    for f in files.iter() {
        pipeline.eventtime_mut().add_stream(f.stream(), 0);
    }
    let mut lines = Lines::new();
    let mut out = Outputs::default();
    let mut incidents = Vec::new();
    let mut drain = |out: &mut Outputs, incidents: &mut Vec<Incident>| {
        dead(&out.dead_letters)?;
        out.dead_letters.clear();
        incidents.append(&mut out.incidents);
        Ok::<_, FileSinkError>(())
    };
    while files.iter().any(|f| !f.is_done()) {
        for f in files.iter_mut().filter(|f| !f.is_done()) {
            f.read_chunk(CHUNK_LINES, &mut lines)?;
            let block = lines.take_block();
            let recs = block.records(f.stream().partition);
            pipeline.ingest_in(f.stream(), &recs, Some(block.text()), now, &mut out)?;
            if f.is_done() {
                pipeline.eventtime_mut().finish_stream(f.stream());
            }
        }
        pipeline.advance(None, &mut out)?;
        drain(&mut out, &mut incidents)?;
    }
    pipeline.finish(to, &mut out)?;
    drain(&mut out, &mut incidents)?;
    incidents.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(Replayed {
        pipeline,
        incidents,
    })
}

fn write_ndjson(path: &Path, lines: impl Iterator<Item = String>) -> Result<(), ReplayError> {
    let mut w = NdjsonWriter::create(path)?;
    for line in lines {
        w.write_line(&line)?;
    }
    Ok(w.close()?)
}

/// `report-<customer>.json` and `capacity-<customer>.json` for the period
/// (default: the lowest `ts` read up to the final watermark).
fn write_reports(
    pipeline: &Pipeline,
    incidents: &[Incident],
    args: &ReplayArgs,
) -> Result<(), ReplayError> {
    let to = args.to.unwrap_or(pipeline.eventtime().watermark());
    let from = args.from.or(pipeline.min_ts()).unwrap_or(to).min(to);
    let config = pipeline.config().clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| ReplayError::Args(format!("runtime: {e}")))?;
    let tables = Tables::for_sla_report(pipeline.engine())?;
    // The processing clock (`--now`, else the wall clock at start): with
    // `--now` a replay is byte for byte the same, `generated_at` included.
    let reports = runtime.block_on(sla_reports(&config, &tables, incidents, from, to, args.now))?;
    for r in &reports {
        write_json(&args.out.join(format!("report-{}.json", r.customer)), r)?;
        let cap = capacity_report(pipeline.engine(), incidents, &r.customer, from, to);
        let path = args.out.join(format!("capacity-{}.json", r.customer));
        write_json(&path, &cap)?;
    }
    Ok(())
}
