//! `rooms`: N sockets connect at rate R and join rooms of K (in order: socket
//! i joins room i / K). Existing members time the newcomer's `join-room` send
//! to their `#rtcio:init-offer` arrival (same process, same clock). Then
//! everything stays idle for a while and the server's RSS growth is divided by
//! the number of sockets. With several servers, socket i connects to node
//! i mod N, so the members of a room are spread over the nodes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sio::{self, classify, Incoming};
use crate::stats::{self, Better, CpuWindow, Report, SharedHist};
use crate::{parse_duration, Ctx};
use clap::Args;

#[derive(Args)]
pub struct RoomsArgs {
    /// Sockets to connect.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// Sockets per room.
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
    /// New sockets per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Idle time after the last join before reading the server's RSS.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Create this file (with the number of sockets joined) once every socket
    /// has joined or failed, before the hold: lets a script running several
    /// generators know when all of them are in.
    #[arg(long)]
    pub ready_file: Option<std::path::PathBuf>,
    /// End the hold early once this file exists (checked every 100 ms).
    #[arg(long)]
    pub stop_file: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    joined: AtomicU64,
    failed: AtomicU64,
    init_offers: AtomicU64,
    unknown_source: AtomicU64,
}

struct Shared {
    join_sent: Mutex<HashMap<String, Instant>>,
    /// (receiver, source) of every init-offer, to spot duplicates and pairs
    /// where both sides were told to make the offer (glare).
    offers_seen: Mutex<HashSet<(String, String)>>,
    duplicates: AtomicU64,
    c: Counters,
    connect: SharedHist,
    join_ok: SharedHist,
    init_offer: SharedHist,
    first_error: stats::FirstError,
}

async fn client(
    ctx_target: Arc<sio::Target>,
    node: usize,
    sh: Arc<Shared>,
    room: String,
    name: String,
) {
    let fail = |e: String| {
        sh.c.failed.fetch_add(1, Ordering::Relaxed);
        sh.first_error.record(e);
    };
    let start = Instant::now();
    let mut c = match ctx_target.connect_to(node).await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    stats::record(&sh.connect, start.elapsed());
    sh.c.connected.fetch_add(1, Ordering::Relaxed);
    let payload = format!("{{\"roomId\":\"{room}\",\"name\":\"{name}\"}}");
    let sent_at = Instant::now();
    sh.join_sent
        .lock()
        .expect("lock")
        .insert(c.sid.clone(), sent_at);
    if let Err(e) = c.ws.send_event("join-room", &payload).await {
        return fail(format!("send join-room: {e}"));
    }
    let mut joined = false;
    loop {
        let text = match c.ws.recv().await {
            Ok(t) => t,
            Err(e) if joined => {
                return fail(format!("after join: {e}"));
            }
            Err(e) => return fail(format!("before join-ok: {e}")),
        };
        match classify(text) {
            Incoming::Ping => {
                if let Err(e) = c.ws.send("3").await {
                    return fail(format!("send pong: {e}"));
                }
            }
            Incoming::Event("#rtcio:init-offer", rest) => {
                let now = Instant::now();
                let source = sio::str_field(rest, "source");
                if let Some(src) = source {
                    let fresh = sh
                        .offers_seen
                        .lock()
                        .expect("lock")
                        .insert((c.sid.clone(), src.to_string()));
                    if !fresh {
                        sh.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let from =
                    source.and_then(|src| sh.join_sent.lock().expect("lock").get(src).copied());
                match from {
                    Some(at) => stats::record(&sh.init_offer, now - at),
                    None => {
                        sh.c.unknown_source.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sh.c.init_offers.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Event("join-ok", _) if !joined => {
                joined = true;
                stats::record(&sh.join_ok, sent_at.elapsed());
                sh.c.joined.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Event("join-error", rest) | Incoming::Event("error", rest) => {
                return fail(format!("server refused: {rest:.120}"));
            }
            _ => {}
        }
    }
}

pub async fn run(ctx: &Ctx, args: &RoomsArgs) -> Result<Report, String> {
    let (n, rate, hold) = if ctx.smoke {
        (
            args.sockets.min(200),
            args.rate.min(500.0),
            Duration::from_secs(1),
        )
    } else {
        (args.sockets, args.rate, args.hold)
    };
    let k = args.room_size.max(1);
    let mut report = Report::new("rooms");
    report.param("sockets", n as u64);
    report.param("room_size", k as u64);
    report.param("rate", rate);
    report.param("hold_s", hold.as_secs_f64());

    let rss_before = ctx.rss();
    let sh = Arc::new(Shared {
        join_sent: Mutex::new(HashMap::with_capacity(n)),
        offers_seen: Mutex::new(HashSet::with_capacity(n * k)),
        duplicates: AtomicU64::new(0),
        c: Counters::default(),
        connect: stats::shared_hist(),
        join_ok: stats::shared_hist(),
        init_offer: stats::shared_hist(),
        first_error: stats::FirstError::default(),
    });
    let run_id = std::process::id();
    let bar = ctx.bar(n as u64, "joining {bar:40} {pos}/{len} sockets {msg}");
    let cpu = CpuWindow::start(&ctx.server_pids);
    let t0 = Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut tasks = tokio::task::JoinSet::new();
    let settled =
        |sh: &Shared| sh.c.joined.load(Ordering::Relaxed) + sh.c.failed.load(Ordering::Relaxed);
    for i in 0..n {
        let at = t0 + period.mul_f64(i as f64);
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        let room = format!("rooms-{run_id}-{}", i / k);
        // Socket i on node i mod N: with several servers, the members of a
        // room are on different nodes (as many as there are).
        tasks.spawn(client(
            ctx.target.clone(),
            i,
            sh.clone(),
            room,
            format!("u{i}"),
        ));
        if i % 64 == 0 {
            bar.set_position(settled(&sh));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while settled(&sh) < n as u64 && Instant::now() < deadline {
        bar.set_position(settled(&sh));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let join_phase = t0.elapsed();
    let usage = cpu.stop();
    bar.finish_and_clear();
    // Existing members may still be receiving their last init-offers.
    let expected: u64 = (0..n.div_ceil(k))
        .map(|r| {
            let m = (n - r * k).min(k) as u64;
            m * (m - 1) / 2
        })
        .sum();
    let offers_deadline = Instant::now() + Duration::from_secs(5);
    while sh.c.init_offers.load(Ordering::Relaxed) < expected && Instant::now() < offers_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(path) = &args.ready_file {
        let joined = sh.c.joined.load(Ordering::Relaxed);
        if let Err(e) = std::fs::write(path, format!("{joined}\n")) {
            eprintln!("warning: writing {}: {e}", path.display());
        }
    }
    match &args.stop_file {
        None => tokio::time::sleep(hold).await,
        Some(stop) => {
            let until = Instant::now() + hold;
            while Instant::now() < until && !stop.exists() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let rss_after = ctx.rss();
    tasks.abort_all();

    let joined = sh.c.joined.load(Ordering::Relaxed);
    let failed = sh.c.failed.load(Ordering::Relaxed);
    let offers = sh.c.init_offers.load(Ordering::Relaxed);
    report.metric("joined", "sockets joined", joined as f64, "", Better::Info);
    report.metric(
        "join_rate",
        "joins per second (achieved)",
        joined as f64 / join_phase.as_secs_f64(),
        "/s",
        Better::Info,
    );
    report.latency(
        "init_offer",
        "join-room → #rtcio:init-offer at existing peers",
        &sh.init_offer.lock().expect("lock"),
    );
    report.latency(
        "join_ok",
        "join-room → join-ok",
        &sh.join_ok.lock().expect("lock"),
    );
    report.latency(
        "connect",
        "connect (TCP+WS+40)",
        &sh.connect.lock().expect("lock"),
    );
    usage.report(&mut report, "join phase");
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report.metric(
            "server_rss_before_mb",
            "server RSS before",
            before as f64 / 1e6,
            "MB",
            Better::Info,
        );
        report.metric(
            "server_rss_after_mb",
            "server RSS with all sockets idle",
            after as f64 / 1e6,
            "MB",
            Better::Lower,
        );
        report.metric(
            "rss_per_socket_kb",
            "server RSS per idle socket",
            (after as f64 - before as f64) / joined.max(1) as f64 / 1000.0,
            "KB",
            Better::Lower,
        );
    }
    sh.first_error
        .fail_if(&mut report, failed as u64, "sockets");
    if offers != expected {
        let seen = sh.offers_seen.lock().expect("lock");
        let mutual = seen
            .iter()
            .filter(|(to, from)| to < from && seen.contains(&(from.clone(), to.clone())))
            .count();
        report.fail(format!(
            "{offers} init-offers received, {expected} expected ({} duplicates; {mutual} pairs where both sides got one, i.e. both would offer)",
            sh.duplicates.load(Ordering::Relaxed)
        ));
    }
    let unknown = sh.c.unknown_source.load(Ordering::Relaxed);
    if unknown > 0 {
        report.fail(format!("{unknown} init-offers named an unknown source"));
    }
    Ok(report)
}
