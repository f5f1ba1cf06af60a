//! Nearby members (issue 19): integer distances against a floating-point oracle and published
//! distances, and the merchant queries — ordering, radius edges, coupon places under
//! competitor isolation (S5, S6), a card's points (S7), bad input.

use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::contract::{MerchantStatus, State};
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::geo::{distance_m, GeoError, Point, RADIUS_M_MAX};
use plaza_ledger::money::Amount;
use plaza_ledger::nearby::{self, Accepts, CouponUnusable, Query, QueryError};
use plaza_ledger::policy::{Policy, DAY_MS};
use plaza_ledger::record::*;
use plaza_ledger::{Hash, Keypair, PublicKey};

// ----- distances -----

/// The haversine formula in f64 on the same sphere: the oracle (floats live only in tests).
fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_008.8_f64;
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dp = p2 - p1;
    let dl = (b.1 - a.1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    // atan2 form: well conditioned near antipodes too.
    2.0 * r * h.sqrt().atan2((1.0 - h).sqrt())
}

fn pt(lat_e6: i32, lon_e6: i32) -> Point {
    Point::new(lat_e6, lon_e6).expect("valid point")
}

fn oracle(a: Point, b: Point) -> f64 {
    let deg = |e6: i32| f64::from(e6) / 1e6;
    haversine_m((deg(a.latitude_e6()), deg(a.longitude_e6())), (deg(b.latitude_e6()), deg(b.longitude_e6())))
}

/// The documented bound: within 1 m of the exact great-circle distance on the mean sphere.
fn assert_within_a_metre(a: Point, b: Point) {
    let ours = distance_m(a, b) as f64;
    let exact = oracle(a, b);
    assert!((ours - exact).abs() <= 1.0, "{a} → {b}: {ours} m, oracle {exact:.3} m");
}

#[test]
fn distances_match_published_values() {
    // One degree of meridian, a quarter meridian and half the circumference on the mean sphere
    // (R = 6,371,008.8 m): R·π/180, R·π/2, R·π.
    assert_eq!(distance_m(pt(0, 0), pt(1_000_000, 0)), 111_195);
    assert_eq!(distance_m(pt(0, 0), pt(90_000_000, 0)), 10_007_557);
    assert_eq!(distance_m(pt(0, 0), pt(0, 180_000_000)), 20_015_114);
    assert_eq!(distance_m(pt(90_000_000, 0), pt(-90_000_000, 0)), RADIUS_M_MAX);
    // The poles are one point whatever the longitude.
    assert_eq!(distance_m(pt(90_000_000, 0), pt(90_000_000, 123_000_000)), 0);
    // The antimeridian: 0.2° of longitude on the equator, not 359.8°.
    assert_eq!(distance_m(pt(0, 179_900_000), pt(0, -179_900_000)), 22_239);
    // Rosetta Code's haversine task: Nashville BNA (36.12, -86.67) to Los Angeles LAX
    // (33.94, -118.40) is 2,887.2599506 km on a sphere of 6,372.8 km; scaled to the mean radius
    // that is 2,886,448 m.
    let bna_lax = distance_m(pt(36_120_000, -86_670_000), pt(33_940_000, -118_400_000));
    let published = 2_887_259.950_607_1_f64 * 6_371_008.8 / 6_372_800.0;
    assert!((bna_lax as f64 - published).abs() <= 1.0, "{bna_lax} vs {published}");
    // Across People's Square, Shanghai, to the Oriental Pearl Tower: about 2.6 km.
    assert_within_a_metre(pt(31_230_416, 121_473_701), pt(31_239_700, 121_499_700));
}

#[test]
fn distances_stay_within_a_metre_of_the_oracle() {
    // A fixed xorshift stream: city-scale pairs, continental pairs, and points near the poles
    // and the antimeridian.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut worst = 0.0_f64;
    for i in 0..20_000 {
        let lat = (next() % 180_000_001) as i32 - 90_000_000;
        let lon = (next() % 360_000_001) as i32 - 180_000_000;
        let a = pt(lat, lon);
        let b = match i % 3 {
            // Within about 5 km.
            0 => pt((lat + (next() % 90_001) as i32 - 45_000).clamp(-90_000_000, 90_000_000), (lon + (next() % 90_001) as i32 - 45_000).clamp(-180_000_000, 180_000_000)),
            1 => pt((next() % 180_000_001) as i32 - 90_000_000, (next() % 360_000_001) as i32 - 180_000_000),
            _ => pt(lat.signum() * (89_000_000 + (next() % 1_000_001) as i32), if lon > 0 { 180_000_000 - (next() % 100_000) as i32 } else { -180_000_000 + (next() % 100_000) as i32 }),
        };
        assert_within_a_metre(a, b);
        assert_eq!(distance_m(a, b), distance_m(b, a), "{a} {b}");
        worst = worst.max((distance_m(a, b) as f64 - oracle(a, b)).abs());
    }
    // Rounding to the metre is the whole error: the fixed point is far finer.
    assert!(worst <= 0.5 + 1e-3, "worst {worst}");
}

// ----- the queries -----

const T0: u64 = 1_795_363_200_000;

fn key(name: &str) -> Keypair {
    Keypair::from_seed(format!("nearby/{name}").as_bytes())
}
fn pk(name: &str) -> PublicKey {
    key(name).public()
}

/// Members in two Shanghai districts (静安 Jing'an, 徐汇 Xuhui); `teahouse` shares the gym's
/// spot, so the two tie on distance.
const MEMBERS: &[(&str, &str, &str, i32, i32)] = &[
    ("hotpot", "restaurant", "jingan", 31_229_600, 121_455_200),
    ("noodles", "restaurant", "jingan", 31_231_800, 121_458_900),
    ("gym", "fitness", "jingan", 31_227_900, 121_449_800),
    ("teahouse", "cafe", "jingan", 31_227_900, 121_449_800),
    ("school", "education", "xuhui", 31_195_500, 121_436_800),
    ("mart", "grocery", "xuhui", 31_193_000, 121_440_700),
];

/// Jing'an Temple.
fn temple() -> Point {
    pt(31_223_900, 121_446_000)
}

fn genesis() -> Genesis {
    let mut members: Vec<MerchantProfile> = MEMBERS
        .iter()
        .map(|(n, c, d, lat, lon)| MerchantProfile {
            key: pk(n),
            name: (*n).to_owned(),
            category: (*c).to_owned(),
            district: (*d).to_owned(),
            latitude_e6: *lat,
            longitude_e6: *lon,
            network_key: Some(key(&format!("{n}/net")).public()),
        })
        .collect();
    members.sort_by(|a, b| a.key.cmp(&b.key));
    let validators = ValidatorSet::new(
        ["hotpot", "gym", "school", "mart"].iter().map(|n| Validator { key: pk(n), network_key: key(&format!("{n}/net")).public() }).collect(),
    )
    .expect("validators");
    let named = |codes: &[(&str, &str)]| codes.iter().map(|(c, n)| Named { code: (*c).into(), name: (*n).into() }).collect();
    let g = Genesis {
        name: "Nearby".into(),
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms: T0,
        categories: named(&[("cafe", "Cafe"), ("education", "Education"), ("fitness", "Fitness"), ("grocery", "Grocery"), ("restaurant", "Restaurant")]),
        districts: named(&[("jingan", "静安 Jing'an"), ("pudong", "浦东 Pudong"), ("xuhui", "徐汇 Xuhui")]),
        members,
        validators,
        policy: Policy::default_v1(T0),
        promoters: Vec::new(),
    };
    g.validate().expect("test genesis is valid");
    g
}

struct Chain {
    state: State,
    now: u64,
}

impl Chain {
    fn new() -> Chain {
        Chain { state: State::from_genesis(&genesis()), now: T0 + 9 * 3_600_000 }
    }
    /// One block of records, each of which must be accepted.
    fn block(&mut self, records: &[(&str, Payload)]) -> Vec<Hash> {
        self.now += 1_000;
        let alliance = self.state.alliance_id();
        let records: Vec<Record> = records
            .iter()
            .map(|(who, payload)| Record::sign(RecordBody { alliance, signer: pk(who), created_at_ms: self.now, payload: payload.clone() }, &key(who)))
            .collect();
        let out = self.state.apply_block(self.now, &records).expect("valid block");
        for (r, receipt) in records.iter().zip(&out.receipts) {
            assert!(receipt.is_accepted(), "{} rejected: {:?}", r.payload().kind(), receipt.code());
        }
        records.iter().map(Record::id).collect()
    }
    fn find(&self, query: &Query) -> Result<Vec<(String, Option<u64>)>, QueryError> {
        let answer = nearby::find(&self.state, query, self.now)?;
        Ok(answer.merchants.iter().map(|l| (l.profile.name.clone(), l.distance_m)).collect())
    }
    fn names(&self, query: &Query) -> Vec<String> {
        self.find(query).expect("query").into_iter().map(|(n, _)| n).collect()
    }
}

fn near(within_m: Option<u64>) -> Query {
    Query { near: Some(temple()), within_m, active_only: true, ..Query::default() }
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("amount")
}

fn secret(text: &str) -> CodeSecret {
    CodeSecret::new(text.as_bytes()).expect("secret")
}

fn coupons(batch: &str, code: &str, places: Vec<Place>) -> Payload {
    Payload::IssueCoupons {
        batch: batch.into(),
        code_hashes: vec![secret(code).hash()],
        value: CouponValue::Fixed(amount("10.00")),
        min_spend: amount("50.00"),
        redeemable_at: places,
        funding: Funding::Issuer,
        expires_at_ms: T0 + 30 * DAY_MS,
    }
}

fn sale(order: &str, gross: &str, card: CardId) -> Payload {
    Payload::Sale { order: order.into(), gross: amount(gross), base: amount(gross), card: Some(card), referral_code: None, coupon_codes: vec![], points_redeemed: 0 }
}

#[test]
fn members_are_sorted_by_distance_then_key() {
    let chain = Chain::new();
    let all = chain.find(&near(None)).expect("query");
    assert_eq!(all.len(), MEMBERS.len());
    for w in all.windows(2) {
        assert!(w[0].1 <= w[1].1, "{all:?}");
    }
    // Every distance is the integer one from the temple.
    for (name, d) in &all {
        let (_, _, _, lat, lon) = MEMBERS.iter().find(|m| m.0 == name).expect("member");
        assert_eq!(*d, Some(distance_m(temple(), pt(*lat, *lon))));
    }
    // The gym and the teahouse share a spot: key order breaks the tie, and it is the nearest.
    let position = |name: &str| all.iter().position(|(n, _)| n == name).expect("listed");
    let (first, second) = if pk("gym") < pk("teahouse") { ("gym", "teahouse") } else { ("teahouse", "gym") };
    assert_eq!(all[position(first)].1, all[position(second)].1);
    assert_eq!((position(first), position(second)), (0, 1), "{all:?}");
    // Without a point: key order, no distances.
    let plain = chain.find(&Query::default()).expect("query");
    let mut keys: Vec<PublicKey> = MEMBERS.iter().map(|m| pk(m.0)).collect();
    keys.sort();
    assert_eq!(plain.iter().map(|(n, _)| pk(n)).collect::<Vec<_>>(), keys);
    assert!(plain.iter().all(|(_, d)| d.is_none()));
}

#[test]
fn the_radius_includes_its_edge_and_nothing_beyond() {
    let chain = Chain::new();
    let (_, _, _, lat, lon) = MEMBERS.iter().find(|m| m.0 == "hotpot").expect("hotpot");
    let d = distance_m(temple(), pt(*lat, *lon));
    assert!(d > 0);
    assert!(chain.names(&near(Some(d))).contains(&"hotpot".to_owned()));
    assert!(!chain.names(&near(Some(d - 1))).contains(&"hotpot".to_owned()));
    for r in [1, 500, d, 2_000, 5_000, RADIUS_M_MAX] {
        let listed = chain.find(&near(Some(r))).expect("query");
        assert!(listed.iter().all(|(_, dist)| dist.is_some_and(|x| x <= r)), "{r}: {listed:?}");
        let expected = MEMBERS.iter().filter(|m| distance_m(temple(), pt(m.3, m.4)) <= r).count();
        assert_eq!(listed.len(), expected, "radius {r}");
    }
    // Xuhui is about 3.5 km south: 2 km holds only Jing'an.
    let two_km = chain.names(&near(Some(2_000)));
    assert_eq!(two_km.len(), 4, "{two_km:?}");
    assert!(two_km.iter().all(|n| MEMBERS.iter().any(|m| m.0 == n && m.2 == "jingan")));
}

#[test]
fn category_and_district_filter() {
    let chain = Chain::new();
    assert_eq!(chain.names(&Query { category: Some("restaurant".into()), ..near(None) }).len(), 2);
    let xuhui = chain.names(&Query { district: Some("xuhui".into()), ..near(None) });
    assert_eq!(xuhui.len(), 2);
    assert!(xuhui.contains(&"school".to_owned()) && xuhui.contains(&"mart".to_owned()));
    assert!(chain.names(&Query { district: Some("pudong".into()), ..near(None) }).is_empty());
    assert!(chain.names(&Query { district: Some("xuhui".into()), category: Some("restaurant".into()), ..near(None) }).is_empty());
}

#[test]
fn a_coupon_is_usable_only_at_its_active_non_competing_places() {
    let mut chain = Chain::new();
    // Hotpot's batch names no place: every member, except its competitor noodles (S5).
    chain.block(&[("hotpot", coupons("anywhere", "hotpot-anywhere-1", vec![]))]);
    let anywhere = Query { accepts: Some(Accepts::Coupon(secret("hotpot-anywhere-1").hash())), ..near(None) };
    let names = chain.names(&anywhere);
    assert!(!names.contains(&"noodles".to_owned()), "{names:?}");
    assert_eq!(names.len(), MEMBERS.len() - 1);
    assert!(names.contains(&"hotpot".to_owned()));
    // The gym's batch for restaurants: both restaurants, nobody else.
    chain.block(&[("gym", coupons("for-diners", "gym-diners-1", vec![Place::Category("restaurant".into())]))]);
    let diners = Query { accepts: Some(Accepts::Coupon(secret("gym-diners-1").hash())), ..near(None) };
    let mut names = chain.names(&diners);
    names.sort();
    assert_eq!(names, ["hotpot", "noodles"]);
    // Within hotpot's distance of the temple only hotpot remains of the two.
    let d_hotpot = distance_m(temple(), pt(31_229_600, 121_455_200));
    let d_noodles = distance_m(temple(), pt(31_231_800, 121_458_900));
    assert!(d_hotpot < d_noodles);
    assert_eq!(chain.names(&Query { within_m: Some(d_hotpot), ..diners.clone() }), ["hotpot"]);
    // A batch listing one merchant that is later suspended: no place left.
    chain.block(&[("school", coupons("gym-only", "school-gym-1", vec![Place::Merchant(pk("gym"))]))]);
    let gym_only = Query { accepts: Some(Accepts::Coupon(secret("school-gym-1").hash())), ..near(None) };
    assert_eq!(chain.names(&gym_only), ["gym"]);
    let proposal = chain.block(&[("hotpot", Payload::Propose { action: Action::SuspendMerchant(pk("gym")) })])[0];
    chain.block(&[
        ("noodles", Payload::Vote { proposal, approve: true }),
        ("school", Payload::Vote { proposal, approve: true }),
        ("mart", Payload::Vote { proposal, approve: true }),
        ("teahouse", Payload::Vote { proposal, approve: true }),
    ]);
    assert_eq!(chain.state.merchant(&pk("gym")).map(|m| m.1), Some(MerchantStatus::Suspended));
    assert!(chain.names(&gym_only).is_empty());
    assert!(!chain.names(&anywhere).contains(&"gym".to_owned()));
    // The answer carries the coupon's facts.
    let answer = nearby::find(&chain.state, &anywhere, chain.now).expect("query");
    let facts = answer.coupon.expect("coupon facts");
    assert_eq!(facts.issuer, pk("hotpot"));
    assert_eq!(facts.unusable, None);
}

#[test]
fn a_redeemed_or_expired_coupon_is_usable_nowhere() {
    let mut chain = Chain::new();
    chain.block(&[("hotpot", coupons("spring", "hotpot-spring-1", vec![]))]);
    let q = Query { accepts: Some(Accepts::Coupon(secret("hotpot-spring-1").hash())), ..near(None) };
    assert!(!chain.names(&q).is_empty());
    // Expired at the query time (the state is unchanged).
    let later = nearby::find(&chain.state, &q, T0 + 30 * DAY_MS).expect("query");
    assert!(later.merchants.is_empty());
    assert_eq!(later.coupon.map(|c| c.unusable), Some(Some(CouponUnusable::Expired)));
    // Issuer-funded: the base excludes the 10.00 hotpot pays for.
    let redeem = Payload::Sale {
        order: "g-1".into(),
        gross: amount("80.00"),
        base: amount("70.00"),
        card: None,
        referral_code: None,
        coupon_codes: vec![secret("hotpot-spring-1")],
        points_redeemed: 0,
    };
    chain.block(&[("gym", redeem)]);
    let answer = nearby::find(&chain.state, &q, chain.now).expect("query");
    assert!(answer.merchants.is_empty());
    assert_eq!(answer.coupon.map(|c| c.unusable), Some(Some(CouponUnusable::Redeemed)));
}

#[test]
fn a_card_can_spend_its_points_at_every_active_member_nearby() {
    let mut chain = Chain::new();
    let card = CardId([7; 16]);
    chain.block(&[("hotpot", Payload::IssueCard { card })]);
    chain.block(&[("hotpot", sale("h-1", "200.00", card)), ("school", sale("s-1", "55.00", card))]);
    let q = Query { accepts: Some(Accepts::Card(card)), ..near(Some(2_000)) };
    // Points are held for a day (S7): nothing to spend yet.
    let answer = nearby::find(&chain.state, &q, chain.now).expect("query");
    assert!(answer.merchants.is_empty());
    let facts = answer.card.expect("card facts");
    assert_eq!((facts.spendable, facts.redeemable), (0, 0));
    // Two days on: spendable per issuer, and every active member within 2 km.
    let then = chain.now + 2 * DAY_MS;
    let answer = nearby::find(&chain.state, &q, then).expect("query");
    let facts = answer.card.expect("card facts");
    let mut expected = vec![(pk("hotpot"), 200), (pk("school"), 55)];
    expected.sort();
    assert_eq!(facts.spendable_by_issuer, expected);
    assert_eq!((facts.spendable, facts.debt, facts.redeemable, facts.home), (255, 0, 255, pk("hotpot")));
    let names: Vec<&str> = answer.merchants.iter().map(|l| l.profile.name.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().all(|n| MEMBERS.iter().any(|m| m.0 == *n && m.2 == "jingan")));
    // Points of one issuer: accepted at every active member, the issuer's competitor included.
    let of_hotpot = Query { accepts: Some(Accepts::PointsOf(pk("hotpot"))), ..near(None) };
    assert_eq!(chain.names(&of_hotpot).len(), MEMBERS.len());
}

#[test]
fn bad_queries_get_specific_errors() {
    let chain = Chain::new();
    let err = |q: Query| nearby::find(&chain.state, &q, chain.now).map(|_| ()).expect_err("refused");
    assert_eq!(err(Query { within_m: Some(100), ..Query::default() }), QueryError::RadiusWithoutPoint);
    assert_eq!(err(Query { category: Some("Food!".into()), ..near(None) }).code(), "bad-code");
    assert_eq!(err(Query { district: Some(String::new()), ..near(None) }).code(), "bad-code");
    let nobody = Keypair::from_seed(b"nearby/nobody").public();
    let q = Query { accepts: Some(Accepts::PointsOf(nobody)), ..near(None) };
    assert_eq!(err(q.clone()), QueryError::UnknownIssuer(nobody));
    assert!(err(q).is_not_found());
    let h = secret("never-issued-1").hash();
    assert_eq!(err(Query { accepts: Some(Accepts::Coupon(h)), ..near(None) }), QueryError::UnknownCoupon(h));
    assert_eq!(err(Query { accepts: Some(Accepts::Card(CardId([1; 16]))), ..near(None) }), QueryError::UnknownCard(CardId([1; 16])));
    assert_eq!(Point::parse("95,10").map_err(QueryError::from).map_err(|e| e.code()), Err("latitude-out-of-range"));
    assert_eq!(QueryError::from(GeoError::ZeroRadius).code(), "zero-radius");
}

#[test]
fn districts_list_their_members() {
    let genesis = genesis();
    let state = State::from_genesis(&genesis);
    let districts = nearby::districts(&genesis.districts, &state);
    let codes: Vec<&str> = districts.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["jingan", "pudong", "xuhui"]);
    assert_eq!(districts[0].name, Some("静安 Jing'an"));
    assert_eq!(districts[0].members.len(), 4);
    assert!(districts[1].members.is_empty());
    let xuhui: Vec<PublicKey> = districts[2].members.iter().map(|(p, _)| p.key).collect();
    let mut expected = vec![pk("school"), pk("mart")];
    expected.sort();
    assert_eq!(xuhui, expected);
}
