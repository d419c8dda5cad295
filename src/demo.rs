//! `slaflow demo`: the embedded generator drives the one engine at accelerated
//! time, and the API and dashboard serve the results on 127.0.0.1. No external
//! services.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::api::auth::fresh_token;
use crate::config::Config;
use crate::engine::Outputs;
use crate::event::DeadLetter;
use crate::event::rows::Corrupt;
use crate::event::{RawRecord, Topic};
use crate::eventtime::StreamId;
use crate::generate::{Generator, roughen, scenario_config};
use crate::ingest::{Event, Intake, IntakeError};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::run::Stop;
use crate::state::{Core, Shared};
use crate::time::{Millis, format_ms, wall_now};

const MINUTE: Millis = 60_000;
const MON: StreamId = StreamId {
    topic: Topic::Monitoring,
    partition: 0,
};
const TKT: StreamId = StreamId {
    topic: Topic::Tickets,
    partition: 0,
};

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    /// Listen address (loopback).
    pub listen: String,
    /// Simulated minutes per real second.
    pub speed: u32,
    /// Days of history generated before serving.
    pub history_days: u32,
    /// Generator seed.
    pub seed: u64,
}

/// Demo failures.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The generated config did not parse (a bug).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Socket or runtime.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A decoded batch broke the decoder's invariants (a bug).
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Events posted over HTTP, queued for the generator's streams.
#[derive(Default)]
struct QueueIntake(Mutex<Vec<Event>>, AtomicI64);

impl Intake for Arc<QueueIntake> {
    /// The simulated clock.
    fn now(&self) -> Millis {
        self.1.load(Ordering::Relaxed)
    }

    fn publish(&self, events: &[Event]) -> Result<(), IntakeError> {
        self.0
            .lock()
            .map_err(|_| IntakeError::msg("intake unavailable"))?
            .extend_from_slice(events);
        Ok(())
    }

    /// The demo has no dead-letter output; refused items are logged.
    fn dead_letter(&self, dead: &[DeadLetter]) -> Result<(), IntakeError> {
        for d in dead {
            tracing::warn!(reason = d.reason.as_str(), error = %d.error, source = %d.topic, "ingest item refused");
        }
        Ok(())
    }
}

/// Tokens of the demo, in clear (printed once) and the config they go into.
struct Tokens {
    admin: String,
    customers: Vec<(String, String)>,
}

/// Fresh tokens from the OS CSPRNG at every start.
fn make_tokens() -> Result<Tokens, DemoError> {
    let token = |prefix: &str| {
        fresh_token(prefix).map_err(|e| DemoError::Io(std::io::Error::other(e.to_string())))
    };
    Ok(Tokens {
        admin: token("admin")?,
        customers: vec![
            ("acme".into(), token("acme")?),
            ("globex".into(), token("globex")?),
        ],
    })
}

fn demo_config(tokens: &Tokens, listen: &str) -> String {
    let sha = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
    let mut s = scenario_config();
    s.push_str(&format!(
        "\n[api]\nlisten = \"{listen}\"\n[[api.tokens]]\nsha256 = \"{}\"\n",
        sha(&tokens.admin)
    ));
    for (c, t) in &tokens.customers {
        s.push_str(&format!(
            "[[api.tokens]]\nsha256 = \"{}\"\ncustomer = \"{c}\"\n",
            sha(t)
        ));
    }
    s
}

/// Feeds generated minutes into the shared core.
struct Feeder {
    generator: Generator,
    seed: u64,
    offsets: [i64; 2],
    intake: Arc<QueueIntake>,
}

impl Feeder {
    fn step(&mut self, shared: &Shared, minutes: u32) -> Result<(), Corrupt> {
        let started = Instant::now();
        let mut records = Vec::new();
        for _ in 0..minutes {
            records.extend(self.generator.minute());
        }
        let now = self.generator.now();
        self.intake.1.store(now, Ordering::Relaxed);
        self.seed = self.seed.wrapping_add(1);
        let records = roughen(records, self.seed, 20_000, 0.004, 0.001, 0.0);
        let mut lines: [Vec<String>; 2] = Default::default();
        for g in records {
            lines[g.topic.index()].push(g.line);
        }
        if let Ok(mut q) = self.intake.0.lock() {
            for e in q.drain(..) {
                let mut json = e.json;
                // Maintenance and exclusion requests join the monitoring
                // stream now (demo event time).
                if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&json)
                    && (v["kind"] == "maintenance" || v["kind"] == "exclusion")
                {
                    v["ts"] = serde_json::json!(now - 1);
                    json = v.to_string();
                }
                lines[e.topic.index()].push(json);
            }
        }
        let mut out = Outputs::default();
        let mut core = shared.core();
        for (stream, ls) in [(MON, &lines[0]), (TKT, &lines[1])] {
            let first = self.offsets[stream.topic.index()];
            let recs = RawRecord::numbered(ls, 0, first);
            self.offsets[stream.topic.index()] += recs.len() as i64;
            core.pipeline.ingest(stream, &recs, now, &mut out)?;
        }
        core.now = now;
        core.step(None, &mut out)?;
        core.observe(&shared.metrics, started.elapsed(), &out.incidents);
        shared.publish(&core, true);
        Ok(())
    }
}

/// Runs the demo until SIGTERM or SIGINT.
pub fn demo(args: DemoArgs) -> Result<(), DemoError> {
    let tokens = make_tokens()?;
    let text = demo_config(&tokens, &args.listen);
    let config = Arc::new(Config::parse(&text, std::path::Path::new("<demo>"))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&args.listen))
        .map_err(|e| {
            let hint = "try --listen 127.0.0.1:0";
            let message = format!("cannot listen on {}: {e} ({hint})", args.listen);
            std::io::Error::new(e.kind(), message)
        })?;
    let addr = listener.local_addr()?;
    let (shared, mut feeder) = load_history(config, &args)?;
    print_banner(&addr, &tokens, &args);
    let stop = Stop::default();
    let server = {
        let (shared, stop) = (shared.clone(), stop.clone());
        let grace = shared.config.engine.shutdown_grace.std();
        runtime.spawn(async move {
            let shutdown = async move {
                crate::run::wait_for_signal().await;
                stop.request();
                crate::run::exit_after(grace);
            };
            crate::api::serve(listener, shared, shutdown).await
        })
    };
    run_clock(&mut feeder, &shared, &stop, args.speed)?;
    println!("slaflow demo: stopping");
    match runtime.block_on(server) {
        Ok(r) => r?,
        Err(e) => return Err(DemoError::Io(std::io::Error::other(e))),
    }
    Ok(())
}

/// The engine with `history_days` of generated traffic up to now, and the
/// feeder that continues it.
fn load_history(config: Arc<Config>, args: &DemoArgs) -> Result<(Arc<Shared>, Feeder), DemoError> {
    let topics = ["monitoring.events".into(), "tickets.events".into()];
    let mut pipeline = Pipeline::new(config.clone(), topics);
    pipeline.eventtime_mut().add_stream(MON, 0);
    pipeline.eventtime_mut().add_stream(TKT, 0);
    let intake = Arc::new(QueueIntake::default());
    let core = Core::new(pipeline);
    let mut shared = Shared::new(config, core, Box::new(intake.clone()));
    shared.metrics = Metrics::embedded();
    let shared = Arc::new(shared);
    let start = (wall_now() / MINUTE - i64::from(args.history_days) * 1440) * MINUTE;
    let mut feeder = Feeder {
        generator: Generator::new(args.seed, start, 3.0),
        seed: args.seed,
        offsets: [0, 0],
        intake,
    };
    println!(
        "slaflow demo: generating {} of history…",
        crate::text::count(args.history_days, "day")
    );
    let t0 = Instant::now();
    while feeder.generator.now() < wall_now() {
        feeder.step(&shared, 60)?;
    }
    shared.set_ready(true);
    let core = shared.core();
    shared.publish_now(&core);
    println!(
        "  {} in {:.1}s, {} ({} open)",
        crate::text::count(core.pipeline.counts().read, "record"),
        t0.elapsed().as_secs_f64(),
        crate::text::count(core.incidents.len() as u64, "incident"),
        core.open.len()
    );
    drop(core);
    Ok((shared, feeder))
}

fn print_banner(addr: &std::net::SocketAddr, tokens: &Tokens, args: &DemoArgs) {
    if !addr.ip().is_loopback() {
        eprintln!(
            "slaflow demo: warning: listening on {addr}, reachable from other machines, and the admin token below is printed in clear; use --listen 127.0.0.1:0 to stay on this machine"
        );
    }
    // An unspecified address (0.0.0.0, ::) is not one a browser can open.
    let shown = match addr.ip().is_unspecified() {
        true if addr.is_ipv4() => std::net::SocketAddr::from(([127, 0, 0, 1], addr.port())),
        true => std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        false => *addr,
    };
    let addr = &shown;
    println!();
    println!("  Dashboard:  http://{addr}/#token={}", tokens.admin);
    println!("  API docs:   http://{addr}/openapi.json");
    println!("  Tokens:     admin  {}", tokens.admin);
    for (c, t) in &tokens.customers {
        println!("              {c:<6} {t}");
    }
    println!(
        "  Try:        curl -H 'Authorization: Bearer {}' 'http://{addr}/v1/reports/sla?customer=acme'",
        tokens.admin
    );
    println!();
    println!(
        "  Time runs at {}× ({} simulated minutes per second). Ctrl-C stops.",
        args.speed * 60,
        args.speed
    );
}

/// Simulated time at `speed` minutes per second until `stop`, with a status
/// line every 10 s.
fn run_clock(feeder: &mut Feeder, shared: &Shared, stop: &Stop, speed: u32) -> Result<(), Corrupt> {
    let tick = Duration::from_millis(100);
    let per_tick = speed.div_ceil(10).max(1);
    let mut last_report = Instant::now();
    while !stop.requested() {
        let t = Instant::now();
        feeder.step(shared, per_tick)?;
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let core = shared.core();
            println!(
                "  event time {}  records {}  incidents {} ({} open)",
                format_ms(core.now),
                core.pipeline.counts().read,
                core.incidents.len(),
                core.open.len()
            );
        }
        if stop.wait(tick.saturating_sub(t.elapsed())) {
            break;
        }
    }
    Ok(())
}
