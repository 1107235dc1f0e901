//! Differential: our frame header decoder (RFC 6455 §5.2) against tungstenite's, on any bytes.
//!
//! tungstenite's `FrameHeader::parse` knows the syntax only and rejects just reserved opcodes;
//! ours also rejects, as early as the bytes allow, what §5.2 and §5.5 forbid in the header
//! alone (a length with its top bit set, a fragmented or long control frame). So the decoders
//! must agree on every header both accept, and each of our extra refusals must be explained
//! by the header tungstenite read. Encoding what we decoded must give a header that decodes
//! to the same fields, byte for byte what tungstenite writes for them.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode as TheirOpCode};
use tungstenite::protocol::frame::FrameHeader as TheirHeader;
use wsport_core::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use wsport_core::ProtocolError;

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_HEADER_LEN)];
    compare(data);
    // A header cut before its mask key: we may already refuse it, tungstenite waits for the
    // key. Give it one so it can say what it read.
    let mut keyed = data.to_vec();
    keyed.extend_from_slice(&[0; 4]);
    compare(&keyed);
});

fn compare(data: &[u8]) {
    let mut cursor = Cursor::new(data);
    let theirs = TheirHeader::parse(&mut cursor);
    match (FrameHeader::decode(data), theirs) {
        (Ok(Some((ours, len))), Ok(Some((theirs, payload_len)))) => {
            assert_eq!(len as u64, cursor.position(), "header length");
            assert_eq!(ours, translate(&theirs, payload_len));
            round_trip(&ours, &theirs);
        }
        (Ok(None), Ok(None)) => {}
        (Err(ProtocolError::ReservedOpCode(op)), Err(_) | Ok(None)) => {
            assert_eq!(op, data[0] & 0x0F);
        }
        (Err(error), Ok(Some((theirs, payload_len)))) => {
            assert!(
                explains(error, &theirs, payload_len),
                "{error:?} for {theirs:?}"
            );
        }
        // Refused before the mask key arrived: the keyed call checks the reason.
        (Err(_), Ok(None)) => assert!(data[1] & 0x80 != 0, "refused an unfinished header"),
        (ours, theirs) => panic!("we decoded {ours:?}, tungstenite {theirs:?}"),
    }
}

/// tungstenite's header in our terms.
fn translate(theirs: &TheirHeader, payload_len: u64) -> FrameHeader {
    let rsv = u8::from(theirs.rsv1) << 2 | u8::from(theirs.rsv2) << 1 | u8::from(theirs.rsv3);
    FrameHeader {
        fin: theirs.is_final,
        rsv,
        opcode: opcode(theirs.opcode),
        mask: theirs.mask,
        payload_len,
    }
}

fn opcode(theirs: TheirOpCode) -> OpCode {
    match theirs {
        TheirOpCode::Data(Data::Continue) => OpCode::Continuation,
        TheirOpCode::Data(Data::Text) => OpCode::Text,
        TheirOpCode::Data(Data::Binary) => OpCode::Binary,
        TheirOpCode::Control(Control::Close) => OpCode::Close,
        TheirOpCode::Control(Control::Ping) => OpCode::Ping,
        TheirOpCode::Control(Control::Pong) => OpCode::Pong,
        reserved => panic!("tungstenite accepted the reserved opcode {reserved:?}"),
    }
}

/// Whether a refusal of ours is a rule of §5.2/§5.5 broken by the header tungstenite read.
fn explains(error: ProtocolError, theirs: &TheirHeader, payload_len: u64) -> bool {
    let control = matches!(theirs.opcode, TheirOpCode::Control(_));
    match error {
        ProtocolError::LengthTopBitSet => payload_len >> 63 != 0,
        ProtocolError::FragmentedControl => control && !theirs.is_final,
        ProtocolError::ControlTooLong(len) => {
            control && len == payload_len && len > MAX_CONTROL_PAYLOAD
        }
        _ => false,
    }
}

/// Our encoding of a decoded header decodes to it again and matches tungstenite's bytes
/// (both write the shortest length form, as §5.2 requires).
fn round_trip(ours: &FrameHeader, theirs: &TheirHeader) {
    let mut encoded = [0; MAX_HEADER_LEN];
    let len = ours.encode(&mut encoded).expect("room for any header");
    assert_eq!(FrameHeader::decode(&encoded[..len]), Ok(Some((*ours, len))));
    let mut reference = Vec::new();
    theirs
        .format(ours.payload_len, &mut reference)
        .expect("writing to a Vec");
    assert_eq!(&encoded[..len], &reference[..]);
}
