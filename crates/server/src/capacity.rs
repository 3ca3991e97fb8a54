//! Capacity: every connection holds a file descriptor, and most Linux
//! systems (and systemd services) start processes with a soft limit of 1024.
//! Left there, the server silently stops accepting at about a thousand
//! clients. Like nginx, Redis and Go's runtime, we raise the soft limit to
//! the hard limit at start-up and say what capacity that gives.

// `rlim_t` is `u64` here but not on every platform: the casts stay.
#![allow(clippy::unnecessary_cast)]

/// Descriptors the process uses for itself (stdio, the runtime's epoll and
/// wake-up handles, listeners, files it reads): not available to clients.
const RESERVED: u64 = 32;

/// Below this many descriptors the log suggests raising the hard limit.
const SMALL: u64 = 4096;

/// The open-file limit before and after start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit the process was started with.
    pub before: u64,
    /// Soft limit now in force.
    pub soft: u64,
    /// Hard limit (the ceiling for the soft one).
    pub hard: u64,
}

impl NofileLimit {
    /// Roughly how many client connections fit (a WebSocket holds one
    /// descriptor; a long-polling client up to two while it sends).
    pub fn sockets(&self) -> u64 {
        self.soft.saturating_sub(RESERVED)
    }
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit (capped by the
/// kernel's `fs.nr_open`, which `setrlimit` refuses to exceed).
#[cfg(unix)]
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur as u64;
    let mut target = lim.rlim_max;
    if let Some(nr_open) = kernel_ceiling() {
        target = target.min(nr_open as libc::rlim_t);
    }
    if target > lim.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim.rlim_cur = target;
    }
    Ok(NofileLimit {
        before,
        soft: lim.rlim_cur as u64,
        hard: lim.rlim_max as u64,
    })
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    Err(std::io::Error::other("no open-file limit to raise here"))
}

/// The kernel's per-process maximum (Linux `fs.nr_open`); macOS has its own
/// (`OPEN_MAX`, 10240) for an unlimited hard limit.
#[cfg(unix)]
fn kernel_ceiling() -> Option<u64> {
    if cfg!(target_os = "macos") {
        return Some(10240);
    }
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The current soft limit (for messages about exhausted descriptors).
pub fn current_soft_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            return Some(lim.rlim_cur as u64);
        }
    }
    None
}

/// Raises the limit and logs the resulting capacity (a warning when it is small).
pub fn raise_and_report() {
    match raise_nofile_limit() {
        Ok(limit) => {
            if limit.soft > limit.before {
                tracing::info!(
                    before = limit.before,
                    soft = limit.soft,
                    hard = limit.hard,
                    "open-file limit raised from {} to {}: room for about {} sockets",
                    limit.before,
                    limit.soft,
                    limit.sockets()
                );
            } else {
                tracing::info!(
                    soft = limit.soft,
                    hard = limit.hard,
                    "open-file limit {}: room for about {} sockets",
                    limit.soft,
                    limit.sockets()
                );
            }
            if limit.soft < SMALL {
                tracing::warn!(
                    "the open-file limit ({}) caps this server at about {} sockets; raise the hard \
                     limit (systemd: LimitNOFILE=1048576; shell: ulimit -Hn)",
                    limit.soft,
                    limit.sockets()
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit_and_is_idempotent() {
        let first = raise_nofile_limit().unwrap();
        assert!(first.soft >= first.before);
        assert!(first.soft <= first.hard);
        let again = raise_nofile_limit().unwrap();
        assert_eq!(again.before, first.soft);
        assert_eq!(again.soft, first.soft);
        assert_eq!(current_soft_limit(), Some(first.soft));
    }

    #[test]
    fn capacity_leaves_room_for_the_process_itself() {
        let l = NofileLimit {
            before: 1024,
            soft: 1024,
            hard: 1024,
        };
        assert_eq!(l.sockets(), 1024 - RESERVED);
    }
}
