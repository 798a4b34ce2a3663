//! The `mailtriage` binary: see the library's documentation for the architecture.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    mailtriage::cli::main()
}

/// glibc gives each thread that allocates under contention an arena of its own, and
/// keeps what those arenas once held: with the runtime's workers and the blocking
/// threads that triage batches, a backlog left the daemon ~5 MiB larger (measured with
/// `bench/imap-vs-imapfilter.sh`: 37–39 MiB peak RSS with the default, 32–33 MiB with
/// one arena, and no difference in CPU time). The daemon allocates from few threads at a
/// time, so one arena suffices. `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists; mallopt
        // only changes a malloc tunable (a return value of 0 means it was not applied,
        // which changes nothing else).
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
