//! The HTTP API's JSON bodies: a record payload for the node to sign (`POST /v1/records`
//! with `payload`), a policy, a merchant profile, and the places and parties of URLs and
//! fields. A payload that converts to a ledger payload converts back through its JSON form to
//! the same payload. The first byte chooses which.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::split_selector;
use plaza_node::json::{parse_party, parse_place, party_json, payload_json, place_json, PayloadJson, PolicyJson, ProfileJson};

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = split_selector(data) else { return };
    match selector % 4 {
        0 => {
            let Ok(json) = serde_json::from_slice::<PayloadJson>(data) else { return };
            let Ok(payload) = json.to_payload() else { return };
            let shown = payload_json(&payload);
            let back: PayloadJson = serde_json::from_value(shown.clone()).unwrap_or_else(|e| panic!("payload JSON {shown} does not parse: {e}"));
            let again = back.to_payload().unwrap_or_else(|e| panic!("payload JSON {shown} does not convert: {e}"));
            assert_eq!(again, payload, "a payload does not round-trip through its JSON form");
        }
        1 => {
            let Ok(json) = serde_json::from_slice::<PolicyJson>(data) else { return };
            let Ok(policy) = json.to_policy() else { return };
            let again = PolicyJson::from_policy(&policy).to_policy().expect("a policy's JSON form converts back");
            assert_eq!(again, policy);
        }
        2 => {
            let _ = serde_json::from_slice::<ProfileJson>(data);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(data) else { return };
            if let Ok(place) = parse_place(text) {
                assert_eq!(parse_place(&place_json(&place)), Ok(place));
            }
            if let Ok(party) = parse_party(text) {
                assert_eq!(parse_party(&party_json(&party)), Ok(party));
            }
        }
    }
});
