//! Deadlines without a timer per message: a connection's idle timeout, heartbeat and write
//! timeout move with every message, and a server that re-arms a runtime timer for each pays
//! a timer-wheel insert and removal per message — a cost the benchmark would then measure
//! instead of the IO model. Every server counts the timers its connections arm
//! (`timer_arms` in the stats lines); 10,000 echoes on one connection must arm a handful.

use wsport_conformance::prelude::*;

const ECHOES: u64 = 10_000;

/// The handshake timeout's arm, and the re-arms should the run outlast the handshake timeout
/// (10 s) or a write timeout period (30 s) on a slow machine; one per message is thousands.
const HANDFUL: u64 = 5;

#[test]
fn deadlines_without_a_timer_per_message() {
    for_each_server("deadlines_without_a_timer_per_message", |config| {
        let server = Launch::new(config).args(&["--stats", "100ms"]).start()?;
        run_server_case(
            &server,
            "ten_thousand_echoes_arm_a_handful_of_timers",
            ten_thousand_echoes_arm_a_handful_of_timers,
        )
    });
}

/// One connection per endpoint (ws, then wss), one at a time, so that the difference
/// between two stats lines is that connection's count alone.
fn ten_thousand_echoes_arm_a_handful_of_timers(server: &Server) -> Outcome {
    for ep in server.endpoints() {
        // With nothing open, no other connection's timer can land in the count.
        let before = next_stats(server, "no connection open", |s| s.open == 0)?;
        let mut client = ws::connect(ep)?;
        for i in 0..ECHOES {
            ws::echo(&mut client, Message::binary(i.to_le_bytes().to_vec()))
                .map_err(|e| format!("{ep}: echo {i}: {e}"))?;
        }
        let echoed = before.messages_in + ECHOES;
        let after = next_stats(server, "the echoes counted", |s| s.messages_in >= echoed)?;
        let arms = after.timer_arms.saturating_sub(before.timer_arms);
        ensure!(
            arms <= HANDFUL,
            "{ep}: {ECHOES} echoes on one connection armed {arms} runtime timers (timer_arms \
             {} -> {} in the stats lines); expected at most {HANDFUL}: deadlines must not arm a \
             timer per message",
            before.timer_arms,
            after.timer_arms
        );
        ws::close(&mut client)?;
    }
    Ok(())
}

/// The counters of one stats line.
struct Counts {
    open: u64,
    messages_in: u64,
    timer_arms: u64,
}

/// The first stats line printed from now on whose counts satisfy `wanted`.
fn next_stats(
    server: &Server,
    what: &str,
    wanted: impl Fn(&Counts) -> bool,
) -> Result<Counts, String> {
    let from = server.stdout_lines().len();
    let limit = within(Duration::from_secs(3));
    let found = server.wait_stdout(from, limit, |line| {
        let stats = json_line(line, "stats")?;
        let field = |name: &str| stats.get(name).and_then(serde_json::Value::as_u64);
        let Some(timer_arms) = field("timer_arms") else {
            return Some(Err(format!(
                "expected a stats line with a \"timer_arms\" count; got {line}"
            )));
        };
        let counts = Counts {
            open: field("connections_open")?,
            messages_in: field("messages_in")?,
            timer_arms,
        };
        wanted(&counts).then_some(Ok(counts))
    });
    found.unwrap_or_else(|| {
        Err(format!(
            "with --stats 100ms: expected a stats line with {what} within {limit:?}"
        ))
    })
}
