//! Where the demo alliance's members are (issue 19): realistic coordinates in two Shanghai
//! districts (商圈), so `plaza query merchants --near …` and `GET /v1/districts` show a true
//! picture: three members around Jing'an Temple, three around Xujiahui, about 3.5 km apart.

/// The demo's districts: code and display name.
pub const DEMO_DISTRICTS: [(&str, &str); 2] = [("jingan", "静安 Jing'an"), ("xuhui", "徐汇 Xuhui")];

/// A point to query from in the demo: Jing'an Temple (latitude, longitude in microdegrees).
pub const DEMO_QUERY_POINT: (i32, i32) = (31_223_900, 121_446_000);

/// The six demo merchants' places, in the demo's merchant order (Hot Pot Palace, Iron Gym,
/// Little Oxford English, FreshMart, Noodle House, Starlight Cinema): district, latitude and
/// longitude in microdegrees.
const DEMO_PLACES: [(&str, i32, i32); 6] = [
    ("jingan", 31_229_600, 121_455_200),
    ("jingan", 31_227_900, 121_449_800),
    ("xuhui", 31_195_500, 121_436_800),
    ("xuhui", 31_193_000, 121_440_700),
    ("jingan", 31_231_800, 121_458_900),
    ("xuhui", 31_197_600, 121_433_000),
];

/// The i-th demo member's (district, latitude_e6, longitude_e6). Members beyond the six
/// alternate between the two districts, each a further 150 m or so from its district's first.
pub fn demo_place(i: usize) -> (&'static str, i32, i32) {
    if let Some(p) = DEMO_PLACES.get(i) {
        return *p;
    }
    let (district, lat, lon) = DEMO_PLACES[if i % 2 == 0 { 0 } else { 2 }];
    let step = (i / 2).min(200) as i32 * 1_350;
    (district, lat + step, lon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_ledger::geo::{distance_m, Point};

    fn point(lat: i32, lon: i32) -> Point {
        Point::new(lat, lon).expect("a valid place")
    }

    #[test]
    fn demo_places_are_valid_and_grouped_in_their_districts() {
        let from = point(DEMO_QUERY_POINT.0, DEMO_QUERY_POINT.1);
        for i in 0..64 {
            let (district, lat, lon) = demo_place(i);
            assert!(DEMO_DISTRICTS.iter().any(|(code, _)| *code == district), "{i}: {district}");
            let d = distance_m(from, point(lat, lon));
            if i < DEMO_PLACES.len() {
                // Jing'an's members are within 2 km of the temple, Xuhui's beyond 3 km.
                match district {
                    "jingan" => assert!(d <= 2_000, "{i}: {d} m"),
                    _ => assert!(d > 3_000, "{i}: {d} m"),
                }
            } else {
                assert!(d < 50_000, "{i}: {d} m");
            }
        }
        assert_eq!(DEMO_PLACES.iter().filter(|p| p.0 == "jingan").count(), 3);
    }
}
