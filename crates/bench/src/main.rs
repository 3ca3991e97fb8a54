//! `rtcio-bench`: a load generator for rtc.io signaling servers. It speaks
//! Engine.IO 4 / Socket.IO 5 over WebSocket itself (no socket.io-client), one
//! task per simulated client, on a single-threaded runtime by default, and
//! reports its own CPU time next to the server's so a saturated generator is
//! visible. See BENCHMARKS.md at the repository root.

mod call;
mod chat;
mod churn;
mod relay;
mod rooms;
mod sio;
mod stats;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::sio::{classify, Client, Incoming, Target};
use crate::stats::Report;

#[derive(Parser)]
#[command(
    name = "rtcio-bench",
    version,
    about = "Load generator for rtc.io signaling servers (Socket.IO 5 over WebSocket)"
)]
struct Cli {
    /// Server host.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, global = true, default_value_t = 3001)]
    port: u16,
    /// Several servers on `--host` (the nodes of a cluster), e.g. `3201,3202`:
    /// client sockets are spread over them (see each scenario's placement).
    #[arg(long, global = true, value_delimiter = ',', conflicts_with = "urls")]
    ports: Vec<u16>,
    /// Several servers as `[http://]HOST:PORT`, comma-separated (instead of
    /// `--host`/`--port`/`--ports`).
    #[arg(long, global = true, value_delimiter = ',')]
    urls: Vec<String>,
    /// Server process id(s), comma-separated: report their CPU time
    /// (/proc/PID/stat) and RSS (/proc/PID/status), summed (e.g. every node
    /// of a cluster and its Redis).
    #[arg(long, global = true, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Server name recorded in the results (e.g. "node", "rust").
    #[arg(long, global = true)]
    label: Option<String>,
    /// Scenario name recorded in the results (default: the subcommand).
    #[arg(long, global = true)]
    name: Option<String>,
    /// Source addresses to bind client sockets to: a count N (127.0.0.1..N;
    /// 0 = automatic: one per 20,000 sockets; needs 127.x server addresses)
    /// or a comma-separated list, e.g. `127.0.0.2,127.0.0.3` (so that several
    /// generator processes use distinct ones).
    #[arg(long, global = true, default_value = "0")]
    source_addrs: sio::Sources,
    /// Worker threads of the load generator (1 = current-thread runtime).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// Tiny sizes (about 2 s per scenario) to prove the scenario works.
    #[arg(long, global = true)]
    smoke: bool,
    /// No progress bar.
    #[arg(long, global = true)]
    quiet: bool,
    /// Connect with this token in the Socket.IO `auth` payload (`{ "token": ... }`),
    /// to measure a server with authentication on.
    #[arg(long, global = true, env = "RTCIO_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pairs relaying `#rtcio:message` envelopes: throughput and latency.
    Relay(relay::RelayArgs),
    /// Sockets joining rooms: join-to-init-offer latency, idle RSS per socket.
    Rooms(rooms::RoomsArgs),
    /// Call set-up in rooms: offer/answer/candidates for every pair.
    Call(call::CallArgs),
    /// Connect/join/leave/disconnect cycles: rate and server RSS growth.
    Churn(churn::ChurnArgs),
    /// Server-routed chat: messages stored and fanned out per second, ack latency.
    Chat(chat::ChatArgs),
    /// Print a comparison table of JSON result files.
    Table(TableArgs),
}

#[derive(Args)]
struct TableArgs {
    /// Columns as LABEL=FILE[,FILE...]; the ratio column is column 2 / column 1.
    #[arg(required = true)]
    columns: Vec<String>,
}

/// What every scenario gets.
pub struct Ctx {
    pub target: Arc<Target>,
    /// Processes whose CPU and RSS are reported (summed); empty: none.
    pub server_pids: Vec<u32>,
    pub smoke: bool,
    pub quiet: bool,
}

impl Ctx {
    /// A timed scenario's size: as asked, or tiny (at most 4, 1.5 s after a
    /// 0.5 s warm-up) for a smoke run.
    pub fn timed(
        &self,
        count: usize,
        duration: Duration,
        warmup: Duration,
    ) -> (usize, Duration, Duration) {
        if self.smoke {
            (
                count.min(4),
                Duration::from_millis(1500),
                Duration::from_millis(500),
            )
        } else {
            (count, duration, warmup)
        }
    }

    pub fn bar(&self, len: u64, template: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// Summed RSS of the server processes (None if any is unreadable or none given).
    pub fn rss(&self) -> Option<u64> {
        stats::procs_rss(&self.server_pids)
    }
}

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Sends `join-room` and waits for `join-ok` (answering pings, ignoring the rest).
pub async fn join_room(c: &mut Client, room: &str, name: &str) -> Result<(), String> {
    let payload = format!(
        "{{\"roomId\":{},\"name\":{}}}",
        sio::json_escape(room),
        sio::json_escape(name)
    );
    c.ws.send_event("join-room", &payload).await?;
    wait_event(c, "join-ok").await
}

/// Reads until event `name` arrives (answering pings, ignoring other messages).
pub async fn wait_event(c: &mut Client, name: &str) -> Result<(), String> {
    loop {
        let text = c.ws.recv().await?;
        match classify(text) {
            Incoming::Ping => c.ws.send("3").await?,
            Incoming::Event(n, _) if n == name => return Ok(()),
            Incoming::Event("join-error", rest) | Incoming::Event("error", rest) => {
                return Err(format!("server refused: {rest:.120}"))
            }
            _ => {}
        }
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

/// `[http://|ws://]HOST:PORT[/...]` → (host, port).
fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .split_once("://")
        .map_or(url, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or("");
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("no port in {url:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().map_err(|_| format!("bad port in {url:?}"))?;
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok((host.to_string(), port))
}

/// The servers to connect to: `--urls`, else `--host` with `--ports`, else `--host`/`--port`.
fn servers(cli: &Cli) -> Result<Vec<(SocketAddr, String)>, String> {
    let pairs: Vec<(String, u16)> = if !cli.urls.is_empty() {
        cli.urls
            .iter()
            .map(|u| parse_url(u))
            .collect::<Result<_, _>>()?
    } else if !cli.ports.is_empty() {
        cli.ports.iter().map(|p| (cli.host.clone(), *p)).collect()
    } else {
        vec![(cli.host.clone(), cli.port)]
    };
    pairs
        .into_iter()
        .map(|(h, p)| Ok((resolve(&h, p)?, h)))
        .collect()
}

fn table(args: &TableArgs) -> Result<(), String> {
    let mut columns = Vec::new();
    for col in &args.columns {
        let (label, files) = col
            .split_once('=')
            .ok_or_else(|| format!("expected LABEL=FILE[,FILE...], got {col:?}"))?;
        let mut reports = Vec::new();
        for file in files.split(',').filter(|f| !f.is_empty()) {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("skipping {file}: {e}");
                    continue;
                }
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
            reports.push(Report::from_json(&value).ok_or_else(|| format!("{file}: not a result"))?);
        }
        columns.push((label.to_string(), reports));
    }
    stats::print_comparison(&columns);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Table(args) = &cli.cmd {
        return match table(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let nofile = stats::raise_nofile();
    let nodes = match servers(&cli) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sockets = match &cli.cmd {
        Cmd::Relay(a) => 2 * a.pairs,
        Cmd::Rooms(a) => a.sockets,
        Cmd::Call(a) => 4 * a.concurrency,
        Cmd::Churn(a) => a.concurrency * 2,
        Cmd::Chat(a) => a.rooms * a.room_size,
        Cmd::Table(_) => 0,
    };
    let read_buffer = match &cli.cmd {
        Cmd::Relay(_) => 64 * 1024,
        Cmd::Call(_) => 16 * 1024,
        _ => 4 * 1024,
    };
    let mut target = Target::new(nodes, &cli.source_addrs, sockets, read_buffer);
    if let Some(token) = &cli.token {
        target.set_token(token);
    }
    let target = Arc::new(target);
    if (sockets as u64) + 64 > nofile {
        eprintln!("warning: open-file limit {nofile} is below the {sockets} sockets needed");
    }
    let ctx = Ctx {
        target,
        server_pids: cli.server_pid.clone(),
        smoke: cli.smoke,
        quiet: cli.quiet,
    };
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let result = runtime.block_on(async {
        match &cli.cmd {
            Cmd::Relay(a) => relay::run(&ctx, a).await,
            Cmd::Rooms(a) => rooms::run(&ctx, a).await,
            Cmd::Call(a) => call::run(&ctx, a).await,
            Cmd::Churn(a) => churn::run(&ctx, a).await,
            Cmd::Chat(a) => chat::run(&ctx, a).await,
            Cmd::Table(_) => unreachable!(),
        }
    });
    // Client tasks may still hold sockets: do not wait for them.
    runtime.shutdown_background();
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(name) = &cli.name {
        report.scenario = name.clone();
    }
    report.params.insert(
        0,
        (
            "server".into(),
            cli.label
                .clone()
                .unwrap_or_else(|| ctx.target.node_list())
                .into(),
        ),
    );
    report.param("nodes", ctx.target.node_count() as u64);
    report.param("threads", cli.threads as u64);
    report.param("source_addrs", ctx.target.source_count() as u64);
    report.print_table();
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&report.to_json()).expect("json");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:3201").unwrap(),
            ("127.0.0.1".into(), 3201)
        );
        assert_eq!(
            parse_url("127.0.0.2:80/socket.io/").unwrap(),
            ("127.0.0.2".into(), 80)
        );
        assert_eq!(parse_url("ws://[::1]:3001").unwrap(), ("::1".into(), 3001));
        assert!(parse_url("http://localhost").is_err());
    }

    #[test]
    fn source_addrs() {
        use sio::Sources;
        assert_eq!("0".parse::<Sources>().unwrap(), Sources::Auto);
        assert_eq!("4".parse::<Sources>().unwrap(), Sources::Count(4));
        assert_eq!(
            "127.0.0.2,127.0.0.3".parse::<Sources>().unwrap(),
            Sources::List(vec![[127, 0, 0, 2].into(), [127, 0, 0, 3].into()])
        );
        assert!("127.0.0.2,x".parse::<Sources>().is_err());
    }
}
