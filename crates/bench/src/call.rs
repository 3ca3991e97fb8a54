//! `call`: realistic call set-up. C concurrent callers each loop: connect M
//! (default 4) sockets, join one room one after the other (each after the
//! previous got `join-ok`); every `#rtcio:init-offer` makes the existing peer
//! send an SDP offer (~5 KB) and then its ICE candidates to the newcomer, who
//! answers (SDP) and sends its own candidates — all as `#rtcio:message`. A
//! call is set up when every side of every pair has the other's description
//! and all its candidates; then all members disconnect and the caller starts
//! the next call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::{mpsc, oneshot, watch};

use crate::relay::fake_sdp;
use crate::sio::{self, classify, Client, Incoming};
use crate::stats::{self, Better, CpuWindow, Report, SharedHist};
use crate::{parse_duration, Ctx};

#[derive(Args)]
pub struct CallArgs {
    /// Calls being set up at the same time.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// Participants per call (room).
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
    /// ICE candidates each side of a pair sends.
    #[arg(long, default_value_t = 20)]
    pub candidates: usize,
    /// SDP size in bytes (offer and answer).
    #[arg(long, default_value_t = 5000)]
    pub sdp_size: usize,
    /// Measured duration.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
}

struct Shared {
    /// `data` of the offer, of the answer, and of each candidate.
    offer: String,
    answer: String,
    cands: Vec<String>,
    relayed: AtomicU64,
    relayed_bytes: AtomicU64,
    order_violations: AtomicU64,
    calls_ok: AtomicU64,
    calls_failed: AtomicU64,
    calls_in_window: AtomicU64,
    call_setup: SharedHist,
    call_total: SharedHist,
    pair_setup: SharedHist,
    first_error: stats::FirstError,
    warm: Instant,
    end: Instant,
}

struct Call {
    sids: Vec<String>,
    joined_at: Vec<OnceLock<Instant>>,
}

impl Call {
    fn index(&self, sid: &str) -> Option<usize> {
        self.sids.iter().position(|s| s == sid)
    }
}

fn queue_envelope(c: &mut Client, to: &str, data: &str) {
    c.ws.queue_parts(&[
        b"42[\"#rtcio:message\",{\"source\":\"",
        c.sid.as_bytes(),
        b"\",\"target\":\"",
        to.as_bytes(),
        b"\",\"data\":",
        data.as_bytes(),
        b"}]",
    ]);
}

fn candidate(i: usize) -> String {
    format!(
        "{{\"candidate\":{{\"candidate\":\"candidate:{} 1 udp 2122260223 192.168.1.{} {} typ host generation 0 ufrag Xy7q network-id 1 network-cost 10\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"usernameFragment\":\"Xy7q\"}}}}",
        1_000_000 + i,
        20 + i % 200,
        50_000 + i
    )
}

/// Sends the description and then all candidates to `peer`, in one write.
async fn send_side(c: &mut Client, peer: &str, desc: &str, cands: &[String]) -> Result<(), String> {
    queue_envelope(c, peer, desc);
    for cand in cands {
        queue_envelope(c, peer, cand);
    }
    c.ws.flush().await
}

#[allow(clippy::too_many_arguments)]
async fn participant(
    mut c: Client,
    me: usize,
    call: Arc<Call>,
    turn: oneshot::Receiver<()>,
    mut next: Option<oneshot::Sender<()>>,
    done: mpsc::UnboundedSender<(usize, usize, Instant)>,
    mut leave: watch::Receiver<bool>,
    room: String,
    sh: Arc<Shared>,
) -> Result<(), String> {
    let n = call.sids.len();
    let mut got_desc = vec![false; n];
    let mut cands = vec![0usize; n];
    if turn.await.is_err() {
        return Ok(());
    }
    let _ = call.joined_at[me].set(Instant::now());
    c.ws.send_event(
        "join-room",
        &format!("{{\"roomId\":\"{room}\",\"name\":\"p{me}\"}}"),
    )
    .await?;
    loop {
        let text = tokio::select! {
            m = c.ws.recv() => m?,
            _ = leave.changed() => break,
        };
        match classify(text) {
            Incoming::Ping => c.ws.send("3").await?,
            Incoming::Event("join-ok", _) => {
                if let Some(next) = next.take() {
                    let _ = next.send(());
                }
            }
            Incoming::Event("#rtcio:init-offer", rest) => {
                let peer = sio::str_field(rest, "source")
                    .ok_or("init-offer without source")?
                    .to_string();
                send_side(&mut c, &peer, &sh.offer, &sh.cands).await?;
            }
            Incoming::Event("#rtcio:message", rest) => {
                sh.relayed.fetch_add(1, Ordering::Relaxed);
                sh.relayed_bytes
                    .fetch_add(text.len() as u64, Ordering::Relaxed);
                let Some(source) = sio::str_field(rest, "source") else {
                    return Err("envelope without source".into());
                };
                let Some(peer) = call.index(source) else {
                    return Err(format!("envelope from unknown source {source}"));
                };
                let kind = if rest.contains("\"type\":\"offer\"") {
                    Some(true)
                } else if rest.contains("\"type\":\"answer\"") {
                    Some(false)
                } else {
                    None
                };
                match kind {
                    Some(is_offer) => {
                        got_desc[peer] = true;
                        if is_offer {
                            let source = call.sids[peer].clone();
                            send_side(&mut c, &source, &sh.answer, &sh.cands).await?;
                        }
                    }
                    None => {
                        if !got_desc[peer] {
                            sh.order_violations.fetch_add(1, Ordering::Relaxed);
                        }
                        cands[peer] += 1;
                    }
                }
                if got_desc[peer] && cands[peer] == sh.cands.len() {
                    let _ = done.send((me, peer, Instant::now()));
                }
            }
            Incoming::Event("join-error", rest) | Incoming::Event("error", rest) => {
                return Err(format!("server refused: {rest:.120}"));
            }
            _ => {}
        }
    }
    c.ws.disconnect(Duration::from_secs(2)).await;
    Ok(())
}

async fn one_call(ctx: &Ctx, sh: &Arc<Shared>, m: usize, room: String) -> Result<(), String> {
    let start = Instant::now();
    let mut clients = Vec::with_capacity(m);
    let connects = (0..m).map(|_| ctx.target.connect());
    for c in futures_util::future::join_all(connects).await {
        clients.push(c?);
    }
    let call = Arc::new(Call {
        sids: clients.iter().map(|c| c.sid.clone()).collect(),
        joined_at: (0..m).map(|_| OnceLock::new()).collect(),
    });
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (leave_tx, leave_rx) = watch::channel(false);
    let (first_tx, mut turn_rx) = oneshot::channel();
    let mut tasks = tokio::task::JoinSet::new();
    for (me, c) in clients.into_iter().enumerate() {
        let (next_tx, next_rx) = oneshot::channel();
        let turn = std::mem::replace(&mut turn_rx, next_rx);
        tasks.spawn(participant(
            c,
            me,
            call.clone(),
            turn,
            (me + 1 < m).then_some(next_tx),
            done_tx.clone(),
            leave_rx.clone(),
            room.clone(),
            sh.clone(),
        ));
    }
    drop(done_tx);
    let _ = first_tx.send(());

    // Wait for every directed completion (me has everything from peer).
    let mut done_at = vec![vec![None::<Instant>; m]; m];
    let mut remaining = m * (m - 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut error = None;
    while remaining > 0 {
        tokio::select! {
            d = done_rx.recv() => match d {
                Some((me, peer, at)) => {
                    if done_at[me][peer].replace(at).is_none() {
                        remaining -= 1;
                    }
                }
                None => break,
            },
            Some(res) = tasks.join_next() => {
                if let Ok(Err(e)) = res {
                    error = Some(e);
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                error = Some(format!("call not set up after 15 s ({remaining} sides missing)"));
                break;
            }
        }
    }
    let _ = leave_tx.send(true);
    let teardown = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(3), teardown).await;
    if let Some(e) = error {
        return Err(e);
    }
    if remaining > 0 {
        return Err(format!("call incomplete ({remaining} sides missing)"));
    }
    let last = done_at
        .iter()
        .flatten()
        .flatten()
        .max()
        .copied()
        .expect("m >= 2");
    if last < sh.warm || last > sh.end {
        return Ok(());
    }
    let joined = |i: usize| call.joined_at[i].get().copied().unwrap_or(start);
    sh.calls_in_window.fetch_add(1, Ordering::Relaxed);
    stats::record(&sh.call_setup, last - joined(0));
    stats::record(&sh.call_total, last - start);
    for (i, row) in done_at.iter().enumerate() {
        for (j, col) in done_at.iter().enumerate().skip(i + 1) {
            let (Some(a), Some(b)) = (row[j], col[i]) else {
                continue;
            };
            stats::record(&sh.pair_setup, a.max(b) - joined(j));
        }
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, args: &CallArgs) -> Result<Report, String> {
    let (concurrency, duration, warmup) = ctx.timed(args.concurrency, args.duration, args.warmup);
    let m = args.room_size.max(2);
    let mut report = Report::new("call");
    report.param("concurrency", concurrency as u64);
    report.param("room_size", m as u64);
    report.param("candidates", args.candidates as u64);
    report.param("sdp_bytes", args.sdp_size as u64);
    report.param("duration_s", duration.as_secs_f64());
    report.param("warmup_s", warmup.as_secs_f64());

    let t0 = Instant::now();
    let sh = Arc::new(Shared {
        offer: format!(
            "{{\"description\":{{\"type\":\"offer\",\"sdp\":\"{}\"}}}}",
            fake_sdp(args.sdp_size)
        ),
        answer: format!(
            "{{\"description\":{{\"type\":\"answer\",\"sdp\":\"{}\"}}}}",
            fake_sdp(args.sdp_size)
        ),
        cands: (0..args.candidates).map(candidate).collect(),
        relayed: AtomicU64::new(0),
        relayed_bytes: AtomicU64::new(0),
        order_violations: AtomicU64::new(0),
        calls_ok: AtomicU64::new(0),
        calls_failed: AtomicU64::new(0),
        calls_in_window: AtomicU64::new(0),
        call_setup: stats::shared_hist(),
        call_total: stats::shared_hist(),
        pair_setup: stats::shared_hist(),
        first_error: stats::FirstError::default(),
        warm: t0 + warmup,
        end: t0 + warmup + duration,
    });
    let run_id = std::process::id();
    let next_call = Arc::new(AtomicU64::new(0));
    let ctx_ref: &Ctx = ctx;
    let workers = (0..concurrency).map(|_| {
        let sh = sh.clone();
        let next_call = next_call.clone();
        async move {
            while Instant::now() < sh.end {
                let id = next_call.fetch_add(1, Ordering::Relaxed);
                match one_call(ctx_ref, &sh, m, format!("call-{run_id}-{id}")).await {
                    Ok(()) => sh.calls_ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        sh.first_error.record(e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        sh.calls_failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }
    });
    let all = futures_util::future::join_all(workers);

    let bar = ctx.bar(
        (warmup + duration).as_millis() as u64,
        "call {bar:40} {elapsed_precise} {msg}",
    );
    let monitor = async {
        let mut cpu = None;
        let mut usage = None;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let now = Instant::now();
            if cpu.is_none() && now >= sh.warm {
                cpu = Some((
                    CpuWindow::start(&ctx.server_pids),
                    sh.relayed.load(Ordering::Relaxed),
                ));
            }
            if now >= sh.end {
                if let Some((c, relayed0)) = &cpu {
                    usage = Some((c.stop(), sh.relayed.load(Ordering::Relaxed) - relayed0));
                }
                break;
            }
            bar.set_position((now - t0).as_millis() as u64);
            bar.set_message(format!(
                "{} calls set up",
                sh.calls_ok.load(Ordering::Relaxed)
            ));
        }
        bar.finish_and_clear();
        usage
    };
    let (_, usage) = tokio::join!(all, monitor);

    let in_window = sh.calls_in_window.load(Ordering::Relaxed);
    report.metric(
        "calls_per_s",
        "calls set up per second",
        in_window as f64 / duration.as_secs_f64(),
        "calls/s",
        Better::Higher,
    );
    if let Some((usage, relayed)) = &usage {
        report.metric(
            "relayed_per_s",
            "relayed envelopes per second",
            *relayed as f64 / usage.wall,
            "env/s",
            Better::Higher,
        );
    }
    report.latency(
        "call_setup",
        "call set-up (first join → all pairs connected)",
        &sh.call_setup.lock().expect("lock"),
    );
    report.latency(
        "call_total",
        "call set-up incl. connecting the sockets",
        &sh.call_total.lock().expect("lock"),
    );
    report.latency(
        "pair_setup",
        "pair set-up (newcomer's join → both sides complete)",
        &sh.pair_setup.lock().expect("lock"),
    );
    if let Some((usage, _)) = &usage {
        usage.report(&mut report, "measured window");
    }
    report.server_rss_at_end(ctx.rss());
    let failed = sh.calls_failed.load(Ordering::Relaxed);
    let order = sh.order_violations.load(Ordering::Relaxed);
    report.metric(
        "calls_failed",
        "calls failed",
        failed as f64,
        "",
        Better::Lower,
    );
    report.metric(
        "order_violations",
        "candidates before their description",
        order as f64,
        "",
        Better::Lower,
    );
    sh.first_error.fail_if(&mut report, failed as u64, "calls");
    if order > 0 {
        report.fail(format!(
            "{order} candidates arrived before their description"
        ));
    }
    if in_window == 0 {
        report.fail("no call set up in the measured window".into());
    }
    Ok(report)
}
