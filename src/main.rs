//! The `mailtriage` binary: see the library's documentation for the architecture.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    mailtriage::cli::main()
}

/// glibc gives each thread that allocates under contention an arena of its own (up to 8
/// per core), and keeps what those arenas once held. A backlog allocates on four threads
/// at once (the worker decoding FETCH responses, the parse thread, the triage thread, the
/// store writes). Measured with `bench/imap-vs-imapfilter.sh`'s 10,000 messages
/// (interleaved runs, medians): with one arena they queued for its lock — futex calls
/// under malloc, 2.07 s vs 1.78 s with four arenas, before the allocations per message
/// were cut from 226 to 180; now one arena costs ~0.07 CPU-s (1.55 vs 1.48 s with two)
/// and peaks at 32.4 MiB RSS, two at 34.0, four at 37.0, the default (16 on two cores)
/// higher still. Two it is. `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists; mallopt
        // only changes a malloc tunable (a return value of 0 means it was not applied,
        // which changes nothing else).
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
