//! The `mwsync` binary: parses the command line, loads and validates configuration, sets up
//! logging, and maps errors to exit codes. It must hold no sync logic; everything else lives
//! in the engine library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Before the runtime starts any thread, as glibc's and libgit2's global options require.
    mwsync::memory::bound_process_memory();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mwsync: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(cli::dispatch(args));
    ExitCode::from(code)
}
