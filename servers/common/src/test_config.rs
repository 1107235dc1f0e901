//! For the unit tests: the configuration a server builds from its default flags.

use clap::Parser;

use crate::cli::ServerArgs;
use crate::config::ServerConfig;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    server: ServerArgs,
}

/// `--listen ws://127.0.0.1:0`, every other flag at its default.
pub fn default_config() -> ServerConfig {
    let flags = Flags::parse_from(["test", "--listen", "ws://127.0.0.1:0"]);
    flags.server.into_config().expect("default flags are valid")
}
