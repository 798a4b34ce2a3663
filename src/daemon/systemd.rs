//! systemd integration without a library: `sd_notify` is one datagram to
//! `$NOTIFY_SOCKET` (READY=1, STATUS=…, WATCHDOG=1, RELOADING=1, STOPPING=1), and the
//! watchdog interval comes from `$WATCHDOG_USEC`.

use std::time::Duration;

/// Sends a notification to systemd; false when not running under systemd (or it failed).
pub fn notify(state: &str) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::net::UnixDatagram;
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return false;
        };
        let Ok(sock) = UnixDatagram::unbound() else {
            return false;
        };
        let path = path.to_string_lossy().into_owned();
        if let Some(name) = path.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                return std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
                    .is_ok();
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = name;
                return false;
            }
        }
        sock.send_to(state.as_bytes(), &path).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        false
    }
}

/// How often to ping the watchdog (half its timeout), when systemd asked for one. A
/// value that cannot be read is logged: systemd would otherwise kill us for silence.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    match watchdog(usec.as_deref(), pid.as_deref(), std::process::id()) {
        Ok(every) => every,
        Err(e) => {
            tracing::error!("{e}; not pinging the watchdog");
            None
        }
    }
}

/// The watchdog interval `$WATCHDOG_USEC` and `$WATCHDOG_PID` ask of process `me`.
fn watchdog(usec: Option<&str>, pid: Option<&str>, me: u32) -> Result<Option<Duration>, String> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    let usec: u64 = usec
        .parse()
        .map_err(|e| format!("WATCHDOG_USEC={usec:?} is not a number of microseconds ({e})"))?;
    if let Some(pid) = pid {
        let pid: u32 = pid
            .parse()
            .map_err(|e| format!("WATCHDOG_PID={pid:?} is not a process id ({e})"))?;
        // Inherited from a parent the watchdog is meant for.
        if pid != me {
            return Ok(None);
        }
    }
    Ok((usec > 0).then(|| Duration::from_micros(usec / 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_interval_is_half_the_timeout_and_bad_values_are_errors() {
        /// `$WATCHDOG_USEC`, `$WATCHDOG_PID`, and the interval or the error's beginning.
        type Case = (Option<&'static str>, Option<&'static str>, Want);
        type Want = Result<Option<Duration>, &'static str>;
        let s = |secs: u64| Ok(Some(Duration::from_secs(secs)));
        let cases: [Case; 8] = [
            (None, None, Ok(None)),
            (Some("60000000"), None, s(30)),
            (Some("60000000"), Some("42"), s(30)),
            (Some("60000000"), Some("7"), Ok(None)),
            (Some("0"), None, Ok(None)),
            (
                Some("60s"),
                None,
                Err("WATCHDOG_USEC=\"60s\" is not a number"),
            ),
            (Some(""), None, Err("WATCHDOG_USEC=\"\" is not a number")),
            (
                Some("60000000"),
                Some("self"),
                Err("WATCHDOG_PID=\"self\" is not a process id"),
            ),
        ];
        for (usec, pid, want) in cases {
            let got = watchdog(usec, pid, 42);
            match (&got, want) {
                (Ok(g), Ok(w)) => assert_eq!(*g, w, "{usec:?} {pid:?}"),
                (Err(g), Err(w)) => assert!(g.starts_with(w), "{usec:?} {pid:?}: {g}"),
                _ => panic!("{usec:?} {pid:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
