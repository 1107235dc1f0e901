use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = wsport_autobahn::cli::Cli::parse();
    match wsport_autobahn::run(cli) {
        Ok(wsport_autobahn::Outcome::Passed) => ExitCode::SUCCESS,
        Ok(wsport_autobahn::Outcome::Failed) => ExitCode::from(1),
        Ok(wsport_autobahn::Outcome::NotTested) => ExitCode::from(2),
        Err(e) => {
            eprintln!("wsport-autobahn: {e:#}");
            ExitCode::from(2)
        }
    }
}
