//! natview command line: with no subcommand it opens the desktop app (on the dataset given, the
//! last one, or the built-in demo); each subcommand runs one job headless.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(error) = cli::run(args) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
