//! Round trips and garbage for the TEDAPI protobuf messages and the v1r wrapper.

use super::*;

const DIN: &str = "1232100-00-E--TG123456789ABC";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn config_request() -> Message {
    Message::request(
        DIN,
        None,
        Body::ReadFile {
            domain: DOMAIN_CONFIG_JSON,
            name: "config.json".into(),
        },
    )
}

// Appendix A golden bytes.
#[test]
fn wifi_config_request() {
    assert_eq!(hex(&config_request().encode()), "0a390801120218011a1e0a1c313233323130302d30302d452d2d54473132333435363738394142437a110a0f0801120b636f6e6669672e6a736f6e12020801");
}

#[test]
fn wifi_firmware_request() {
    let m = Message::request(DIN, None, Body::SystemInfoRequest);
    assert_eq!(hex(&m.encode()), "0a2a0801120218011a1e0a1c313233323130302d30302d452d2d54473132333435363738394142432202120012020801");
}

#[test]
fn wifi_query_request() {
    let q = Query::signed(1, b"Q", vec![0xaa, 0xbb], "{}");
    let m = Message::request(DIN, None, Body::Query(q.clone().into()));
    assert_eq!(hex(&m.encode()), "0a3e0801120218011a1e0a1c313233323130302d30302d452d2d54473132333435363738394142438201150a130802120508011201511a02aabb22040a027b7d12020801");
    assert_eq!(q.text().unwrap(), (1, b"Q".to_vec()));
}

#[test]
fn follower_routed_query() {
    let q = Query::signed(1, b"Q", vec![0xaa], "{}");
    let m = Message::request("FOLLOWER", Some("LEADER"), Body::Query(q.into()));
    assert_eq!(hex(&m.encode()), "0a2f080112080a064c45414445521a0a0a08464f4c4c4f5745528201140a120802120508011201511a01aa22040a027b7d12020802");
}

#[test]
fn query_response() {
    let m = Message::reply(
        DIN,
        Body::QueryResponse {
            status: 1,
            data: r#"{"a":1}"#.into(),
        },
    );
    let bytes = m.encode();
    assert_eq!(hex(&bytes), "0a360801121e0a1c313233323130302d30302d452d2d54473132333435363738394142431a02180182010d120b080112077b2261223a317d12020801");
    assert_eq!(Message::decode(&bytes).unwrap(), m);
}

#[test]
fn config_response() {
    let m = Message::reply(
        DIN,
        Body::ReadFileResponse {
            name: "config.json".into(),
            blob: b"{}".to_vec(),
            hash: vec![1, 2],
        },
    );
    let bytes = m.encode();
    assert_eq!(hex(&bytes), "0a420801121e0a1c313233323130302d30302d452d2d54473132333435363738394142431a0218017a1a12180a120a0b636f6e6669672e6a736f6ea206027b7d1202010212020801");
    assert_eq!(Message::decode(&bytes).unwrap(), m);
}

#[test]
fn v1r_envelopes() {
    let config = Envelope {
        delivery_channel: CHANNEL_HERMES_COMMAND,
        sender: Some(Participant::AuthorizedClient(1)),
        recipient: Some(Participant::Din(DIN.into())),
        body: Body::ReadFile {
            domain: DOMAIN_CONFIG_JSON,
            name: "config.json".into(),
        },
    };
    assert_eq!(hex(&config.encode()), "0802120220011a1e0a1c313233323130302d30302d452d2d54473132333435363738394142437a110a0f0801120b636f6e6669672e6a736f6e");
    let cancel = Envelope {
        body: Body::Other {
            field: 5,
            bytes: vec![0xfa, 0x02, 0x00],
        },
        ..config
    };
    assert_eq!(
        hex(&cancel.encode()),
        "0802120220011a1e0a1c313233323130302d30302d452d2d54473132333435363738394142432a03fa0200"
    );
    assert_eq!(Envelope::decode(&cancel.encode()).unwrap(), cancel);
}

#[test]
fn routable_message_layout() {
    // Appendix A: `32 02 0807` · `52 <len> <envelope>` · `6a 15 {0a 07 {0a 05 <pubkey>}
    // 3a 0a {0d <expires LE> 12 03 <sig>}}` · `9a03 24 <uuid>`.
    let envelope = Envelope {
        delivery_channel: CHANNEL_HERMES_COMMAND,
        sender: Some(Participant::AuthorizedClient(1)),
        recipient: Some(Participant::Din(DIN.into())),
        body: Body::ReadFile {
            domain: DOMAIN_CONFIG_JSON,
            name: "config.json".into(),
        },
    }
    .encode();
    let uuid = b"123e4567-e89b-42d3-a456-426614174000".to_vec();
    let m = RoutableMessage {
        to_domain: Some(DOMAIN_ENERGY_DEVICE),
        payload: envelope.clone(),
        public_key: vec![1, 2, 3, 4, 5],
        expires_at: 0x6700_0000,
        signature: vec![9, 8, 7],
        uuid: uuid.clone(),
        ..RoutableMessage::default()
    };
    let bytes = m.encode();
    let expect = format!(
        "320208075239{}6a150a070a0501020304053a0a0d0000006712030908079a0324{}",
        hex(&envelope),
        hex(&uuid)
    );
    assert_eq!(hex(&bytes), expect);
    assert_eq!(RoutableMessage::decode(&bytes).unwrap(), m);
    let reply = RoutableMessage {
        fault: 17,
        request_uuid: uuid,
        ..RoutableMessage::default()
    };
    assert_eq!(RoutableMessage::decode(&reply.encode()).unwrap(), reply);
    for cut in 0..bytes.len() {
        let _ = RoutableMessage::decode(&bytes[..cut]);
    }
}

#[test]
fn requests_round_trip() {
    for m in [
        config_request(),
        Message::request(DIN, None, Body::SystemInfoRequest),
        Message::request(
            "F",
            Some("L"),
            Body::Query(Query::signed(2, b"query X {}", vec![1; 139], "{\"a\":1}").into()),
        ),
        Message::reply(
            DIN,
            Body::SystemInfoResponse(SystemInfo {
                part_number: "1707000-11-J".into(),
                serial_number: "TG12000000001Z".into(),
                din: DIN.into(),
                version: "25.10.1 7d8f0a8b".into(),
                githash: vec![0x7d, 0x8f],
                device_type: Some(4),
            }),
        ),
    ] {
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }
}

#[test]
fn pw3_firmware_fixture_decodes() {
    let bytes = include_bytes!("../../sim/fixtures/pw3/firmware_response.bin");
    let m = Message::decode(bytes).unwrap();
    match m.envelope.body {
        Body::SystemInfoResponse(info) => {
            assert_eq!(info.version, "25.10.1 7d8f0a8b");
            assert_eq!(info.part_number, "1707000-11-J");
            assert_eq!(info.serial_number, "TG12000000001Z");
            assert_eq!(info.device_type, Some(4));
            assert_eq!(
                hex(&info.githash),
                "7d8f0a8b3c1e2d4f5a6b7c8d9e0f1a2b3c4d5e6f"
            );
        }
        other => panic!("unexpected body {other:?}"),
    }
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x1234_5678u32;
    for len in 0..300 {
        let bytes = noise(&mut seed, len);
        let _ = Message::decode(&bytes);
    }
    let good = config_request().encode();
    for cut in 0..good.len() {
        let _ = Message::decode(&good[..cut]);
    }
}

#[test]
fn v1r_write_envelopes_round_trip() {
    let envelope = |body| Envelope {
        delivery_channel: CHANNEL_HERMES_COMMAND,
        sender: Some(Participant::AuthorizedClient(1)),
        recipient: Some(Participant::Din(DIN.into())),
        body,
    };
    let update = envelope(Body::UpdateFile {
        domain: DOMAIN_CONFIG_JSON,
        name: "config.json".into(),
        blob: br#"{"vin": "x"}"#.to_vec(),
        hash: vec![1, 2, 3],
    });
    let bytes = update.encode();
    // Field 15 {5 {1 domain, 2 file {1 name, 100 blob}, 3 hash}}.
    assert!(hex(&bytes).contains("7a"), "{}", hex(&bytes));
    assert!(
        hex(&bytes).contains("a206"),
        "blob is field 100: {}",
        hex(&bytes)
    );
    for body in [
        Body::UpdateFile {
            domain: DOMAIN_CONFIG_JSON,
            name: "config.json".into(),
            blob: b"{}".to_vec(),
            hash: vec![9; 32],
        },
        Body::UpdateFileResponse {
            name: "config.json".into(),
            hash: vec![7; 32],
        },
        Body::SetIslandMode {
            mode: 6,
            force: true,
        },
        Body::SetIslandMode {
            mode: 1,
            force: false,
        },
        Body::SetIslandModeResponse { result: Some(1) },
        Body::SetIslandModeResponse { result: None },
        Body::ErrorResponse {
            code: 7,
            message: "write refused".into(),
        },
    ] {
        let e = envelope(body);
        assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        let bytes = e.encode();
        for cut in 0..bytes.len() {
            let _ = Envelope::decode(&bytes[..cut]);
        }
    }
    // setIslandModeRequest {mode 6, force true} inside TEG field 5: `2a 06 1a 04 08 06 10 01`.
    let island = envelope(Body::SetIslandMode {
        mode: 6,
        force: true,
    });
    assert!(hex(&island.encode()).ends_with("2a061a0408061001"));
}
