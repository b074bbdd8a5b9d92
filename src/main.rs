//! natview command line: with no subcommand it runs the main job on a dataset (the built-in
//! demo by default); each subcommand runs one job headless.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(error) = cli::run(args) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
