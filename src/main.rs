//! natview command line: with no subcommand it opens the desktop app (on the dataset given, the
//! last one, or the built-in demo); each subcommand runs one job headless. Everything it does
//! lives in the natview crates; this is the thin binary of `natview-cli`.

#![forbid(unsafe_code)]

fn main() {
    natview_cli::main()
}
