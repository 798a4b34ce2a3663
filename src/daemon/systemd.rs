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

/// How often to ping the watchdog (half its timeout), when systemd asked for one.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
