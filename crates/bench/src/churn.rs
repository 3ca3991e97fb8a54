//! `churn`: C workers repeat connect → join-room → leave-room → disconnect
//! until the total number of cycles is reached. Rooms are shared by about K
//! workers so joins and leaves produce presence traffic. The server's RSS is
//! read before, after the first 10,000 cycles (`--checkpoint`), at the end,
//! and again after an idle pause: steady growth means a leak.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sio;
use crate::stats::{self, Better, CpuWindow, Report, SharedHist};
use crate::{join_room, parse_duration, Ctx};
use clap::Args;

#[derive(Args)]
pub struct ChurnArgs {
    /// Cycles running at the same time.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Total cycles.
    #[arg(long, default_value_t = 30_000)]
    pub cycles: u64,
    /// Workers sharing one room.
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
    /// Read the server's RSS after this many cycles.
    #[arg(long, default_value_t = 10_000)]
    pub checkpoint: u64,
    /// Idle pause after the last cycle before the final RSS reading.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub idle: Duration,
}

struct Shared {
    next: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    total: u64,
    cycle: SharedHist,
    join: SharedHist,
    first_error: stats::FirstError,
}

async fn cycle(ctx: &Ctx, room: &str, name: &str, sh: &Shared) -> Result<(), String> {
    let start = Instant::now();
    let mut c = ctx.target.connect().await?;
    join_room(&mut c, room, name).await?;
    stats::record(&sh.join, start.elapsed());
    let leave = format!("{{\"roomId\":{}}}", sio::json_escape(room));
    c.ws.queue_event("leave-room", &leave);
    c.ws.disconnect(Duration::from_secs(5)).await;
    stats::record(&sh.cycle, start.elapsed());
    Ok(())
}

pub async fn run(ctx: &Ctx, args: &ChurnArgs) -> Result<Report, String> {
    let (concurrency, total, checkpoint, idle) = if ctx.smoke {
        let total = args.cycles.min(400);
        (
            args.concurrency.min(20),
            total,
            args.checkpoint.min(total / 2),
            Duration::from_millis(500),
        )
    } else {
        (args.concurrency, args.cycles, args.checkpoint, args.idle)
    };
    let rooms = concurrency.div_ceil(args.room_size.max(1));
    let mut report = Report::new("churn");
    report.param("concurrency", concurrency as u64);
    report.param("cycles", total);
    report.param("room_size", args.room_size as u64);
    report.param("checkpoint", checkpoint);

    let sh = Arc::new(Shared {
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        total,
        cycle: stats::shared_hist(),
        join: stats::shared_hist(),
        first_error: stats::FirstError::default(),
    });
    let run_id = std::process::id();
    let rss_before = ctx.rss();
    let cpu = CpuWindow::start(&ctx.server_pids);
    let t0 = Instant::now();
    let workers = (0..concurrency).map(|w| {
        let sh = sh.clone();
        let room = format!("churn-{run_id}-{}", w % rooms);
        async move {
            loop {
                let i = sh.next.fetch_add(1, Ordering::Relaxed);
                if i >= sh.total {
                    break;
                }
                match cycle(ctx, &room, &format!("c{i}"), &sh).await {
                    Ok(()) => {}
                    Err(e) => {
                        sh.failed.fetch_add(1, Ordering::Relaxed);
                        sh.first_error.record(e);
                    }
                }
                sh.done.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let all = futures_util::future::join_all(workers);
    let bar = ctx.bar(total, "churn {bar:40} {pos}/{len} cycles {per_sec}");
    let monitor = async {
        let mut at_checkpoint = None;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let done = sh.done.load(Ordering::Relaxed);
            bar.set_position(done);
            if at_checkpoint.is_none() && done >= checkpoint {
                at_checkpoint = Some(ctx.rss());
            }
            if done >= total {
                break;
            }
        }
        bar.finish_and_clear();
        at_checkpoint.flatten()
    };
    let (_, rss_checkpoint) = tokio::join!(all, monitor);
    let elapsed = t0.elapsed();
    let usage = cpu.stop();
    let rss_end = ctx.rss();
    tokio::time::sleep(idle).await;
    let rss_idle = ctx.rss();

    let failed = sh.failed.load(Ordering::Relaxed);
    let ok = total - failed;
    report.metric(
        "cycles_per_s",
        "cycles per second",
        ok as f64 / elapsed.as_secs_f64(),
        "cycles/s",
        Better::Higher,
    );
    report.latency("join", "connect → join-ok", &sh.join.lock().expect("lock"));
    report.latency(
        "cycle",
        "whole cycle (connect → closed)",
        &sh.cycle.lock().expect("lock"),
    );
    usage.report(&mut report, "whole run");
    let mb = |v: u64| v as f64 / 1e6;
    if let Some(v) = rss_before {
        report.metric(
            "server_rss_before_mb",
            "server RSS before",
            mb(v),
            "MB",
            Better::Info,
        );
    }
    if let Some(v) = rss_checkpoint {
        report.metric(
            "server_rss_checkpoint_mb",
            &format!("server RSS after {checkpoint} cycles"),
            mb(v),
            "MB",
            Better::Lower,
        );
    }
    if let Some(v) = rss_end {
        report.metric(
            "server_rss_end_mb",
            &format!("server RSS after {total} cycles"),
            mb(v),
            "MB",
            Better::Lower,
        );
    }
    if let Some(v) = rss_idle {
        report.metric(
            "server_rss_idle_mb",
            &format!("server RSS {} s later", idle.as_secs_f64()),
            mb(v),
            "MB",
            Better::Lower,
        );
    }
    report.metric("failed", "cycles failed", failed as f64, "", Better::Lower);
    sh.first_error.fail_if(&mut report, failed as u64, "cycles");
    Ok(report)
}
