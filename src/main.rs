//! The `mailtriage` binary: see the library's documentation for the architecture.

fn main() -> std::process::ExitCode {
    mailtriage::cli::main()
}
