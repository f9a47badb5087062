//! Fuzzes the SSM data-channel frame decoder and the client state machine with arbitrary bytes:
//! both must return a value or an error, never panic. A decoded frame must re-encode to a frame
//! that decodes to the same value.
#![no_main]

use std::time::Instant;

use cabal_triage::aws::exec::codec::{decode, encode, MessageType};
use cabal_triage::aws::exec::session::{DataChannel, SessionSettings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = decode(data) {
        let lenient = matches!(
            decoded.frame.message_type,
            MessageType::StartPublication | MessageType::PausePublication
        );
        if !lenient {
            let again = decode(&encode(&decoded.frame)).expect("re-encoded frame decodes");
            assert_eq!(again.frame, decoded.frame);
        }
    }
    // The state machine sees the same bytes as one message, and as several.
    let now = Instant::now();
    let mut channel = DataChannel::new(SessionSettings::default(), now);
    let _ = channel.on_message(data, now);
    for chunk in data.split(|b| *b == 0xA5) {
        let _ = channel.on_message(chunk, now);
    }
    let _ = channel.poll_retransmit(now);
});
