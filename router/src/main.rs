//! The `ganglion` binary; the command line itself lives in [`router::cli`] so that the
//! integration tests can build the very same program.
fn main() -> std::process::ExitCode {
    router::cli::main()
}
