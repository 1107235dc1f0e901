//! Many connections at once: 50 client threads × 10 open connections × 10 echoes each, on
//! ws and on wss. Bounded in count and time; loopback only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use wsport_conformance::prelude::*;

const THREADS: usize = 50;
const CONNECTIONS_PER_THREAD: usize = 10;
const MESSAGES: usize = 10;

#[test]
fn concurrent_connections() {
    for_each_server("concurrent_connections", |config| {
        let server = Launch::new(config).start()?;
        // One endpoint at a time: 500 connections each, not 1000 together.
        collect(server.endpoints().iter().map(|ep| {
            run_cases_on(
                &server,
                std::slice::from_ref(ep),
                cases![five_hundred_connections],
            )
        }))
    });
}

/// Each thread opens its 10 connections first (so all 500 are open together), then echoes
/// 10 messages on each, then closes them.
fn five_hundred_connections(ep: &Endpoint) -> Outcome {
    let errors = Mutex::new(Vec::new());
    let succeeded = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (errors, succeeded) = (&errors, &succeeded);
            scope.spawn(move || match one_thread(ep, thread) {
                Ok(()) => {
                    succeeded.fetch_add(CONNECTIONS_PER_THREAD, Ordering::Relaxed);
                }
                Err(e) => errors.lock().unwrap_or_else(|e| e.into_inner()).push(e),
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    let total = THREADS * CONNECTIONS_PER_THREAD;
    ensure!(
        errors.is_empty(),
        "{} of {total} connections succeeded in {:.1?}; {} threads failed, first errors:\n    {}",
        succeeded.into_inner(),
        start.elapsed(),
        errors.len(),
        errors
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n    ")
    );
    Ok(())
}

fn one_thread(ep: &Endpoint, thread: usize) -> Outcome {
    let mut clients = Vec::with_capacity(CONNECTIONS_PER_THREAD);
    for i in 0..CONNECTIONS_PER_THREAD {
        let client = ws::connect(ep).map_err(|e| format!("thread {thread} connection {i}: {e}"))?;
        clients.push(client);
    }
    for round in 0..MESSAGES {
        for (i, client) in clients.iter_mut().enumerate() {
            let text = format!("thread {thread} connection {i} message {round}");
            ws::echo(client, Message::text(text))
                .map_err(|e| format!("thread {thread} connection {i}: {e}"))?;
        }
    }
    for client in &mut clients {
        ws::close(client)?;
    }
    Ok(())
}
