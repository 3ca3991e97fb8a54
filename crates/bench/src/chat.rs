//! `chat`: server-routed chat with durable history. R rooms of K sockets;
//! every socket sends `chat-message` with an acknowledgement, keeping
//! `--window` messages in flight (1: send, wait for the ack, send again), and
//! receives the others' messages. Measures messages stored and acknowledged
//! per second, deliveries (fan-out) per second, and the send → ack latency,
//! which includes the database write. Run it against servers started with
//! different `--database-url`s (and `--history-batch-max 1` to see what
//! batching buys).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::sio::{self, classify, Incoming};
use crate::stats::{self, Better, CpuWindow, Report, SharedHist};
use crate::{join_room, parse_duration, Ctx};

#[derive(Args)]
pub struct ChatArgs {
    /// Rooms.
    #[arg(long, default_value_t = 50)]
    pub rooms: usize,
    /// Sockets per room (each one sends and receives).
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
    /// Messages each socket keeps in flight (waiting for their ack).
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Characters of text per message.
    #[arg(long, default_value_t = 100)]
    pub text_len: usize,
    /// Measured time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured time first.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
}

#[derive(Default)]
struct Counts {
    acked: AtomicU64,
    refused: AtomicU64,
    delivered: AtomicU64,
}

struct Shared {
    measuring: AtomicBool,
    stop: AtomicBool,
    counts: Counts,
    ack: SharedHist,
    first_error: stats::FirstError,
}

async fn sender(
    ctx: &Ctx,
    args: &ChatArgs,
    room: String,
    sh: &Shared,
    ready: &tokio::sync::Barrier,
) -> Result<(), String> {
    let mut c = ctx.target.connect().await?;
    join_room(&mut c, &room, "bench").await?;
    ready.wait().await;
    let text = "x".repeat(args.text_len.max(1));
    let body = format!(
        "[\"chat-message\",{{\"roomId\":{},\"text\":{}}}]",
        sio::json_escape(&room),
        sio::json_escape(&text)
    );
    let window = args.window.max(1);
    let mut next_id: u64 = 0;
    let mut in_flight: VecDeque<(u64, Instant, bool)> = VecDeque::with_capacity(window);
    loop {
        while in_flight.len() < window && !sh.stop.load(Ordering::Relaxed) {
            c.ws.queue(&format!("42{next_id}{body}"));
            in_flight.push_back((
                next_id,
                Instant::now(),
                sh.measuring.load(Ordering::Relaxed),
            ));
            next_id += 1;
        }
        if in_flight.is_empty() {
            return Ok(());
        }
        c.ws.flush().await?;
        let text = c.ws.recv().await?;
        if let Some(rest) = text.strip_prefix("43") {
            let digits = rest.find('[').unwrap_or(0);
            let id: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("bad ack {text:.80}"))?;
            let ok = rest[digits..].contains("\"ok\":true");
            let Some(pos) = in_flight.iter().position(|(i, _, _)| *i == id) else {
                continue;
            };
            let (_, sent, measured) = in_flight.remove(pos).expect("position is valid");
            if measured && sh.measuring.load(Ordering::Relaxed) {
                if ok {
                    sh.counts.acked.fetch_add(1, Ordering::Relaxed);
                    stats::record(&sh.ack, sent.elapsed());
                } else {
                    sh.counts.refused.fetch_add(1, Ordering::Relaxed);
                    sh.first_error.record(format!("refused: {text:.160}"));
                }
            }
            continue;
        }
        match classify(text) {
            Incoming::Ping => c.ws.queue("3"),
            Incoming::Event("chat-message", _) if sh.measuring.load(Ordering::Relaxed) => {
                sh.counts.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Event("error", rest) => {
                sh.first_error.record(format!("error: {rest:.160}"));
            }
            _ => {}
        }
    }
}

pub async fn run(ctx: &Ctx, args: &ChatArgs) -> Result<Report, String> {
    let (rooms, duration, warmup) = ctx.timed(args.rooms, args.duration, args.warmup);
    let sockets = rooms * args.room_size.max(1);
    let mut report = Report::new("chat");
    report.param("rooms", rooms as u64);
    report.param("room_size", args.room_size as u64);
    report.param("window", args.window as u64);
    report.param("text_len", args.text_len as u64);
    report.param("duration_s", duration.as_secs_f64());

    let sh = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        counts: Counts::default(),
        ack: stats::shared_hist(),
        first_error: stats::FirstError::default(),
    });
    let ready = Arc::new(tokio::sync::Barrier::new(sockets + 1));
    let run_id = std::process::id();
    let failed = Arc::new(AtomicU64::new(0));
    let tasks = (0..sockets).map(|i| {
        let (sh, ready, failed) = (sh.clone(), ready.clone(), failed.clone());
        let room = format!("chat-{run_id}-{}", i % rooms);
        async move {
            if let Err(e) = sender(ctx, args, room, &sh, &ready).await {
                failed.fetch_add(1, Ordering::Relaxed);
                sh.first_error.record(e);
            }
        }
    });
    let all = futures_util::future::join_all(tasks);
    let clock = async {
        ready.wait().await;
        tokio::time::sleep(warmup).await;
        let cpu = CpuWindow::start(&ctx.server_pids);
        sh.measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(duration).await;
        sh.measuring.store(false, Ordering::Relaxed);
        let elapsed = t0.elapsed();
        sh.stop.store(true, Ordering::Relaxed);
        (elapsed, cpu.stop())
    };
    let (_, (elapsed, usage)) = tokio::join!(all, clock);
    let secs = elapsed.as_secs_f64();
    let acked = sh.counts.acked.load(Ordering::Relaxed);
    report.metric(
        "stored_per_s",
        "messages stored + acknowledged per second",
        acked as f64 / secs,
        "msg/s",
        Better::Higher,
    );
    report.metric(
        "delivered_per_s",
        "messages delivered (fan-out) per second",
        sh.counts.delivered.load(Ordering::Relaxed) as f64 / secs,
        "msg/s",
        Better::Higher,
    );
    report.latency("ack", "send → ack (stored)", &sh.ack.lock().expect("lock"));
    usage.report(&mut report, "measured");
    report.server_rss_at_end(ctx.rss());
    let refused = sh.counts.refused.load(Ordering::Relaxed);
    report.metric(
        "refused",
        "messages refused",
        refused as f64,
        "",
        Better::Lower,
    );
    let failures = refused + failed.load(Ordering::Relaxed);
    sh.first_error
        .fail_if(&mut report, failures, "chat messages or sockets");
    if acked == 0 && failures == 0 {
        report.fail("no chat message was acknowledged".into());
    }
    Ok(report)
}
