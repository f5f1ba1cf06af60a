//! Text the API, the CLI and the genesis file turn into ledger values: amounts ("12.50"),
//! hashes, keys and card ids in hex, coordinates in degrees, promoter ids, code secrets.
//! Whatever parses prints back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::split_selector;
use plaza_ledger::genesis::parse_microdegrees;
use plaza_ledger::money::Amount;
use plaza_ledger::record::{CardId, CodeSecret, PromoterId};
use plaza_ledger::{Hash, PublicKey};

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = split_selector(data) else { return };
    let Ok(text) = std::str::from_utf8(data) else { return };
    match selector % 6 {
        0 => {
            if let Ok(amount) = Amount::parse(text) {
                assert_eq!(Amount::parse(&amount.to_string()), Ok(amount), "{text:?} → {amount}");
            }
        }
        1 => {
            if let Ok(hash) = Hash::from_hex(text) {
                assert_eq!(Hash::from_hex(&hash.to_hex()), Ok(hash));
            }
        }
        2 => {
            if let Ok(key) = PublicKey::from_hex(text) {
                assert_eq!(PublicKey::from_hex(&key.to_hex()).ok(), Some(key));
            }
        }
        3 => {
            if let Ok(card) = CardId::from_hex(text) {
                assert_eq!(CardId::from_hex(&card.to_hex()), Ok(card));
            }
        }
        4 => {
            let _ = parse_microdegrees("latitude", text);
        }
        _ => {
            if let Ok(id) = PromoterId::new(text) {
                assert_eq!(PromoterId::new(id.as_str()).ok(), Some(id));
            }
            let _ = CodeSecret::new(data).map(|s| s.hash());
        }
    }
});
