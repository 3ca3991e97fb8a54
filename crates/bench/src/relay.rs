//! `relay`: P sender/receiver pairs, each pair alone in its own room (so a
//! room-scoped server relays). Each sender keeps W envelopes in flight: the
//! receiver lives in the same process and tells its sender (shared counter +
//! Notify) how many have arrived, so nothing is echoed through the server.
//! Each envelope carries `"bench":"SEQ:SEND_NS"` in `data`; the receiver
//! records end-to-end latency on the same clock and checks per-pair order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::Notify;

use crate::sio::{self, classify, Conn, Incoming};
use crate::stats::{self, Better, CpuWindow, Report, SharedHist};
use crate::{join_room, parse_duration, wait_event, Ctx};

#[derive(Args)]
pub struct RelayArgs {
    /// Sender/receiver pairs (each pair in its own room).
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// Envelopes in flight per pair.
    #[arg(long, default_value_t = 8)]
    pub window: u64,
    /// Size of one `42["#rtcio:message",{...}]` frame in bytes (330: an ICE
    /// candidate; 5000: an SDP offer).
    #[arg(long, default_value_t = 330)]
    pub size: usize,
    /// Measured duration.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Paced total send rate in envelopes per second, released round-robin
    /// over the pairs every millisecond, so that they leave evenly spread
    /// (the window still caps what is in flight); 0 = closed loop, as fast
    /// as the window allows. Pacing measures latency at a given load.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// With several servers (`--ports`/`--urls`): where the two sockets of
    /// pair i connect. `cross`: sender on node i mod N, receiver on the next
    /// node; `one-way`: every sender on the first node, receivers round-robin
    /// over the others; `same`: both on node i mod N (relays that stay
    /// inside one node).
    #[arg(long, value_enum, default_value_t = Placement::Cross)]
    pub placement: Placement,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    Cross,
    OneWay,
    Same,
}

impl Placement {
    /// (sender node, receiver node) of pair `i` over `n` nodes.
    pub fn nodes(self, i: usize, n: usize) -> (usize, usize) {
        let n = n.max(1);
        match self {
            _ if n == 1 => (0, 0),
            Placement::Cross => (i % n, (i + 1) % n),
            Placement::OneWay => (0, 1 + i % (n - 1)),
            Placement::Same => (i % n, i % n),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Placement::Cross => "cross",
            Placement::OneWay => "one-way",
            Placement::Same => "same",
        }
    }
}

const BENCH_TAG: &str = "\"bench\":\"";
const SEQ_DIGITS: usize = 10;
const TS_DIGITS: usize = 15;

/// A pre-rendered envelope with a fixed-width slot for sequence and send time.
pub struct Template {
    prefix: String,
    suffix: String,
}

impl Template {
    /// An envelope from `source` to `target` whose frame is `size` bytes
    /// (or the smallest possible if `size` is smaller).
    pub fn new(source: &str, target: &str, size: usize) -> Self {
        let prefix = format!(
            "42[\"#rtcio:message\",{{\"source\":\"{source}\",\"target\":\"{target}\",\"data\":{{{BENCH_TAG}"
        );
        let fixed = prefix.len() + SEQ_DIGITS + 1 + TS_DIGITS;
        let make_suffix = |pad: usize| {
            if size >= 1500 {
                format!(
                    "\",\"description\":{{\"type\":\"offer\",\"sdp\":\"{}\"}}}}}}]",
                    fake_sdp(pad)
                )
            } else {
                format!(
                    "\",\"candidate\":{{\"candidate\":\"candidate:842163049 1 udp 1677729535 203.0.113.7 54321 typ srflx raddr 192.168.1.20 rport 54321 generation 0{}\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"usernameFragment\":\"Xy7q\"}}}}}}]",
                    "x".repeat(pad)
                )
            }
        };
        let base = fixed + make_suffix(0).len();
        let suffix = make_suffix(size.saturating_sub(base));
        Template { prefix, suffix }
    }

    pub fn len(&self) -> usize {
        self.prefix.len() + SEQ_DIGITS + 1 + TS_DIGITS + self.suffix.len()
    }

    /// Queues the envelope with its sequence number and send time.
    pub fn queue(&self, ws: &mut Conn, seq: u64, ts_ns: u64) {
        let mut slot = [b':'; SEQ_DIGITS + 1 + TS_DIGITS];
        put_digits(&mut slot[..SEQ_DIGITS], seq);
        put_digits(&mut slot[SEQ_DIGITS + 1..], ts_ns);
        ws.queue_parts(&[self.prefix.as_bytes(), &slot, self.suffix.as_bytes()]);
    }

    #[cfg(test)]
    fn render(&self, seq: u64, ts_ns: u64) -> String {
        format!(
            "{}{seq:0SEQ_DIGITS$}:{ts_ns:0TS_DIGITS$}{}",
            self.prefix, self.suffix
        )
    }
}

/// Zero-padded decimal into a fixed-width slot (the high digits are dropped
/// if the value does not fit; it always fits in practice).
fn put_digits(slot: &mut [u8], mut v: u64) {
    for b in slot.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// An SDP-looking JSON string body (already escaped: `\r\n` as 4 characters)
/// of exactly `len` characters.
pub fn fake_sdp(len: usize) -> String {
    const LINES: &[&str] = &[
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS 3f5a1c2e",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Xy7q",
        "a=ice-pwd:c2VjcmV0c2VjcmV0c2VjcmV0",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 127 121 125 107 108 109",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 goog-remb",
        "a=rtcp-fb:96 ccm fir",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=ssrc-group:FID 2231627014 632943048",
        "a=ssrc:2231627014 cname:4TOk42mSjXCkVIa6",
    ];
    let mut s = String::with_capacity(len + 128);
    let mut i = 0;
    while s.len() < len {
        s.push_str(LINES[i % LINES.len()]);
        s.push_str("\\r\\n");
        i += 1;
    }
    // Cut back to a line end, then pad the last line to the exact length.
    while s.len() > len {
        let cut = s[..s.len() - 4].rfind("\\r\\n").map_or(0, |p| p + 4);
        s.truncate(cut);
    }
    while s.len() < len {
        s.push('x');
    }
    s
}

/// Sequence number and send time out of a relayed envelope.
pub fn parse_bench(text: &str) -> Option<(u64, u64)> {
    let start = text.find(BENCH_TAG)? + BENCH_TAG.len();
    let field = text.get(start..start + SEQ_DIGITS + 1 + TS_DIGITS)?;
    let seq = field[..SEQ_DIGITS].parse().ok()?;
    let ts = field[SEQ_DIGITS + 1..].parse().ok()?;
    Some((seq, ts))
}

#[derive(Default)]
struct Pair {
    sent: AtomicU64,
    received: AtomicU64,
    delivered_in_window: AtomicU64,
    out_of_order: AtomicU64,
    wrong_source: AtomicU64,
    /// Paced: how many envelopes the pacer has released to this sender.
    allowed: AtomicU64,
    /// Wakes the sender: window room (the receiver) or a release (the pacer).
    notify: Notify,
}

struct Shared {
    t0: Instant,
    warm_ns: u64,
    end_ns: u64,
    window: u64,
    /// Envelopes released per nanosecond since t0, over all senders (0 = unpaced).
    rate_per_ns: f64,
    hist: SharedHist,
    /// Per second of the run (by send time): the slowest envelope and how
    /// many took longer than `SLOW_NS`, to tell a few stalls from a
    /// uniformly slow run.
    per_second: Vec<(AtomicU64, AtomicU64)>,
}

/// An envelope slower than this counts as slow in the per-second timeline.
const SLOW_NS: u64 = 5_000_000;

impl Shared {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
}

async fn sender(mut ws: Conn, tpl: Template, pair: Arc<Pair>, sh: Arc<Shared>) {
    let mut seq = 0u64;
    let paced = sh.rate_per_ns > 0.0;
    loop {
        let now = sh.now_ns();
        if now >= sh.end_ns {
            break;
        }
        let in_flight = seq - pair.received.load(Ordering::Acquire);
        let budget = if paced {
            pair.allowed.load(Ordering::Acquire).saturating_sub(seq)
        } else {
            u64::MAX
        };
        let n = sh.window.saturating_sub(in_flight).min(budget);
        if n > 0 {
            for _ in 0..n {
                tpl.queue(&mut ws, seq, sh.now_ns());
                seq += 1;
            }
            if ws.flush().await.is_err() {
                return;
            }
            pair.sent.store(seq, Ordering::Release);
        }
        tokio::select! {
            _ = pair.notify.notified() => {}
            msg = ws.recv() => match msg {
                Ok("2") => ws.queue("3"),
                Ok(_) => {}
                Err(_) => return,
            },
        }
    }
    // Stay connected (answering pings) until the run is torn down.
    while let Ok(text) = ws.recv().await {
        if text == "2" && ws.send("3").await.is_err() {
            return;
        }
    }
}

/// Paces the run: envelope `j` (over all senders) falls due at `j / rate`
/// and goes to sender `j mod pairs`; every millisecond the pacer releases
/// what fell due, so the envelopes leave spread evenly across senders and,
/// to the millisecond, in time. (Each sender pacing itself on the same
/// clock made them all due at the same instants: at 50,000 env/s over 200
/// pairs, 200 envelopes at once every 4 ms, whose queueing the latency then
/// measured; and its 200 timers woke this single-threaded generator 200,000
/// times a second.) If the generator falls behind, what is due goes out at
/// once.
async fn pacer(pairs: Vec<Arc<Pair>>, sh: Arc<Shared>) {
    let mut released = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = sh.now_ns();
        if now >= sh.end_ns {
            // Wake every sender once more: with no release left to wait
            // for, a paced sender would otherwise stay in its send loop and
            // never reach the tail that answers pings until the teardown.
            for pair in &pairs {
                pair.notify.notify_one();
            }
            return;
        }
        release(&pairs, &mut released, (now as f64 * sh.rate_per_ns) as u64);
    }
}

/// Releases envelopes `released..due` round-robin over `pairs`.
fn release(pairs: &[Arc<Pair>], released: &mut u64, due: u64) {
    let n = pairs.len() as u64;
    while *released < due {
        let pair = &pairs[(*released % n) as usize];
        pair.allowed.fetch_add(1, Ordering::Release);
        pair.notify.notify_one();
        *released += 1;
    }
}

async fn receiver(mut ws: Conn, source: String, pair: Arc<Pair>, sh: Arc<Shared>) {
    let mut expected = 0u64;
    loop {
        let Ok(text) = ws.recv().await else { return };
        if text == "2" {
            if ws.send("3").await.is_err() {
                return;
            }
            continue;
        }
        let Incoming::Event("#rtcio:message", rest) = classify(text) else {
            continue;
        };
        let now = sh.now_ns();
        let Some((seq, ts)) = parse_bench(rest) else {
            continue;
        };
        if seq != expected {
            pair.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        if expected == 0 && sio::str_field(rest, "source") != Some(source.as_str()) {
            pair.wrong_source.fetch_add(1, Ordering::Relaxed);
        }
        expected = seq + 1;
        if ts >= sh.warm_ns && ts < sh.end_ns {
            pair.delivered_in_window.fetch_add(1, Ordering::Relaxed);
            let latency = now.saturating_sub(ts);
            stats::record(&sh.hist, Duration::from_nanos(latency));
            if let Some((max, slow)) = sh.per_second.get((ts / 1_000_000_000) as usize) {
                max.fetch_max(latency, Ordering::Relaxed);
                if latency > SLOW_NS {
                    slow.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        pair.received.fetch_add(1, Ordering::Release);
        pair.notify.notify_one();
    }
}

pub async fn run(ctx: &Ctx, args: &RelayArgs) -> Result<Report, String> {
    let (pairs, duration, warmup) = ctx.timed(args.pairs, args.duration, args.warmup);
    let window = args.window.max(1);
    let mut report = Report::new("relay");
    report.param("pairs", pairs as u64);
    report.param("window", window);
    report.param("rate", args.rate);
    report.param("duration_s", duration.as_secs_f64());
    report.param("warmup_s", warmup.as_secs_f64());
    if ctx.target.node_count() > 1 {
        report.param("placement", args.placement.name());
    }

    // Connect and join every pair (sender first, so the receiver's join gives
    // the sender an init-offer, as in a real room).
    let bar = ctx.bar(pairs as u64, "connecting {bar:40} {pos}/{len} pairs");
    let run_id = std::process::id();
    let mut setups = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..pairs {
        let target = ctx.target.clone();
        let limit = limit.clone();
        let (sender_node, receiver_node) = args.placement.nodes(i, target.node_count());
        setups.spawn(async move {
            let _permit = limit.acquire().await;
            let room = format!("relay-{run_id}-{i}");
            let mut s = target.connect_to(sender_node).await?;
            let mut r = target.connect_to(receiver_node).await?;
            join_room(&mut s, &room, &format!("s{i}")).await?;
            join_room(&mut r, &room, &format!("r{i}")).await?;
            // The sender starts once it was told of the receiver, as a real
            // client would: in a cluster the receiver's join-ok may reach
            // the generator before its membership reaches the sender's node
            // (the `user-connected` never does).
            wait_event(&mut s, "user-connected").await?;
            Ok::<_, String>((i, s, r))
        });
    }
    let mut clients = Vec::with_capacity(pairs);
    while let Some(res) = setups.join_next().await {
        clients.push(res.map_err(|e| e.to_string())??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    clients.sort_by_key(|(i, _, _)| *i);
    let frame_len = Template::new(&clients[0].1.sid, &clients[0].2.sid, args.size).len();
    report.param("frame_bytes", frame_len as u64);

    let t0 = Instant::now();
    let sh = Arc::new(Shared {
        t0,
        warm_ns: warmup.as_nanos() as u64,
        end_ns: (warmup + duration).as_nanos() as u64,
        window,
        rate_per_ns: args.rate as f64 / 1e9,
        hist: stats::shared_hist(),
        per_second: (0..=(warmup + duration).as_secs() + 1)
            .map(|_| Default::default())
            .collect(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut states = Vec::with_capacity(pairs);
    for (_, s, r) in clients {
        let pair = Arc::new(Pair::default());
        let tpl = Template::new(&s.sid, &r.sid, args.size);
        tasks.spawn(receiver(r.ws, s.sid.clone(), pair.clone(), sh.clone()));
        tasks.spawn(sender(s.ws, tpl, pair.clone(), sh.clone()));
        states.push(pair);
    }
    if sh.rate_per_ns > 0.0 {
        tasks.spawn(pacer(states.clone(), sh.clone()));
    }

    let total_ms = (warmup + duration).as_millis() as u64;
    let bar = ctx.bar(total_ms, "relay {bar:40} {elapsed_precise} {msg}");
    let received = |states: &[Arc<Pair>]| -> u64 {
        states
            .iter()
            .map(|p| p.received.load(Ordering::Relaxed))
            .sum()
    };
    let mut cpu = None;
    let mut last = (Instant::now(), 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let elapsed = t0.elapsed();
        if cpu.is_none() && elapsed >= warmup {
            cpu = Some((
                CpuWindow::start(&ctx.server_pids),
                sio::READS.load(Ordering::Relaxed),
                sio::WRITES.load(Ordering::Relaxed),
                received(&states),
            ));
        }
        if elapsed >= warmup + duration {
            break;
        }
        let now = (Instant::now(), received(&states));
        let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64();
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!(
            "{} env/s{}",
            stats::fmt_value(rate),
            if elapsed < warmup { " (warm-up)" } else { "" }
        ));
        last = now;
    }
    let (window_start, reads0, writes0, received0) =
        cpu.unwrap_or_else(|| (CpuWindow::start(&ctx.server_pids), 0, 0, 0));
    let usage = window_start.stop();
    let io_per_env = {
        let n = (received(&states) - received0).max(1) as f64;
        (
            (sio::READS.load(Ordering::Relaxed) - reads0) as f64 / n,
            (sio::WRITES.load(Ordering::Relaxed) - writes0) as f64 / n,
        )
    };
    let rss = ctx.rss();
    bar.finish_and_clear();

    // Let what is in flight arrive.
    let drain_until = Instant::now() + Duration::from_secs(3);
    let sent = |states: &[Arc<Pair>]| -> u64 {
        states.iter().map(|p| p.sent.load(Ordering::Relaxed)).sum()
    };
    while received(&states) < sent(&states) && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tasks.abort_all();

    let sum = |f: &dyn Fn(&Pair) -> u64| -> u64 { states.iter().map(|p| f(p)).sum() };
    let delivered = sum(&|p| p.delivered_in_window.load(Ordering::Relaxed));
    let total_sent = sent(&states);
    let total_received = received(&states);
    let out_of_order = sum(&|p| p.out_of_order.load(Ordering::Relaxed));
    let wrong_source = sum(&|p| p.wrong_source.load(Ordering::Relaxed));
    let rate = delivered as f64 / duration.as_secs_f64();
    report.metric(
        "throughput",
        "relayed envelopes per second",
        rate,
        "env/s",
        Better::Higher,
    );
    report.metric(
        "throughput_mb",
        "relayed payload",
        rate * frame_len as f64 / 1e6,
        "MB/s",
        Better::Higher,
    );
    // The measured window, second by second (by send time).
    let seconds = sh.per_second[warmup.as_secs() as usize..(warmup + duration).as_secs() as usize]
        .iter()
        .map(|(max, slow)| {
            (
                max.load(Ordering::Relaxed) as f64 / 1e6,
                slow.load(Ordering::Relaxed),
            )
        })
        .collect::<Vec<_>>();
    let round = |v: f64| (v * 100.0).round() / 100.0;
    report.param(
        "max_ms_per_s",
        seconds.iter().map(|s| round(s.0)).collect::<Vec<_>>(),
    );
    report.param(
        "slow_per_s",
        seconds.iter().map(|s| s.1).collect::<Vec<_>>(),
    );
    report.metric(
        "slow_seconds",
        "seconds with an envelope slower than 5 ms",
        seconds.iter().filter(|s| s.1 > 0).count() as f64,
        "",
        Better::Lower,
    );
    let hist = sh.hist.lock().expect("histogram lock");
    report.latency("latency", "end-to-end latency", &hist);
    usage.report(&mut report, "measured window");
    if let (Some(s), true) = (usage.server_secs, rate > 0.0) {
        report.metric(
            "server_cpu_us_per_env",
            "server CPU per envelope",
            s * 1e6 / (rate * usage.wall),
            "µs",
            Better::Lower,
        );
    }
    report.server_rss_at_end(rss);
    report.metric(
        "bench_reads_per_env",
        "load generator reads per envelope",
        io_per_env.0,
        "",
        Better::Info,
    );
    report.metric(
        "bench_writes_per_env",
        "load generator writes per envelope",
        io_per_env.1,
        "",
        Better::Info,
    );
    report.metric(
        "sent",
        "envelopes sent (total)",
        total_sent as f64,
        "",
        Better::Info,
    );
    report.metric(
        "lost",
        "envelopes not delivered",
        total_sent.saturating_sub(total_received) as f64,
        "",
        Better::Lower,
    );
    report.metric(
        "out_of_order",
        "envelopes out of order",
        out_of_order as f64,
        "",
        Better::Lower,
    );
    if delivered == 0 {
        report.fail("no envelope delivered".into());
    }
    if out_of_order > 0 {
        report.fail(format!("{out_of_order} envelopes arrived out of order"));
    }
    if wrong_source > 0 {
        report.fail(format!("{wrong_source} receivers saw a wrong `source`"));
    }
    if total_received < total_sent {
        report.fail(format!(
            "{} envelopes not delivered 3 s after the end",
            total_sent - total_received
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_exact_size_and_parses() {
        for size in [330, 1000, 5000, 20000] {
            let t = Template::new("aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb", size);
            let m = t.render(42, 123_456_789);
            assert_eq!(m.len(), size, "size {size}");
            let v: serde_json::Value = serde_json::from_str(&m[2..]).unwrap();
            assert_eq!(v[0], "#rtcio:message");
            assert_eq!(v[1]["target"], "bbbbbbbbbbbbbbbbbbbb");
            assert_eq!(parse_bench(&m), Some((42, 123_456_789)));
        }
    }

    #[test]
    fn the_pacer_releases_round_robin_from_where_it_stopped() {
        let pairs: Vec<Arc<Pair>> = (0..3).map(|_| Arc::new(Pair::default())).collect();
        let allowed = |pairs: &[Arc<Pair>]| -> Vec<u64> {
            pairs
                .iter()
                .map(|p| p.allowed.load(Ordering::Relaxed))
                .collect()
        };
        let mut released = 0;
        release(&pairs, &mut released, 4);
        assert_eq!((released, allowed(&pairs)), (4, vec![2, 1, 1]));
        release(&pairs, &mut released, 4);
        assert_eq!((released, allowed(&pairs)), (4, vec![2, 1, 1]));
        release(&pairs, &mut released, 9);
        assert_eq!((released, allowed(&pairs)), (9, vec![3, 3, 3]));
    }

    #[test]
    fn placements() {
        use Placement::*;
        assert_eq!(Cross.nodes(5, 1), (0, 0));
        assert_eq!(OneWay.nodes(5, 1), (0, 0));
        assert_eq!(Cross.nodes(0, 2), (0, 1));
        assert_eq!(Cross.nodes(1, 2), (1, 0));
        assert_eq!(Cross.nodes(5, 6), (5, 0));
        assert_eq!(OneWay.nodes(0, 2), (0, 1));
        assert_eq!(OneWay.nodes(1, 2), (0, 1));
        assert_eq!(OneWay.nodes(2, 3), (0, 1));
        assert_eq!(OneWay.nodes(3, 3), (0, 2));
        assert_eq!(Same.nodes(3, 2), (1, 1));
    }

    #[test]
    fn sdp_is_exact() {
        for len in [0, 1, 100, 4999, 5000] {
            assert_eq!(fake_sdp(len).len(), len);
        }
    }
}
