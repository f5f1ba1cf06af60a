//! The nearby-members API (issue 19) through HTTP: `GET /v1/merchants` with a point, radius
//! and "accepts" filters, `GET /v1/districts`, their errors, and their OpenAPI entries. The
//! node's shared state is built by hand (no consensus), and the real router serves it.

use std::sync::{Arc, Mutex, RwLock};

use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::contract::State;
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::geo::{distance_m, Point};
use plaza_ledger::money::Amount;
use plaza_ledger::policy::{Policy, DAY_MS};
use plaza_ledger::record::*;
use plaza_ledger::store::Store;
use plaza_ledger::{Keypair, PublicKey};
use plaza_node::client::Client;
use plaza_node::{Clock, NodeConfig, Shared, Status};
use serde_json::Value;

fn key(name: &str) -> Keypair {
    Keypair::from_seed(format!("nearby-api/{name}").as_bytes())
}
fn pk(name: &str) -> PublicKey {
    key(name).public()
}

const MEMBERS: &[(&str, &str, &str, i32, i32)] = &[
    ("hotpot", "restaurant", "jingan", 31_229_600, 121_455_200),
    ("noodles", "restaurant", "jingan", 31_231_800, 121_458_900),
    ("gym", "fitness", "jingan", 31_227_900, 121_449_800),
    ("school", "education", "xuhui", 31_195_500, 121_436_800),
];
const TEMPLE: &str = "31.2239,121.446";

fn genesis(time_ms: u64) -> Genesis {
    let mut members: Vec<MerchantProfile> = MEMBERS
        .iter()
        .map(|(n, c, d, lat, lon)| MerchantProfile {
            key: pk(n),
            name: (*n).into(),
            category: (*c).into(),
            district: (*d).into(),
            latitude_e6: *lat,
            longitude_e6: *lon,
            network_key: Some(key(&format!("{n}/net")).public()),
        })
        .collect();
    members.sort_by(|a, b| a.key.cmp(&b.key));
    let validators =
        ValidatorSet::new(MEMBERS.iter().map(|m| Validator { key: pk(m.0), network_key: key(&format!("{}/net", m.0)).public() }).collect())
            .expect("validators");
    let named = |codes: &[(&str, &str)]| codes.iter().map(|(c, n)| Named { code: (*c).into(), name: (*n).into() }).collect();
    let g = Genesis {
        name: "Nearby API".into(),
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms,
        categories: named(&[("education", "Education"), ("fitness", "Fitness"), ("restaurant", "Restaurant")]),
        districts: named(&[("jingan", "静安 Jing'an"), ("xuhui", "徐汇 Xuhui")]),
        members,
        validators,
        policy: Policy::default_v1(time_ms),
        promoters: Vec::new(),
    };
    g.validate().expect("genesis");
    g
}

fn secret(text: &str) -> CodeSecret {
    CodeSecret::new(text.as_bytes()).expect("secret")
}

struct Node {
    client: Client,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
    dir: std::path::PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Node {
    fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(path).expect("request");
        (r.status, r.json().expect("JSON"))
    }
    fn ok(&self, path: &str) -> Value {
        let (status, v) = self.get(path);
        assert_eq!(status, 200, "{path}: {v}");
        v
    }
    fn error(&self, path: &str) -> (u16, String) {
        let (status, v) = self.get(path);
        (status, v.get("code").and_then(Value::as_str).unwrap_or("").to_owned())
    }
    fn names(&self, path: &str) -> Vec<String> {
        self.ok(path)["merchants"].as_array().expect("list").iter().map(|m| m["name"].as_str().expect("name").to_owned()).collect()
    }
}

/// A node API over a state with a hotpot coupon batch and a card with points from two issuers.
fn node(test: &str) -> Node {
    let dir = std::env::temp_dir().join(format!("plaza-nearby-api-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let clock = Clock::new(0);
    let t0 = clock.now_ms() - 60_000;
    let genesis = genesis(t0);
    let store = Arc::new(Store::create(&dir, &genesis).expect("store"));
    let mut state = State::from_genesis(&genesis);
    let alliance = state.alliance_id();
    let sign = |who: &str, at: u64, payload: Payload| Record::sign(RecordBody { alliance, signer: pk(who), created_at_ms: at, payload }, &key(who));
    let amount = |t: &str| Amount::parse(t).expect("amount");
    let card = CardId([9; 16]);
    let sale = |order: &str, gross: &str| Payload::Sale {
        order: order.into(),
        gross: amount(gross),
        base: amount(gross),
        card: Some(card),
        referral_code: None,
        coupon_codes: vec![],
        points_redeemed: 0,
    };
    let t1 = t0 + 1_000;
    let records = vec![
        sign(
            "hotpot",
            t1,
            Payload::IssueCoupons {
                batch: "anywhere".into(),
                code_hashes: vec![secret("hotpot-code-1").hash()],
                value: CouponValue::Fixed(amount("10.00")),
                min_spend: amount("0.00"),
                redeemable_at: vec![],
                funding: Funding::Issuer,
                expires_at_ms: t0 + 30 * DAY_MS,
            },
        ),
        sign("hotpot", t1, Payload::IssueCard { card }),
    ];
    let out = state.apply_block(t1, &records).expect("block");
    assert!(out.receipts.iter().all(|r| r.is_accepted()));
    let t2 = t1 + 1_000;
    let out = state.apply_block(t2, &[sign("hotpot", t2, sale("h-1", "120.00")), sign("school", t2, sale("s-1", "30.00"))]).expect("block");
    assert!(out.receipts.iter().all(|r| r.is_accepted()), "{:?}", out.receipts);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (_tip_tx, tip) = tokio::sync::watch::channel(2u64);
    let (commands, _) = tokio::sync::mpsc::channel(1);
    let shared = Arc::new(Shared {
        store,
        state: Arc::new(RwLock::new(state)),
        mempool: Arc::new(Mutex::new(plaza_node::mempool::Mempool::new(10, 10))),
        metrics: plaza_node::metrics::Metrics::new(),
        clock,
        merchant: key("hotpot"),
        alliance,
        api_token: "test-token".into(),
        submit_limits: plaza_node::auth::SignerLimits::default(),
        config: NodeConfig::default(),
        tip,
        status: Mutex::new(Status::default()),
        commands,
    });
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("address");
    let router = plaza_node::api::router(shared.clone());
    let _server = runtime.spawn(async move { axum::serve(listener, router).await });
    Node { client: Client::new(addr, None), shared, _runtime: runtime, dir }
}

fn point(lat: i32, lon: i32) -> Point {
    Point::new(lat, lon).expect("point")
}

#[test]
fn merchants_near_a_point_are_sorted_and_cut_at_the_radius() {
    let n = node("sorted");
    // The plain listing is unchanged: every member with its status, in key order.
    let plain = n.ok("/v1/merchants");
    let list = plain["merchants"].as_array().expect("list");
    assert_eq!(list.len(), MEMBERS.len());
    assert!(list.iter().all(|m| m["status"] == "active" && m.get("distance_m").is_none()));
    assert!(plain.get("near").is_none());

    let answer = n.ok(&format!("/v1/merchants?near={TEMPLE}"));
    let temple = point(31_223_900, 121_446_000);
    let got: Vec<(String, u64)> = answer["merchants"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| (m["name"].as_str().expect("name").to_owned(), m["distance_m"].as_u64().expect("integer metres")))
        .collect();
    let mut expected: Vec<(String, u64)> =
        MEMBERS.iter().map(|m| (m.0.to_owned(), distance_m(temple, point(m.3, m.4)))).collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| pk(&a.0).cmp(&pk(&b.0))));
    assert_eq!(got, expected);
    assert_eq!(answer["near"]["latitude"], "31.223900");
    assert_eq!(answer["merchants"][0]["latitude"], "31.227900");

    let d = expected.iter().find(|(name, _)| name == "hotpot").map(|(_, d)| *d).expect("hotpot");
    assert!(n.names(&format!("/v1/merchants?near={TEMPLE}&within_m={d}")).contains(&"hotpot".to_owned()));
    assert!(!n.names(&format!("/v1/merchants?near={TEMPLE}&within_m={}", d - 1)).contains(&"hotpot".to_owned()));
    assert_eq!(n.names(&format!("/v1/merchants?near={TEMPLE}&within_m=2000&category=restaurant")).len(), 2);
    assert_eq!(n.names("/v1/merchants?district=xuhui"), ["school"]);
}

#[test]
fn a_coupon_and_a_card_say_where_they_can_be_used() {
    let n = node("accepts");
    let code = secret("hotpot-code-1").hash().to_hex();
    let answer = n.ok(&format!("/v1/merchants?near={TEMPLE}&within_m=5000&accepts_coupon={code}"));
    let names: Vec<&str> = answer["merchants"].as_array().expect("list").iter().map(|m| m["name"].as_str().unwrap_or("")).collect();
    // S5: noodles competes with hotpot, so hotpot's coupon is not redeemable there.
    assert!(!names.contains(&"noodles"), "{names:?}");
    assert_eq!(names.len(), 3);
    assert_eq!(answer["coupon"]["usable"], true);
    assert_eq!(answer["coupon"]["issuer"], pk("hotpot").to_hex());

    let card = CardId([9; 16]).to_hex();
    // Points are held for a day: nowhere yet.
    let held = n.ok(&format!("/v1/merchants?near={TEMPLE}&accepts_card={card}"));
    assert_eq!(held["merchants"].as_array().map(Vec::len), Some(0));
    assert_eq!(held["card"]["redeemable"], 0);
    n.shared.clock.advance(2 * DAY_MS as i64).expect("two days is within the clock's range");
    let ready = n.ok(&format!("/v1/merchants?near={TEMPLE}&within_m=2000&accepts_card={card}"));
    assert_eq!(ready["card"]["spendable"], 150);
    assert_eq!(ready["card"]["redeemable"], 150);
    let by_issuer: Vec<(String, u64)> = ready["card"]["spendable_by_issuer"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| (i["issuer"].as_str().unwrap_or("").to_owned(), i["points"].as_u64().unwrap_or(0)))
        .collect();
    let mut expected = vec![(pk("hotpot").to_hex(), 120), (pk("school").to_hex(), 30)];
    expected.sort();
    assert_eq!(by_issuer, expected);
    // Every active member within 2 km (the Jing'an three; the school is 3 km south).
    assert_eq!(ready["merchants"].as_array().map(Vec::len), Some(3));
    assert_eq!(n.names(&format!("/v1/merchants?accepts_points_of={}", pk("school").to_hex())).len(), MEMBERS.len());
}

#[test]
fn bad_queries_get_specific_errors() {
    let n = node("errors");
    for (path, status, code) in [
        ("/v1/merchants?within_m=500", 400, "radius-without-point"),
        ("/v1/merchants?near=91,0", 400, "latitude-out-of-range"),
        ("/v1/merchants?near=0,181", 400, "longitude-out-of-range"),
        ("/v1/merchants?near=31.2", 400, "bad-point"),
        ("/v1/merchants?near=31.2,121.4&within_m=2km", 400, "bad-radius"),
        ("/v1/merchants?near=31.2,121.4&within_m=-1", 400, "bad-radius"),
        ("/v1/merchants?near=31.2,121.4&within_m=0", 400, "zero-radius"),
        ("/v1/merchants?near=31.2,121.4&within_m=99999999", 400, "radius-too-large"),
        ("/v1/merchants?category=Food", 400, "bad-code"),
        ("/v1/merchants?radius=5", 400, "unknown-parameter"),
        ("/v1/merchants?near=1,1&near=2,2", 400, "repeated-parameter"),
        ("/v1/merchants?accepts_coupon=xyz", 400, "bad-hash"),
    ] {
        assert_eq!(n.error(path), (status, code.to_owned()), "{path}");
    }
    let unknown = secret("never-issued").hash().to_hex();
    assert_eq!(n.error(&format!("/v1/merchants?accepts_coupon={unknown}")), (404, "unknown-coupon".into()));
    assert_eq!(n.error(&format!("/v1/merchants?accepts_card={}", CardId([1; 16]).to_hex())), (404, "unknown-card".into()));
    assert_eq!(n.error(&format!("/v1/merchants?accepts_points_of={}", pk("stranger").to_hex())), (404, "unknown-issuer".into()));
    let both = format!("/v1/merchants?accepts_card={}&accepts_points_of={}", CardId([9; 16]).to_hex(), pk("gym").to_hex());
    assert_eq!(n.error(&both), (400, "conflicting-parameters".into()));
}

#[test]
fn districts_list_their_members() {
    let n = node("districts");
    let answer = n.ok("/v1/districts");
    let districts = answer["districts"].as_array().expect("list");
    assert_eq!(districts.iter().map(|d| d["code"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["jingan", "xuhui"]);
    assert_eq!(districts[0]["name"], "静安 Jing'an");
    assert_eq!(districts[0]["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(districts[0]["active_members"], 3);
    assert_eq!(districts[1]["members"][0]["name"], "school");
}

#[test]
fn the_openapi_description_has_the_nearby_queries() {
    let doc: Value = serde_json::from_str(plaza_node::api::OPENAPI).expect("openapi.json parses");
    let merchants = &doc["paths"]["/v1/merchants"]["get"];
    let mut documented: Vec<&str> = merchants["parameters"].as_array().expect("parameters").iter().filter_map(|p| p["name"].as_str()).collect();
    documented.sort();
    let mut implemented = plaza_node::nearby::MERCHANT_PARAMETERS.to_vec();
    implemented.sort();
    assert_eq!(documented, implemented);
    assert!(merchants["responses"]["400"].is_object() && merchants["responses"]["404"].is_object());
    assert!(doc["paths"]["/v1/districts"]["get"].is_object());
}

#[test]
fn the_explorer_lists_merchants_by_district_with_their_distance() {
    let n = node("explorer");
    let page = n.client.get(&format!("/merchants?near={TEMPLE}")).expect("request");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Distance"), "no distance column");
    // Nearest first: the gym (573 m) before hotpot (1.08 km) before the school (3.28 km).
    let table = &page.body[page.body.find("<table").expect("a table")..];
    let at = |name: &str| table.find(&format!(">{name}<")).unwrap_or_else(|| panic!("{name} listed"));
    assert!(at("gym") < at("hotpot") && at("hotpot") < at("school"));
    assert!(page.body.contains("573 m") && page.body.contains("1.08 km"), "integer distances shown");
    let xuhui = n.client.get(&format!("/merchants?district=xuhui&near={TEMPLE}")).expect("request");
    assert!(xuhui.body.contains("school") && !xuhui.body.contains("hotpot"));
    let bad = n.client.get("/merchants?near=91,0").expect("request");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("latitude"), "{}", bad.body);
}
