//! State-machine tests: sequencing, acknowledgements, buffering, handshake, retransmission.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::*;
use crate::aws::exec::codec::{decode, encode};
use crate::aws::exec::payloads::{HandshakeResponse, KMS_UNSUPPORTED};

fn agent_frame(seq: i64, payload_type: PayloadType, payload: &[u8]) -> (Vec<u8>, Uuid) {
    let id = Uuid::new_v4();
    let bytes = encode(&Frame {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_date: now_millis(),
        sequence_number: seq,
        flags: if seq == 0 { flags::SYN } else { flags::NONE },
        message_id: id,
        payload_type,
        payload: payload.to_vec(),
    });
    (bytes, id)
}

fn output(seq: i64, text: &str) -> (Vec<u8>, Uuid) {
    agent_frame(seq, PayloadType::Output, text.as_bytes())
}

fn agent_ack(seq: i64) -> Vec<u8> {
    encode(&Frame {
        message_type: MessageType::Acknowledge,
        schema_version: 1,
        created_date: now_millis(),
        sequence_number: 0,
        flags: flags::ACK,
        message_id: Uuid::new_v4(),
        payload_type: PayloadType::Null,
        payload: format!(
            r#"{{"AcknowledgedMessageType":"input_stream_data","AcknowledgedMessageId":"{}","AcknowledgedMessageSequenceNumber":{seq},"IsSequentialMessage":true}}"#,
            Uuid::new_v4()
        )
        .into_bytes(),
    })
}

fn acked(bytes: &[u8]) -> (String, i64) {
    let frame = decode(bytes).unwrap().frame;
    assert_eq!(frame.message_type, MessageType::Acknowledge);
    assert_eq!((frame.sequence_number, frame.flags), (0, 3));
    assert_eq!(frame.payload_type, PayloadType::Null);
    let ack: Acknowledge = serde_json::from_slice(&frame.payload).unwrap();
    assert_eq!(ack.message_type, "output_stream_data");
    assert!(ack.is_sequential);
    (ack.message_id, ack.sequence_number)
}

fn no_size() -> SessionSettings {
    SessionSettings {
        terminal_size: None,
        ..SessionSettings::default()
    }
}

#[test]
fn in_order_output_is_acked_with_the_frame_id_and_kept_byte_exact() {
    let now = Instant::now();
    let mut channel = DataChannel::new(no_size(), now);
    let (first, id0) = output(0, "Mail queue ");
    let sent = channel.on_message(&first, now).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(acked(&sent[0]), (id0.hyphenated().to_string(), 0));
    assert_eq!(channel.phase(), Phase::Established);
    let (second, _) = output(1, "is empty\r\n");
    channel.on_message(&second, now).unwrap();
    assert_eq!(channel.output().head(), b"Mail queue is empty\r\n");
}

#[test]
fn out_of_order_frames_are_acked_at_once_and_delivered_in_order() {
    let now = Instant::now();
    let mut channel = DataChannel::new(no_size(), now);
    let (f2, _) = output(2, "C");
    let (f1, _) = output(1, "B");
    let (f0, _) = output(0, "A");
    for (frame, seq) in [(&f2, 2), (&f1, 1)] {
        let sent = channel.on_message(frame, now).unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(acked(&sent[0]).1, seq);
        assert!(channel.output().head().is_empty(), "nothing before seq 0");
    }
    let sent = channel.on_message(&f0, now).unwrap();
    assert_eq!(sent.len(), 1, "drained frames are not acked twice");
    assert_eq!(channel.output().head(), b"ABC");
    assert_eq!(channel.stats().early_frames, 2);
}

#[test]
fn duplicates_are_acked_again_and_not_delivered_again() {
    let now = Instant::now();
    let mut channel = DataChannel::new(no_size(), now);
    let (f0, id0) = output(0, "once");
    channel.on_message(&f0, now).unwrap();
    let sent = channel.on_message(&f0, now).unwrap();
    assert_eq!(acked(&sent[0]), (id0.hyphenated().to_string(), 0));
    let (f1, _) = output(1, "!");
    channel.on_message(&f1, now).unwrap();
    channel.on_message(&f1, now).unwrap();
    assert_eq!(channel.output().head(), b"once!");
    assert_eq!(channel.stats().duplicate_frames, 2);
}

#[test]
fn refused_frames_are_not_acked_and_a_good_copy_is_processed() {
    let now = Instant::now();
    let mut channel = DataChannel::new(no_size(), now);
    let (good, _) = output(0, "data");
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(channel.on_message(&bad, now).unwrap().is_empty());
    assert!(channel.on_message(b"garbage", now).unwrap().is_empty());
    assert!(!channel.any_message());
    assert_eq!(channel.on_message(&good, now).unwrap().len(), 1);
    assert_eq!(channel.output().head(), b"data");
    assert_eq!(channel.stats().rejected_frames, 2);
}

#[test]
fn size_is_sent_once_after_the_first_output_and_retransmitted_until_acked() {
    let start = Instant::now();
    let mut channel = DataChannel::new(SessionSettings::default(), start);
    let (f0, _) = output(0, "x");
    let sent = channel.on_message(&f0, start).unwrap();
    assert_eq!(sent.len(), 2, "ack, then Size");
    let size = decode(&sent[1]).unwrap().frame;
    assert_eq!(size.message_type, MessageType::InputStreamData);
    assert_eq!((size.sequence_number, size.flags), (0, 0));
    assert_eq!(size.payload_type, PayloadType::Size);
    assert_eq!(size.payload, br#"{"cols":200,"rows":50}"#);
    let (f1, _) = output(1, "y");
    assert_eq!(channel.on_message(&f1, start).unwrap().len(), 1);

    assert_eq!(
        channel
            .poll_retransmit(start + Duration::from_millis(100))
            .unwrap(),
        None
    );
    let again = channel
        .poll_retransmit(start + Duration::from_millis(250))
        .unwrap()
        .expect("resent after the RTO");
    assert_eq!(again, sent[1], "identical bytes");
    channel
        .on_message(&agent_ack(0), start + Duration::from_millis(300))
        .unwrap();
    assert_eq!(channel.unacked(), 0);
    assert_eq!(
        channel
            .poll_retransmit(start + Duration::from_secs(5))
            .unwrap(),
        None
    );
    assert_eq!(channel.stats().retransmissions, 1);
}

#[test]
fn gives_up_when_nothing_is_acked_and_not_while_paused() {
    let start = Instant::now();
    let settings = SessionSettings {
        retransmit_give_up: Duration::from_secs(2),
        ..SessionSettings::default()
    };
    let mut channel = DataChannel::new(settings, start);
    let (f0, _) = output(0, "x");
    channel.on_message(&f0, start).unwrap();
    let pause = encode(&Frame {
        message_type: MessageType::PausePublication,
        schema_version: 1,
        created_date: 1,
        sequence_number: 0,
        flags: 0,
        message_id: Uuid::new_v4(),
        payload_type: PayloadType::Null,
        payload: Vec::new(),
    });
    channel.on_message(&pause, start).unwrap();
    assert_eq!(
        channel
            .poll_retransmit(start + Duration::from_secs(10))
            .unwrap(),
        None
    );
    let resume = encode(&Frame {
        message_type: MessageType::StartPublication,
        ..decode(&pause).unwrap().frame
    });
    let t = start + Duration::from_secs(10);
    let resent = channel.on_message(&resume, t).unwrap();
    assert_eq!(
        resent.len(),
        1,
        "start_publication resends everything unacked"
    );
    assert!(channel.poll_retransmit(t + Duration::from_secs(1)).is_ok());
    assert!(matches!(
        channel.poll_retransmit(t + Duration::from_secs(3)),
        Err(ExecError::RetransmitGaveUp(_))
    ));
}

#[test]
fn handshake_is_acked_first_then_answered_then_established() {
    let now = Instant::now();
    let mut channel = DataChannel::new(SessionSettings::default(), now);
    let request = br#"{"AgentVersion":"3.3.0.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"InteractiveCommands","Properties":null}}]}"#;
    let (hs, _) = agent_frame(0, PayloadType::HandshakeRequest, request);
    let sent = channel.on_message(&hs, now).unwrap();
    assert_eq!(sent.len(), 2);
    acked(&sent[0]);
    let response = decode(&sent[1]).unwrap().frame;
    assert_eq!(response.payload_type, PayloadType::HandshakeResponse);
    assert_eq!(response.sequence_number, 0);
    let body: HandshakeResponse = serde_json::from_slice(&response.payload).unwrap();
    assert_eq!(body.processed_client_actions[0].action_status, 1);
    assert_eq!(channel.phase(), Phase::Handshaking);
    // A duplicate request is re-acked, not answered again.
    assert_eq!(channel.on_message(&hs, now).unwrap().len(), 1);

    let (complete, _) = agent_frame(
        1,
        PayloadType::HandshakeComplete,
        br#"{"HandshakeTimeToComplete":1000000,"CustomerMessage":"hello"}"#,
    );
    let sent = channel.on_message(&complete, now).unwrap();
    assert_eq!(sent.len(), 2, "ack, then Size");
    let size = decode(&sent[1]).unwrap().frame;
    assert_eq!(
        (size.payload_type, size.sequence_number),
        (PayloadType::Size, 1)
    );
    assert_eq!(channel.phase(), Phase::Established);
    assert_eq!(channel.customer_message(), Some("hello"));
    assert!(!channel.kms_requested());
}

#[test]
fn kms_is_refused_with_status_2_and_session_type_still_answered() {
    let now = Instant::now();
    let mut channel = DataChannel::new(SessionSettings::default(), now);
    let request = br#"{"AgentVersion":"3.3.0.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"InteractiveCommands","Properties":null}},{"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"arn:aws:kms:us-east-1:111122223333:key/x","Challenge":"AAAA"}}]}"#;
    let (hs, _) = agent_frame(0, PayloadType::HandshakeRequest, request);
    let sent = channel.on_message(&hs, now).unwrap();
    let body: HandshakeResponse =
        serde_json::from_slice(&decode(&sent[1]).unwrap().frame.payload).unwrap();
    let statuses: Vec<_> = body
        .processed_client_actions
        .iter()
        .map(|a| (a.action_type.as_str(), a.action_status))
        .collect();
    assert_eq!(statuses, [("SessionType", 1), ("KMSEncryption", 2)]);
    assert_eq!(body.errors, Some(vec![KMS_UNSUPPORTED.to_string()]));
    assert!(channel.kms_requested());
}

#[test]
fn channel_closed_in_both_shapes_ends_the_session_without_an_ack() {
    for shape in [codec::HeaderShape::Standard, codec::HeaderShape::Legacy112] {
        let now = Instant::now();
        let mut channel = DataChannel::new(no_size(), now);
        let closed = codec::encode_with_shape(
            &Frame {
                message_type: MessageType::ChannelClosed,
                schema_version: 1,
                created_date: now_millis(),
                sequence_number: 0,
                flags: 0,
                message_id: Uuid::new_v4(),
                payload_type: PayloadType::Null,
                payload: br#"{"MessageId":"x","SessionId":"s","Output":"boom","Extra":1}"#.to_vec(),
            },
            shape,
        );
        assert!(channel.on_message(&closed, now).unwrap().is_empty());
        assert_eq!(channel.closed().unwrap().output, "boom");
    }
}

#[test]
fn output_past_the_cap_is_counted_and_the_tail_kept() {
    let now = Instant::now();
    let settings = SessionSettings {
        output_cap: 10,
        terminal_size: None,
        ..SessionSettings::default()
    };
    let mut channel = DataChannel::new(settings, now);
    for seq in 0..100 {
        let (frame, _) = output(seq, "0123456789");
        channel.on_message(&frame, now).unwrap();
    }
    let out = channel.output();
    assert_eq!(out.head(), b"0123456789");
    assert_eq!(out.total(), 1000);
    assert!(out.truncated());
    assert_eq!(out.tail().len(), TAIL_BYTES);
    assert!(out.tail().ends_with(b"0123456789"));
}

#[test]
fn interrupt_is_ctrl_c_input_once_established() {
    let now = Instant::now();
    let mut channel = DataChannel::new(no_size(), now);
    assert!(channel.interrupt(now).is_none());
    let (f0, _) = output(0, "x");
    channel.on_message(&f0, now).unwrap();
    let frame = decode(&channel.interrupt(now).unwrap()).unwrap().frame;
    assert_eq!(frame.payload_type, PayloadType::Output);
    assert_eq!(frame.payload, [0x03]);
}
