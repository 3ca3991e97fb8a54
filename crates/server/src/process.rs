//! The process's own figures for `/metrics` (the standard `process_*`
//! names Prometheus client libraries export), read from `/proc` at scrape
//! time. Other systems get only what `getrusage` and `getrlimit` say.

use std::fmt::Write;

/// Appends the process metrics in Prometheus text format to `out`.
pub fn render(out: &mut String) {
    let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    if let Some(cpu) = cpu_seconds() {
        gauge(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds.",
            "counter",
            cpu,
        );
    }
    #[cfg(target_os = "linux")]
    {
        if let Some((virt, rss)) = linux::memory() {
            gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                "gauge",
                rss as f64,
            );
            gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                "gauge",
                virt as f64,
            );
        }
        if let Some(fds) = linux::open_fds() {
            gauge(
                "process_open_fds",
                "Number of open file descriptors.",
                "gauge",
                fds as f64,
            );
        }
        if let Some(start) = linux::start_time_seconds() {
            gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                "gauge",
                start,
            );
        }
    }
    if let Some(max) = crate::capacity::current_soft_limit() {
        gauge(
            "process_max_fds",
            "Maximum number of open file descriptors (the soft limit).",
            "gauge",
            max as f64,
        );
    }
}

#[cfg(unix)]
fn cpu_seconds() -> Option<f64> {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

#[cfg(not(unix))]
fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(target_os = "linux")]
mod linux {
    fn page_size() -> u64 {
        // SAFETY: sysconf has no memory effects.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            size as u64
        } else {
            4096
        }
    }

    /// (virtual, resident) bytes from `/proc/self/statm`.
    pub fn memory() -> Option<(u64, u64)> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let mut fields = statm.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (virt, rss) = (fields.next()??, fields.next()??);
        Some((virt * page_size(), rss * page_size()))
    }

    pub fn open_fds() -> Option<usize> {
        Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
    }

    /// Boot time (`/proc/stat` btime) plus the process's start in clock ticks
    /// (`/proc/self/stat` field 22).
    pub fn start_time_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let after = &stat[stat.rfind(')')? + 1..];
        let ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
        let btime: f64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        // SAFETY: sysconf has no memory effects.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (hz > 0).then(|| btime + ticks / hz as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn renders_the_standard_process_metrics() {
        let mut out = String::new();
        render(&mut out);
        assert!(value(&out, "process_cpu_seconds_total").unwrap() >= 0.0);
        assert!(value(&out, "process_max_fds").unwrap() > 0.0);
        if cfg!(target_os = "linux") {
            assert!(value(&out, "process_resident_memory_bytes").unwrap() > 1e5);
            assert!(value(&out, "process_open_fds").unwrap() >= 3.0);
            let start = value(&out, "process_start_time_seconds").unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            assert!(
                start <= now + 2.0 && start > now - 86_400.0,
                "{start} vs {now}"
            );
        }
    }
}
