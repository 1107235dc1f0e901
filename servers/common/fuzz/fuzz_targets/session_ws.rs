//! Arbitrary client bytes through a plain ws server session (`Session::handle_read`) with every
//! limit small, cut into reads at points the input chooses, then shutdown and the timers.
//! The checks are in the library (`wsport_session_fuzz`): sound ranges, an HTTP answer first,
//! timers that end the session, and the same answer whether the stream is cut or whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsport_session_fuzz::{check_cuts_change_nothing, config, Input, Plain};

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let config = config(input.flags, None);
    check_cuts_change_nothing(&input, &config, || Plain, |_| {});
});
