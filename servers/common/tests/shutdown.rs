//! SIGTERM sets the shutdown flag instead of killing the process.

use wsport_server_common::Shutdown;

#[test]
fn sigterm_requests_shutdown() {
    let shutdown = Shutdown::install().expect("install");
    let seen_by = shutdown.clone();
    assert!(!seen_by.is_requested());
    signal_hook::low_level::raise(signal_hook::consts::SIGTERM).expect("raise");
    // The handler runs synchronously on this thread during raise().
    assert!(seen_by.is_requested());
}
