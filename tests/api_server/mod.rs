//! The API test server: a day of generated traffic behind the HTTP API on an
//! ephemeral loopback port, with one token per role, and request helpers.
//! Shared by `api_http.rs` (behaviour) and `api_limits.rs` (limits with
//! timing and memory bounds, in a process of their own).
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use slaflow::config::Config;
use slaflow::event::DeadLetter;
use slaflow::generate::{Generator, roughen, run_through, scenario_config};
use slaflow::ingest::{Event, Intake, IntakeError};
use slaflow::state::{Core, Shared};

pub const ADMIN: &str = "admin-token-for-tests";
pub const ACME: &str = "acme-token-for-tests";
pub const GLOBEX: &str = "globex-token-for-tests";
/// An ingest token limited to acme's services and tickets.
pub const INGEST_ACME: &str = "ingest-acme-token-for-tests";

struct Recorder(Arc<Mutex<Vec<String>>>);

impl Intake for Recorder {
    fn publish(&self, events: &[Event]) -> Result<(), IntakeError> {
        let mut submitted = (self.0.lock()).map_err(|e| IntakeError::msg(e.to_string()))?;
        submitted.extend(events.iter().map(|e| e.json.clone()));
        Ok(())
    }
    fn dead_letter(&self, _: &[DeadLetter]) -> Result<(), IntakeError> {
        Ok(())
    }
}

pub struct Server {
    pub base: String,
    pub shared: Arc<Shared>,
    pub submitted: Arc<Mutex<Vec<String>>>,
}

/// `[ingest.github]` of the test server (contract section 15).
pub const GITHUB: &str = "\n[ingest.github]\nsecret = \"it's a secret to everybody\"\nenvironments = [\"production\"]\n[ingest.github.repositories]\n\"octo-org/shop\" = \"shop\"\n";

/// One server for all tests of a test binary: a day of generated traffic behind the API.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let sha = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
        let text = format!(
            "{}{GITHUB}\n[api]\nlisten = \"127.0.0.1:0\"\nquery_memory = \"64 MiB\"\n[[api.tokens]]\nsha256 = \"{}\"\n[[api.tokens]]\nsha256 = \"{}\"\ncustomer = \"acme\"\n[[api.tokens]]\nsha256 = \"{}\"\ncustomer = \"globex\"\n[[api.tokens]]\nsha256 = \"{}\"\nscope = \"ingest\"\ncustomers = [\"acme\"]\n",
            scenario_config(),
            sha(ADMIN),
            sha(ACME),
            sha(GLOBEX),
            sha(INGEST_ACME)
        );
        let config = Arc::new(Config::parse(&text, std::path::Path::new("api.toml")).expect("config"));
        let mut g = Generator::new(3, 1_793_577_600_000, 5.0);
        let evs: Vec<_> = (0..1440).flat_map(|_| g.minute()).collect();
        let evs = roughen(evs, 3, 20_000, 0.01, 0.002, 0.0);
        let (p, out) = run_through(&config, &evs, slaflow::time::wall_now()).expect("decoded rows");
        let mut core = Core::new(p);
        core.now = 1_793_577_600_000 + 86_400_000;
        core.record(&out.incidents);
        let submitted = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared::new(config, core, Box::new(Recorder(submitted.clone()))));
        shared.set_ready(true);
        {
            let core = shared.core();
            core.observe(&shared.metrics, Duration::from_millis(3), &core.incidents);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                slaflow::api::serve(listener, s2, std::future::pending()).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("address");
        Server { base: format!("http://{addr}"), shared, submitted }
    })
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// (status, body) of a GET.
pub fn get(path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = agent().get(format!("{}{path}", server().base));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    match req.call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

pub fn post(path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut req = agent()
        .post(format!("{}{path}", server().base))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    match req.send(body) {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => panic!("POST {path}: {e}"),
    }
}

/// A POST over a plain socket: the whole body is offered even if the server
/// answers early (a 413 before the body is read), and may be any bytes.
pub fn post_raw(path: &str, token: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = server().base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The server may close as soon as it has answered: write errors are expected.
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.write_all(body));
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to POST {path}: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
