//! The core benchmark against the test world; prints the `## Core` section of
//! docs/benchmarks.md (markdown) on stdout. Run it through `scripts/bench-core`, which starts the
//! world when needed and puts the section in place:
//!
//! ```sh
//! . test/world/.run/env && cargo run --release -p withawsrole-core --example bench
//! ```
//!
//! 1. N = 1, 16, 64, 256 threads ask for one purpose at once: Vault STS calls as counted by the
//!    world's front, with the broker (cache + single-flight) and naively (`fetch_uncached`: every
//!    request goes to Vault), in the same run.
//! 2. Cache-hit latency (p50/p99/p99.9) on one thread, and hits/s with 1 and 8 threads.
//! 3. A cold fetch (cache miss, warm connection) against a raw HTTP POST to the same endpoint with
//!    the same token and body (reqwest, keep-alive), interleaved pairs.

use std::fmt::Write as _;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use withawsrole_core::clock::rfc3339_utc;
use withawsrole_core::{BrokerOptions, CredentialBroker};

const CONCURRENCY: &[usize] = &[1, 16, 64, 256];
const HIT_CALLS: usize = 200_000;
const COLD_PAIRS: usize = 60;
const CANNED_PAIRS: usize = 300;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("bench: {name} is not set: run scripts/bench-core, or source a world's .run/env");
        std::process::exit(2)
    })
}

/// The world's control API (counters, reset), through a small blocking reqwest wrapper.
struct Control {
    url: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Control {
    fn call(&self, method: reqwest::Method, sub: &str) -> Value {
        self.send(method, sub, String::new())
    }
    fn send(&self, method: reqwest::Method, sub: &str, body: String) -> Value {
        self.rt.block_on(async {
            let answer = self
                .http
                .request(method, format!("{}{sub}", self.url))
                .body(body)
                .send()
                .await
                .expect("the world's control API answers");
            let body = answer.bytes().await.unwrap_or_default();
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        })
    }
    fn reset(&self) {
        self.call(reqwest::Method::POST, "/reset");
    }
    fn sts_total(&self) -> u64 {
        self.call(reqwest::Method::GET, "/counters")["sts_total"]
            .as_u64()
            .unwrap_or(0)
    }
}

fn request(token: &str, session: &str) -> Vec<(String, String)> {
    [
        ("purpose", "ecr-push"),
        ("session_name", session),
        ("vault_token", token),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A broker whose controller setting VAULT_ADDR is `addr` (the login is the request's token).
fn broker(addr: &str) -> CredentialBroker {
    let addr = addr.to_owned();
    let settings = move |k: &str| (k == "VAULT_ADDR").then(|| addr.clone());
    let options = BrokerOptions::with_env(Arc::new(settings)).expect("options");
    CredentialBroker::new(options).expect("broker")
}

/// N threads released at once, each asking once; (Vault STS calls seen by the front, wall time).
fn burst(control: &Control, n: usize, ask: Arc<dyn Fn() + Send + Sync>) -> (u64, Duration) {
    control.reset();
    let barrier = Arc::new(Barrier::new(n + 1));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, ask) = (barrier.clone(), ask.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ask();
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for t in threads {
        t.join().expect("a bench thread panicked");
    }
    let took = started.elapsed();
    (control.sts_total(), took)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn signed_ms(seconds: f64) -> String {
    format!("{:+.2} ms", seconds * 1e3)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn main() {
    let addr = env("VAULT_ADDR");
    let token = env("VAULT_TOKEN");
    let control = Control {
        url: env("WORLD_CONTROL_URL"),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        http: reqwest::Client::new(),
    };
    control.reset();
    let mut out = String::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(out, "## Core\n");
    let _ = writeln!(
        out,
        "`scripts/bench-core` (`cargo run --release -p withawsrole-core --example bench`, the \
         release profile of the shipped library) against the embedded test world (OpenBao + moto \
         + the AWS-engine front, all on this machine), {}, on {cpus} CPU(s): {}. Rust only, no \
         JNI (see the JNI section for calls through Java).\n",
        rfc3339_utc(SystemTime::now()),
        cpu_model()
    );

    // ---- 1. single-flight ----------------------------------------------------------------
    let _ = writeln!(
        out,
        "### N concurrent requests for one purpose → Vault STS calls\n\n\
         N threads released together each ask for `ecr-push` once; Vault calls are counted by \
         the world's front. Broker: a fresh broker (empty cache) per row. Naive: the same broker's \
         `fetch_uncached` (no cache, no single-flight), i.e. what N independent callers would do; \
         both at most {} Vault calls in flight. All N share one cache key (one STS session name): \
         on a Jenkins controller that is one build's blocks, never N builds, which each have \
         their own (see Load: builds at once).\n",
        withawsrole_core::broker::DEFAULT_MAX_CONCURRENT_VAULT_CALLS
    );
    let _ = writeln!(
        out,
        "| N | broker: Vault calls | broker: wall time | naive: Vault calls | naive: wall time |\n|---:|---:|---:|---:|---:|"
    );
    for &n in CONCURRENCY {
        let shared = Arc::new(broker(&addr));
        let req = Arc::new(request(&token, &format!("bench-flight-{n}")));
        let (b, req_b) = (shared.clone(), req.clone());
        let (calls, took) = burst(
            &control,
            n,
            Arc::new(move || {
                b.credentials(&req_b).expect("credentials");
            }),
        );
        let naive = Arc::new(broker(&addr));
        let req_n = Arc::new(request(&token, &format!("bench-naive-{n}")));
        let (naive_calls, naive_took) = burst(
            &control,
            n,
            Arc::new(move || {
                naive.fetch_uncached(&req_n).expect("credentials");
            }),
        );
        let _ = writeln!(
            out,
            "| {n} | {calls} | {} | {naive_calls} | {} |",
            ms(took),
            ms(naive_took)
        );
        eprintln!("bench: N={n}: broker {calls} call(s), naive {naive_calls}");
    }

    // ---- 2. cache hits -------------------------------------------------------------------
    let hot = Arc::new(broker(&addr));
    let req = Arc::new(request(&token, "bench-hit"));
    hot.credentials(&req).expect("credentials");
    for _ in 0..10_000 {
        hot.credentials(&req).expect("warm-up");
    }
    let mut samples = Vec::with_capacity(HIT_CALLS);
    for _ in 0..HIT_CALLS {
        let t = Instant::now();
        let issued = hot.credentials(&req).expect("hit");
        samples.push(t.elapsed());
        std::hint::black_box(issued);
    }
    samples.sort_unstable();
    let throughput = |threads: usize| {
        let per_thread = HIT_CALLS / threads;
        let barrier = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (hot, req, barrier) = (hot.clone(), req.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..per_thread {
                        std::hint::black_box(hot.credentials(&req).expect("hit"));
                    }
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        for h in handles {
            h.join().expect("a bench thread panicked");
        }
        (per_thread * threads) as f64 / started.elapsed().as_secs_f64()
    };
    let one = throughput(1);
    let eight = throughput(8);
    let _ = writeln!(
        out,
        "\n### Cache hit\n\n`credentials()` on a cached purpose (request pairs parsed and \
         validated, cache key built, shared credentials returned), {HIT_CALLS} timed calls on one \
         thread after 10 000 warm-up calls; then {HIT_CALLS} calls split over 1 and 8 threads.\n\n\
         | p50 | p99 | p99.9 | max | hits/s, 1 thread | hits/s, 8 threads |\n|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {} | {:.0} | {:.0} |",
        us(percentile(&samples, 0.50)),
        us(percentile(&samples, 0.99)),
        us(percentile(&samples, 0.999)),
        us(*samples.last().expect("samples")),
        one,
        eight
    );
    eprintln!("bench: cache hit p50 {}", us(percentile(&samples, 0.5)));

    // ---- 3. cold fetch versus a raw POST -------------------------------------------------
    let session = "bench-cold";
    let cold = broker(&addr);
    let cold_req = request(&token, session);
    cold.credentials(&cold_req).expect("credentials"); // connection pool warm
    let raw = reqwest::Client::new();
    let url = format!("{addr}/v1/aws/sts/ecr-push");
    // The body the broker sends for this request (vaultrs' struct; rustify leaves out unset
    // options and, for this struct, includes the role name).
    let body = json!({"name": "ecr-push", "role_session_name": session}).to_string();
    let post = || {
        control.rt.block_on(async {
            let answer = raw
                .post(&url)
                .header("X-Vault-Token", &token)
                .header("X-Vault-Request", "true")
                .header("Content-Type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("raw POST");
            assert!(answer.status().is_success(), "{}", answer.status());
            std::hint::black_box(answer.bytes().await.expect("body"));
        })
    };
    post(); // its connection warm too
    let pairs = |n: usize| {
        let (mut broker_times, mut raw_times) = (Vec::new(), Vec::new());
        for i in 0..n {
            // Alternate which goes first, so drift in the world's speed hits both alike.
            let mut run_broker = || {
                cold.clear_cache();
                let t = Instant::now();
                let issued = cold.credentials(&cold_req).expect("credentials");
                broker_times.push(t.elapsed());
                assert_eq!(issued.cache.as_str(), "miss");
            };
            let mut run_raw = || {
                let t = Instant::now();
                post();
                raw_times.push(t.elapsed());
            };
            if i % 2 == 0 {
                run_broker();
                run_raw();
            } else {
                run_raw();
                run_broker();
            }
        }
        broker_times.sort_unstable();
        raw_times.sort_unstable();
        (broker_times, raw_times)
    };
    let real = pairs(COLD_PAIRS);
    // The front answers a canned success at once (a "status 200" fault): no AssumeRole, no
    // OpenBao check, so what remains is the clients' own cost.
    control.send(
        reqwest::Method::POST,
        "/faults",
        json!({"path": "^aws/sts/ecr-push$", "status": 200, "body": {
            "request_id": "bench", "lease_id": "aws/sts/ecr-push/bench", "renewable": false,
            "lease_duration": 3600, "wrap_info": null, "warnings": null, "auth": null,
            "data": {"access_key": "bench-canned-key-id", "secret_key": "canned",
                     "session_token": "canned",
                     "arn": "arn:aws:sts::123456789012:assumed-role/jenkins-ecr-push-role/bench-cold"}}})
        .to_string(),
    );
    let canned = pairs(CANNED_PAIRS);
    control.reset();
    let row = |name: &str, (b, r): &(Vec<Duration>, Vec<Duration>)| {
        let diff = |p: f64| percentile(b, p).as_secs_f64() - percentile(r, p).as_secs_f64();
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            ms(percentile(b, 0.5)),
            ms(percentile(b, 0.9)),
            ms(percentile(r, 0.5)),
            ms(percentile(r, 0.9)),
            signed_ms(diff(0.5)),
            signed_ms(diff(0.9)),
        )
    };
    let _ = writeln!(
        out,
        "\n### Cold fetch versus a raw HTTP POST\n\nInterleaved pairs: a broker cache miss \
         (`clear_cache()` before each; parse, validate, single-flight, POST `aws/sts/ecr-push` \
         through vaultrs/rustify, read `lease_duration` and the keys) versus a raw reqwest POST \
         of the same body with the same token to the same URL, both on warm keep-alive \
         connections. Real: the front checks the token with OpenBao and calls moto's AssumeRole \
         ({COLD_PAIRS} pairs). Canned: the front answers a fixed success at once ({CANNED_PAIRS} \
         pairs), which leaves the clients' own cost.\n\n\
         | answer | broker p50 | broker p90 | raw p50 | raw p90 | difference p50 | difference p90 |\n\
         |---|---:|---:|---:|---:|---:|---:|\n{}\n{}",
        row("real (OpenBao + moto)", &real),
        row("canned (front only)", &canned),
    );
    let (b, r) = &canned;
    eprintln!(
        "bench: cold fetch p50 over raw POST (canned): {}",
        signed_ms(percentile(b, 0.5).as_secs_f64() - percentile(r, 0.5).as_secs_f64())
    );
    control.reset();
    print!("{out}");
}
