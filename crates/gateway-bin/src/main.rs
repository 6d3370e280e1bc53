//! `registry-gateway`: a reverse proxy in front of an OCI registry that refuses pushes
//! exceeding image size and tag count limits. The work is done by the library
//! ([`gateway_bin::run`]); this reads the command line and sets up logging.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gateway_bin::Cli::parse();
    gateway_bin::init_logging(&cli);
    gateway_bin::run(cli)
}
