//! Measurements: CPU time of the bench itself (getrusage) and of the server
//! (/proc/PID/stat), the server's RSS (/proc/PID/status), latency histograms,
//! and the report (table on stdout, JSON file).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// User + system CPU seconds used by this process so far.
pub fn self_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// utime + stime of a process (all its threads), in seconds.
pub fn proc_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((utime + stime) as f64 / hz)
}

/// Resident set size of a process, in bytes.
pub fn proc_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Raises RLIMIT_NOFILE as far as allowed (to fs.nr_open when privileged,
/// else the soft limit to the hard limit). Returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let want = (lim.rlim_max as u64).max(nr_open.min(1 << 20));
        let raised = libc::rlimit {
            rlim_cur: want as libc::rlim_t,
            rlim_max: want as libc::rlim_t,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur as u64
    }
}

/// Summed RSS of several processes (None if the list is empty or one is unreadable).
pub fn procs_rss(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| proc_rss(p)).sum()
}

/// Summed CPU seconds of several processes (None if the list is empty or one is unreadable).
pub fn procs_cpu(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| proc_cpu(p)).sum()
}

/// Busy CPU seconds of the whole machine (all cores, /proc/stat), including
/// interrupt and softirq time that no process is charged for.
pub fn machine_busy() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(busy as f64 / hz)
}

/// CPU usage of the bench and (optionally) the server over an interval.
pub struct CpuWindow {
    pids: Vec<u32>,
    wall: Instant,
    own: f64,
    server: Option<f64>,
    machine: Option<f64>,
}

pub struct CpuUsage {
    pub wall: f64,
    pub own_secs: f64,
    pub server_secs: Option<f64>,
    /// Busy time of the machine not charged to the server or the bench:
    /// other processes (a build, a test run) plus unattributed softirq time.
    pub other_secs: Option<f64>,
}

impl CpuWindow {
    pub fn start(pids: &[u32]) -> Self {
        CpuWindow {
            pids: pids.to_vec(),
            wall: Instant::now(),
            own: self_cpu(),
            server: procs_cpu(pids),
            machine: machine_busy(),
        }
    }

    pub fn stop(&self) -> CpuUsage {
        let wall = self.wall.elapsed().as_secs_f64();
        let own_secs = self_cpu() - self.own;
        let server_secs = match (procs_cpu(&self.pids), self.server) {
            (Some(now), Some(then)) => Some(now - then),
            _ => None,
        };
        let other_secs = match (machine_busy(), self.machine) {
            (Some(now), Some(then)) => {
                Some((now - then - own_secs - server_secs.unwrap_or(0.0)).max(0.0))
            }
            _ => None,
        };
        CpuUsage {
            wall,
            own_secs,
            server_secs,
            other_secs,
        }
    }
}

impl CpuUsage {
    /// Adds `server_cpu_pct` / `bench_cpu_pct` (100 = one core busy).
    pub fn report(&self, r: &mut Report, what: &str) {
        if let Some(s) = self.server_secs {
            r.metric(
                "server_cpu_pct",
                &format!("server CPU ({what})"),
                100.0 * s / self.wall,
                "%",
                Better::Info,
            );
        }
        r.metric(
            "bench_cpu_pct",
            &format!("load generator CPU ({what})"),
            100.0 * self.own_secs / self.wall,
            "%",
            Better::Info,
        );
        if let Some(o) = self.other_secs {
            r.metric(
                "other_cpu_pct",
                &format!("other CPU on the machine ({what})"),
                100.0 * o / self.wall,
                "%",
                Better::Info,
            );
        }
    }
}

/// Latencies in nanoseconds, 1 ns .. 10 min, 3 significant digits.
/// The first error any task of a scenario hit (the others are only counted).
#[derive(Default)]
pub struct FirstError(std::sync::Mutex<Option<String>>);

impl FirstError {
    pub fn record(&self, e: String) {
        self.0.lock().expect("lock").get_or_insert(e);
    }

    /// Fails `report` when `failed` > 0, naming the first error.
    pub fn fail_if(&self, report: &mut Report, failed: u64, what: &str) {
        if failed > 0 {
            let first = self.0.lock().expect("lock").clone().unwrap_or_default();
            report.fail(format!("{failed} {what} failed (first: {first})"));
        }
    }
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

pub type SharedHist = Mutex<Histogram<u64>>;

pub fn shared_hist() -> SharedHist {
    Mutex::new(new_hist())
}

pub fn record(h: &SharedHist, d: Duration) {
    let ns = (d.as_nanos() as u64).clamp(1, 600_000_000_000);
    h.lock().expect("histogram lock").saturating_record(ns);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Better {
    Higher,
    Lower,
    Info,
}

impl Better {
    fn as_str(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
            Better::Info => "info",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "higher" => Better::Higher,
            "lower" => Better::Lower,
            _ => Better::Info,
        }
    }
}

pub struct Metric {
    pub key: String,
    pub label: String,
    pub value: f64,
    pub unit: String,
    pub better: Better,
}

/// Results of one scenario run.
pub struct Report {
    pub scenario: String,
    pub params: Vec<(String, Value)>,
    pub metrics: Vec<Metric>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Self {
        Report {
            scenario: scenario.to_string(),
            params: Vec::new(),
            metrics: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn param(&mut self, key: &str, value: impl Into<Value>) {
        self.params.push((key.to_string(), value.into()));
    }

    pub fn metric(&mut self, key: &str, label: &str, value: f64, unit: &str, better: Better) {
        self.metrics.push(Metric {
            key: key.to_string(),
            label: label.to_string(),
            value,
            unit: unit.to_string(),
            better,
        });
    }

    /// The server's RSS when the measured phase ended (if its PID is known).
    pub fn server_rss_at_end(&mut self, rss: Option<u64>) {
        if let Some(rss) = rss {
            self.metric(
                "server_rss_mb",
                "server RSS at the end",
                rss as f64 / 1e6,
                "MB",
                Better::Lower,
            );
        }
    }

    pub fn fail(&mut self, why: String) {
        self.failures.push(why);
    }

    /// p50/p99/p99.9/max (+ count) of a latency histogram, in milliseconds.
    pub fn latency(&mut self, key: &str, label: &str, h: &Histogram<u64>) {
        self.metric(
            &format!("{key}_count"),
            &format!("{label}: samples"),
            h.len() as f64,
            "",
            Better::Info,
        );
        if h.is_empty() {
            return;
        }
        for (suffix, q) in [("p50", 0.50), ("p99", 0.99), ("p999", 0.999)] {
            let name = if suffix == "p999" { "p99.9" } else { suffix };
            self.metric(
                &format!("{key}_{suffix}_ms"),
                &format!("{label}: {name}"),
                h.value_at_quantile(q) as f64 / 1e6,
                "ms",
                Better::Lower,
            );
        }
        self.metric(
            &format!("{key}_max_ms"),
            &format!("{label}: max"),
            h.max() as f64 / 1e6,
            "ms",
            Better::Lower,
        );
    }

    pub fn print_table(&self) {
        let mut out = String::new();
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect();
        let _ = writeln!(out, "\n{} ({})", self.scenario, params.join(" "));
        let width = self
            .metrics
            .iter()
            .map(|m| m.label.chars().count())
            .max()
            .unwrap_or(10);
        let _ = writeln!(out, "| {:width$} | {:>16} |", "metric", "value");
        let _ = writeln!(out, "|{}|{}|", "-".repeat(width + 2), "-".repeat(18));
        for m in &self.metrics {
            let v = format!("{} {}", fmt_value(m.value), m.unit);
            let _ = writeln!(out, "| {:width$} | {:>16} |", m.label, v.trim_end());
        }
        for f in &self.failures {
            let _ = writeln!(out, "FAILED: {f}");
        }
        print!("{out}");
    }

    pub fn to_json(&self) -> Value {
        let params: serde_json::Map<String, Value> = self.params.iter().cloned().collect();
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                json!({
                    "key": m.key,
                    "label": m.label,
                    "value": m.value,
                    "unit": m.unit,
                    "better": m.better.as_str(),
                })
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "params": params,
            "metrics": metrics,
            "failures": self.failures,
        })
    }

    pub fn from_json(v: &Value) -> Option<Report> {
        let mut r = Report::new(v.get("scenario")?.as_str()?);
        if let Some(p) = v.get("params").and_then(Value::as_object) {
            r.params = p.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        for m in v.get("metrics")?.as_array()? {
            r.metric(
                m.get("key")?.as_str()?,
                m.get("label")?.as_str()?,
                m.get("value")?.as_f64()?,
                m.get("unit").and_then(Value::as_str).unwrap_or(""),
                Better::parse(m.get("better").and_then(Value::as_str).unwrap_or("info")),
            );
        }
        if let Some(f) = v.get("failures").and_then(Value::as_array) {
            r.failures = f
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
        }
        Some(r)
    }
}

pub fn fmt_value(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || v.fract() == 0.0 {
        let s = format!("{:.0}", v);
        // Thousands separators for readability.
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{sign}{grouped}")
    } else if v.abs() >= 10.0 {
        format!("{:.1}", v)
    } else if v.abs() >= 0.1 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    }
}

/// `rtcio-bench table`: one row per metric, one column per labelled set of
/// result files, plus the ratio of the second column to the first.
pub fn print_comparison(columns: &[(String, Vec<Report>)]) {
    if columns.is_empty() {
        return;
    }
    type Row = (String, String, String, Better, Vec<Option<f64>>);
    let mut rows: Vec<Row> = Vec::new();
    for report in &columns[0].1 {
        for m in &report.metrics {
            let values = columns
                .iter()
                .map(|(_, reports)| {
                    reports
                        .iter()
                        .find(|r| r.scenario == report.scenario)
                        .and_then(|r| r.metrics.iter().find(|x| x.key == m.key))
                        .map(|x| x.value)
                })
                .collect();
            rows.push((
                report.scenario.clone(),
                m.label.clone(),
                m.unit.clone(),
                m.better,
                values,
            ));
        }
    }
    let mut header = vec!["scenario".to_string(), "metric".to_string()];
    header.push(columns[0].0.clone());
    if columns.len() > 1 {
        header.push(columns[1].0.clone());
        header.push(format!("ratio {}/{}", columns[1].0, columns[0].0));
    }
    for (label, _) in columns.iter().skip(2) {
        header.push(label.clone());
    }
    let mut table: Vec<Vec<String>> = vec![header];
    for (scenario, label, unit, better, values) in rows {
        let cell = |v: Option<f64>| {
            v.map_or("-".to_string(), |v| {
                format!("{} {}", fmt_value(v), unit).trim_end().to_string()
            })
        };
        let arrow = match better {
            Better::Higher => " (↑)",
            Better::Lower => " (↓)",
            Better::Info => "",
        };
        let mut row = vec![scenario, format!("{label}{arrow}")];
        row.push(cell(values[0]));
        if values.len() > 1 {
            row.push(cell(values[1]));
            row.push(match (values[0], values[1]) {
                (Some(a), Some(b)) if a != 0.0 => format!("{:.2}x", b / a),
                _ => "-".into(),
            });
        }
        for v in values.iter().skip(2) {
            row.push(cell(*v));
        }
        table.push(row);
    }
    let ncol = table[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            table
                .iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &Vec<String>| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pad = widths[i] - s.chars().count();
                if i < 2 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    println!("{}", line(&table[0]));
    println!(
        "|{}|",
        widths
            .iter()
            .enumerate()
            .map(|(i, w)| if i < 2 {
                format!(":{}", "-".repeat(w + 1))
            } else {
                format!("{}:", "-".repeat(w + 1))
            })
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in &table[1..] {
        println!("{}", line(r));
    }
    for (label, reports) in columns {
        for r in reports {
            for f in &r.failures {
                println!("{label} {}: FAILED: {f}", r.scenario);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_value(95123.4), "95,123");
        assert_eq!(fmt_value(12.34), "12.3");
        assert_eq!(fmt_value(0.5), "0.50");
        assert_eq!(fmt_value(3.0), "3");
    }

    #[test]
    fn json_roundtrip() {
        let mut r = Report::new("relay");
        r.param("pairs", 4);
        r.metric("x", "X", 1.5, "ms", Better::Lower);
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.metrics[0].key, "x");
        assert_eq!(back.metrics[0].better, Better::Lower);
    }

    #[test]
    fn own_process_stats() {
        let pid = std::process::id();
        assert!(proc_rss(pid).unwrap() > 0);
        assert!(proc_cpu(pid).is_some());
        assert!(self_cpu() >= 0.0);
    }
}
