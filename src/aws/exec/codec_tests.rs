//! Codec tests: the protocol note's test vectors (§14), round trips, every malformed-frame case,
//! and property tests that no input makes the decoder panic.

use proptest::prelude::*;

use super::*;

const VECTOR_A: &str = "0000007461636b6e6f776c65646765202020202020202020202020202020202020202020000000010000018bcfe5680000000000000000000000000000000003a16570867728950e0f8fad5bd9cb469f713a0a17057de630213f7292907ce38462812ea213a29366f537f68c6ab60e8500000000000000b07b2241636b6e6f776c65646765644d65737361676554797065223a226f75747075745f73747265616d5f64617461222c2241636b6e6f776c65646765644d6573736167654964223a2264643031653536622d666634382d343833652d613530382d623566303733663331623136222c2241636b6e6f776c65646765644d65737361676553657175656e63654e756d626572223a302c22497353657175656e7469616c4d657373616765223a747275657d";
const VECTOR_B: &str = "000000746f75747075745f73747265616d5f646174612020202020202020202020202020000000010000018bcfe5680000000000000000000000000000000001a508b5f073f31b16dd01e56bff48483ee67dd792a4c07145eaf1596cbe66106e94be895bb78b36d2462e4c89ea41609100000001000000154d61696c20717565756520697320656d7074790d0a";
const VECTOR_C: &str = "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe5687b00000000000000000000000000000000944be07fc1f90ae77c9e6679742540de102b1e10bc862214b29c954a65e3b6b4997a2904c04f65ec28b4602150d0368200000003000000167b22636f6c73223a3230302c22726f7773223a35307d";
const VECTOR_D: &str = "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe569c8000000000000000000000000000000009a0c0305e82c33013f2504e04f8941d33f415a2a7d6f80998934c84fdb16c0fbb09e16b0539e2cebc9a78c573d20ce8000000006000000937b22436c69656e7456657273696f6e223a22312e322e3730372e30222c2250726f636573736564436c69656e74416374696f6e73223a5b7b22416374696f6e54797065223a2253657373696f6e54797065222c22416374696f6e537461747573223a312c22416374696f6e526573756c74223a6e756c6c2c224572726f72223a22227d5d2c224572726f7273223a6e756c6c7d";
const VECTOR_E: &str = "000000706368616e6e656c5f636c6f736564000000000000000000000000000000000000000000010000018bcfe56800000000000000000000000000000000008a7b2f6e9d0c1a3b5b1c3e2a9d4f4c1e9542c7e351b04c3e62f262d31ff0577136823b5c9d4145e93c56836d9e25e96a000000db7b224d6573736167654964223a2235623163336532612d396434662d346331652d386137622d326636653964306331613362222c224372656174656444617465223a2231373030303030303030303030222c2244657374696e6174696f6e4964223a226563733a64656d6f5f74315f7231222c2253657373696f6e4964223a226563732d657865637574652d636f6d6d616e642d3061316232633364222c224d65737361676554797065223a226368616e6e656c5f636c6f736564222c22536368656d6156657273696f6e223a312c224f7574707574223a22227d";

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

#[test]
fn vector_a_acknowledge() {
    let bytes = unhex(VECTOR_A);
    assert_eq!(bytes.len(), 296);
    let decoded = decode(&bytes).unwrap();
    let frame = &decoded.frame;
    assert_eq!(decoded.header_length, 116);
    assert_eq!(frame.message_type, MessageType::Acknowledge);
    assert_eq!(frame.sequence_number, 0);
    assert_eq!(frame.flags, 3);
    assert_eq!(frame.payload_type, PayloadType::Null);
    assert_eq!(frame.created_date, 1_700_000_000_000);
    assert_eq!(
        frame.message_id,
        uuid("0f8fad5b-d9cb-469f-a165-70867728950e")
    );
    assert_eq!(frame.payload.len(), 176);
    let ack: crate::aws::exec::payloads::Acknowledge =
        serde_json::from_slice(&frame.payload).unwrap();
    assert_eq!(ack.message_id, "dd01e56b-ff48-483e-a508-b5f073f31b16");
    assert_eq!(encode(frame), bytes, "re-encoding gives the vector");
}

#[test]
fn vector_b_output() {
    let bytes = unhex(VECTOR_B);
    assert_eq!(bytes.len(), 141);
    let frame = decode(&bytes).unwrap().frame;
    assert_eq!(frame.message_type, MessageType::OutputStreamData);
    assert_eq!(frame.flags, 1);
    assert_eq!(frame.payload_type, PayloadType::Output);
    assert_eq!(
        frame.message_id,
        uuid("dd01e56b-ff48-483e-a508-b5f073f31b16")
    );
    assert_eq!(frame.payload, b"Mail queue is empty\r\n");
    assert_eq!(encode(&frame), bytes);
}

#[test]
fn vector_c_size_and_d_handshake_response() {
    let c = unhex(VECTOR_C);
    let frame = decode(&c).unwrap().frame;
    assert_eq!(frame.message_type, MessageType::InputStreamData);
    assert_eq!(frame.payload_type, PayloadType::Size);
    assert_eq!(frame.created_date, 1_700_000_000_123);
    assert_eq!(
        frame.message_id,
        uuid("7c9e6679-7425-40de-944b-e07fc1f90ae7")
    );
    assert_eq!(frame.payload, br#"{"cols":200,"rows":50}"#);
    assert_eq!(encode(&frame), c);

    let d = unhex(VECTOR_D);
    let frame = decode(&d).unwrap().frame;
    assert_eq!(frame.payload_type, PayloadType::HandshakeResponse);
    assert_eq!(
        frame.message_id,
        uuid("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
    );
    assert_eq!(encode(&frame), d);
}

#[test]
fn vector_d_payload_is_what_the_client_answers() {
    let request: crate::aws::exec::payloads::HandshakeRequest = serde_json::from_str(
        r#"{"AgentVersion":"3.3.0.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"InteractiveCommands","Properties":null}}]}"#,
    )
    .unwrap();
    let (response, kms) = crate::aws::exec::payloads::answer_handshake(&request);
    assert!(!kms);
    let frame = decode(&unhex(VECTOR_D)).unwrap().frame;
    assert_eq!(serde_json::to_vec(&response).unwrap(), frame.payload);
}

#[test]
fn vector_e_short_header_channel_closed() {
    let bytes = unhex(VECTOR_E);
    assert_eq!(bytes.len(), 335);
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.header_length, 112);
    assert_eq!(decoded.trailing_bytes, 0);
    let frame = &decoded.frame;
    assert_eq!(frame.message_type, MessageType::ChannelClosed);
    assert_eq!(frame.sequence_number, 0);
    assert_eq!(
        frame.message_id,
        uuid("5b1c3e2a-9d4f-4c1e-8a7b-2f6e9d0c1a3b")
    );
    assert_eq!(frame.payload.len(), 219);
    assert_eq!(frame.payload[0], b'{');
    assert_eq!(frame.payload_type, PayloadType::Null);
    assert_eq!(encode_with_shape(frame, HeaderShape::Legacy112), bytes);
}

#[test]
fn message_id_halves_are_swapped() {
    let id = uuid("dd01e56b-ff48-483e-a508-b5f073f31b16");
    assert_eq!(
        hex::encode(message_id_to_wire(id)),
        "a508b5f073f31b16dd01e56bff48483e"
    );
    assert_eq!(message_id_from_wire(message_id_to_wire(id)), id);
}

fn sample_frame() -> Vec<u8> {
    unhex(VECTOR_B)
}

#[test]
fn short_frames_are_errors() {
    for len in [0, 3, 4, 100, 115] {
        let bytes = &sample_frame()[..len];
        assert_eq!(
            decode(bytes),
            Err(CodecError::ShortFrame { len }),
            "len {len}"
        );
    }
}

#[test]
fn impossible_header_lengths_are_errors() {
    for header_length in [0u32, 111, 138, 1000, u32::MAX] {
        let mut bytes = sample_frame();
        bytes[..4].copy_from_slice(&header_length.to_be_bytes());
        assert!(
            matches!(decode(&bytes), Err(CodecError::BadHeaderLength { .. })),
            "HL {header_length}"
        );
    }
}

#[test]
fn a_header_length_that_moves_the_payload_is_caught_by_length_or_digest() {
    let mut bytes = sample_frame();
    bytes[..4].copy_from_slice(&112u32.to_be_bytes());
    // PayloadLength is now read from the PayloadType field (1): the digest no longer matches.
    assert_eq!(decode(&bytes), Err(CodecError::DigestMismatch));
}

#[test]
fn digest_mismatch_is_an_error() {
    let mut bytes = sample_frame();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert_eq!(decode(&bytes), Err(CodecError::DigestMismatch));
    let mut bytes = sample_frame();
    bytes[80] ^= 0x80;
    assert_eq!(decode(&bytes), Err(CodecError::DigestMismatch));
}

#[test]
fn payload_length_past_the_end_is_an_error() {
    let mut bytes = sample_frame();
    bytes[116..120].copy_from_slice(&22u32.to_be_bytes());
    assert_eq!(
        decode(&bytes),
        Err(CodecError::PayloadPastEnd {
            payload_length: 22,
            available: 21
        })
    );
    bytes[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode(&bytes),
        Err(CodecError::PayloadPastEnd { .. })
    ));
    let truncated = &sample_frame()[..130];
    assert!(matches!(
        decode(truncated),
        Err(CodecError::PayloadPastEnd { .. })
    ));
}

#[test]
fn unknown_and_malformed_message_types_are_errors() {
    let mut bytes = sample_frame();
    bytes[4..36].copy_from_slice(b"output_stream_dat4              ");
    assert_eq!(
        decode(&bytes),
        Err(CodecError::UnknownMessageType("output_stream_dat4".into()))
    );
    bytes[4..36].copy_from_slice(&[b' '; 32]);
    assert_eq!(decode(&bytes), Err(CodecError::EmptyMessageType));
    bytes[4..36].copy_from_slice(&[0; 32]);
    assert_eq!(decode(&bytes), Err(CodecError::EmptyMessageType));
    bytes[4] = 0xc3;
    assert_eq!(decode(&bytes), Err(CodecError::MessageTypeNotText));
}

#[test]
fn nul_padding_on_either_side_is_accepted() {
    let mut bytes = sample_frame();
    let mut field = [0u8; 32];
    field[3..21].copy_from_slice(b"output_stream_data");
    bytes[4..36].copy_from_slice(&field);
    assert_eq!(
        decode(&bytes).unwrap().frame.message_type,
        MessageType::OutputStreamData
    );
}

#[test]
fn unknown_payload_type_and_zero_date_are_errors() {
    let mut bytes = sample_frame();
    bytes[112..116].copy_from_slice(&13u32.to_be_bytes());
    assert_eq!(decode(&bytes), Err(CodecError::UnknownPayloadType(13)));
    let mut bytes = sample_frame();
    bytes[40..48].copy_from_slice(&[0; 8]);
    assert_eq!(decode(&bytes), Err(CodecError::ZeroCreatedDate));
}

#[test]
fn publication_notices_are_not_validated() {
    let frame = Frame {
        message_type: MessageType::StartPublication,
        schema_version: 0,
        created_date: 0,
        sequence_number: 0,
        flags: 0,
        message_id: Uuid::nil(),
        payload_type: PayloadType::Null,
        payload: b"{}".to_vec(),
    };
    let mut bytes = encode(&frame);
    bytes[80] ^= 0xff; // wrong digest
    bytes[112..116].copy_from_slice(&99u32.to_be_bytes());
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.frame.message_type, MessageType::StartPublication);
}

#[test]
fn trailing_bytes_are_counted_and_ignored() {
    let mut bytes = sample_frame();
    bytes.extend_from_slice(b"junk");
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.trailing_bytes, 4);
    assert_eq!(decoded.frame.payload, b"Mail queue is empty\r\n");
}

#[test]
fn empty_payload_needs_no_digest_and_encodes_the_empty_digest() {
    let frame = Frame {
        message_type: MessageType::ChannelClosed,
        schema_version: 1,
        created_date: 1,
        sequence_number: 0,
        flags: 0,
        message_id: Uuid::new_v4(),
        payload_type: PayloadType::Null,
        payload: Vec::new(),
    };
    let bytes = encode(&frame);
    assert_eq!(
        hex::encode(&bytes[80..112]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(decode(&bytes).unwrap().frame, frame);
}

fn arb_message_type() -> impl Strategy<Value = MessageType> {
    prop_oneof![
        Just(MessageType::InputStreamData),
        Just(MessageType::OutputStreamData),
        Just(MessageType::Acknowledge),
        Just(MessageType::ChannelClosed),
    ]
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_valid_frames_decode_or_fail_without_panic(
        index in 0usize..141, value in any::<u8>(), cut in 0usize..141
    ) {
        let mut bytes = sample_frame();
        bytes[index] = value;
        let _ = decode(&bytes);
        let _ = decode(&bytes[..cut]);
    }

    #[test]
    fn round_trip(
        message_type in arb_message_type(),
        created_date in 1u64..,
        sequence_number in any::<i64>(),
        flags in any::<u64>(),
        id in any::<u128>(),
        payload_type in 0u32..=12,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let frame = Frame {
            message_type,
            schema_version: SCHEMA_VERSION,
            created_date,
            sequence_number,
            flags,
            message_id: Uuid::from_u128(id),
            payload_type: PayloadType::from_u32(payload_type).unwrap(),
            payload,
        };
        let bytes = encode(&frame);
        prop_assert_eq!(bytes.len(), 120 + frame.payload.len());
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(decoded.header_length, 116);
        prop_assert_eq!(decoded.frame, frame);
    }
}
