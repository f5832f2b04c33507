//! The `keyledger` binary: parses the command line and hands over to the library's CLI.

fn main() -> std::process::ExitCode {
    keyledger::cli::main()
}
