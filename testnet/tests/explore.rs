use plaza_testnet::sim::{run, SimOptions};
#[test]
fn explore() {
    let n: u64 = std::env::var("SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut options = SimOptions::default();
    if std::env::var("CALM").is_ok() { options.network_faults = false; options.byzantine = false; }
    let t = std::time::Instant::now();
    for seed in 0..n {
        let s = std::time::Instant::now();
        let r = run(seed, &options);
        println!("{} h={} views={} msgs={} {:?} {}", r.scenario, r.finalized_height_min, r.views_max, r.messages, s.elapsed(), r.violations.first().cloned().unwrap_or_default());
    }
    println!("total {:?}", t.elapsed());
}
