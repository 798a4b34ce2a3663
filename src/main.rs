//! The `mailtriage` binary: see the library's documentation for the architecture.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    mailtriage::cli::main()
}

/// glibc gives each thread that allocates under contention an arena of its own (up to 8
/// per core), and keeps what those arenas once held. A backlog allocates on four threads
/// at once (the session's worker decoding FETCH responses, the parse thread, the triage
/// thread, the store writes): with one arena they queue for its lock, with one each they
/// do not. Measured with `bench/imap-vs-imapfilter.sh`'s 10,000 messages: one arena cost
/// ~0.15–0.3 s of a ~2 s run in lock waits (futex calls), four arenas raised peak RSS by
/// ~2 MiB over one (the batches in flight keep only the new text of their messages);
/// the default (16 on two cores) by ~5 MiB, for nothing measurable. `MALLOC_ARENA_MAX`
/// in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists; mallopt
        // only changes a malloc tunable (a return value of 0 means it was not applied,
        // which changes nothing else).
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}
