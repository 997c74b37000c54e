//! A bounded loopback load generator for `pm serve` (bench/serve.py runs
//! it): N clients, each on its own keep-alive HTTP/1.1 connection, send GET
//! requests (the paths given, in turn) until the request count or the time
//! limit is reached; prints one JSON line with the count, the statuses, the
//! rate and the latency percentiles.
//!
//! cargo run --release --example serve_load -- --address 127.0.0.1:8580 \
//!     --token T --clients 50 --requests 100000 --seconds 120 --path /api/v1/...

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Options {
    address: String,
    token: String,
    clients: usize,
    requests: u64,
    seconds: u64,
    paths: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        address: "127.0.0.1:8580".into(),
        token: String::new(),
        clients: 50,
        requests: 10_000,
        seconds: 60,
        paths: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--address" => o.address = value.clone(),
            "--token" => o.token = value.clone(),
            "--clients" => o.clients = number()? as usize,
            "--requests" => o.requests = number()?,
            "--seconds" => o.seconds = number()?,
            "--path" => o.paths.push(value.clone()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if o.paths.is_empty() {
        return Err("give at least one --path".into());
    }
    Ok(o)
}

/// One request on the connection; the status, after reading the whole body.
async fn request(stream: &mut BufReader<TcpStream>, head: &[u8]) -> std::io::Result<u16> {
    stream.get_mut().write_all(head).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(status)
}

struct Tally {
    sent: AtomicU64,
    latencies: std::sync::Mutex<Vec<f64>>,
    statuses: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    errors: AtomicU64,
}

async fn client(o: Arc<Options>, tally: Arc<Tally>, deadline: Instant, first: usize) {
    let Ok(tcp) = TcpStream::connect(&o.address).await else {
        tally.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let _ = tcp.set_nodelay(true);
    let mut stream = BufReader::new(tcp);
    let heads: Vec<Vec<u8>> = o
        .paths
        .iter()
        .map(|p| {
            format!(
                "GET {p} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
                o.address, o.token
            )
            .into_bytes()
        })
        .collect();
    let mut k = first;
    let mut mine = Vec::new();
    while Instant::now() < deadline && tally.sent.fetch_add(1, Ordering::Relaxed) < o.requests {
        let started = Instant::now();
        match request(&mut stream, &heads[k % heads.len()]).await {
            Ok(status) => {
                mine.push(started.elapsed().as_secs_f64() * 1000.0);
                *tally.statuses.lock().unwrap().entry(status).or_default() += 1;
            }
            Err(_) => {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        k += 1;
    }
    tally.latencies.lock().unwrap().extend(mine);
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k]
}

fn main() {
    let o = match options() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("serve_load: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let tally = Arc::new(Tally {
        sent: AtomicU64::new(0),
        latencies: Default::default(),
        statuses: Default::default(),
        errors: AtomicU64::new(0),
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.seconds);
    runtime.block_on(async {
        let tasks: Vec<_> = (0..o.clients)
            .map(|c| tokio::spawn(client(o.clone(), tally.clone(), deadline, c)))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut l = tally.latencies.lock().unwrap().clone();
    l.sort_by(|a, b| a.total_cmp(b));
    let statuses: Vec<String> = tally
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(s, n)| format!("\"{s}\": {n}"))
        .collect();
    println!(
        "{{\"requests\": {}, \"errors\": {}, \"statuses\": {{{}}}, \"seconds\": {seconds:.3}, \"per_second\": {:.0}, \"p50_ms\": {:.2}, \"p90_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}}}",
        l.len(),
        tally.errors.load(Ordering::Relaxed),
        statuses.join(", "),
        l.len() as f64 / seconds,
        percentile(&l, 0.5),
        percentile(&l, 0.9),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN),
    );
}
