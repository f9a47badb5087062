//! The `cabal-triage` binary: parses the command line and hands over to `cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    cabal_triage::cli::main()
}
