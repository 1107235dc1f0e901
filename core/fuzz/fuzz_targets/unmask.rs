//! Differential: the fast unmask against the scalar reference, any key, offset and length.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsport_core::mask::{apply_mask, apply_mask_scalar};

fuzz_target!(|data: &[u8]| {
    let Some((head, payload)) = data.split_at_checked(5) else {
        return;
    };
    let key = [head[0], head[1], head[2], head[3]];
    let offset = usize::from(head[4]);
    let mut fast = payload.to_vec();
    let mut slow = payload.to_vec();
    assert_eq!(
        apply_mask(&mut fast, key, offset),
        apply_mask_scalar(&mut slow, key, offset)
    );
    assert_eq!(fast, slow);
});
