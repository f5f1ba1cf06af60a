//! The simulator's own tests: determinism, the seeded CI batch, and that it catches bugs.

use plaza_consensus::InjectedBugs;
use plaza_node::replica::ReplicaBugs;
use plaza_testnet::sim::{run, run_seeds, SimOptions};

#[test]
fn a_seed_replays_exactly() {
    let options = SimOptions::default();
    for seed in [3, 17] {
        let first = run(seed, &options);
        let second = run(seed, &options);
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed} did not replay identically");
        assert_eq!(first.finalized_height_min, second.finalized_height_min);
        assert_eq!(first.common_state_root, second.common_state_root);
    }
    assert_ne!(run(3, &options).trace_hash, run(4, &options).trace_hash, "different seeds, different runs");
}

#[test]
fn a_calm_cluster_finalizes_steadily() {
    let options = SimOptions { byzantine: false, network_faults: false, validator_counts: vec![4, 7], ..SimOptions::default() };
    for seed in 0..4 {
        let report = run(seed, &options);
        assert!(report.passed(), "{}: {:?}", report.scenario, report.violations);
        assert!(report.finalized_height_min >= 20, "{}: only {} blocks", report.scenario, report.finalized_height_min);
        assert!(report.finalized_records_min >= 50, "{}: only {} records", report.scenario, report.finalized_records_min);
    }
}

/// The CI batch: at least 1,000 seeds with mixed n and faults (PLAZA_SIM_SEEDS overrides).
#[test]
fn thousand_seeds_with_faults_are_safe_and_live() {
    let seeds: u64 = std::env::var("PLAZA_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let summary = run_seeds(&SimOptions::default(), 0..seeds, false);
    eprintln!("{summary}");
    assert_eq!(summary.runs, seeds);
    assert!(summary.passed(), "{summary}");
    assert!(summary.finalized_blocks > seeds * 5, "the cluster barely made progress: {summary}");
    assert!(summary.finalized_records > seeds * 20, "few records reached a block: {summary}");
}

/// The seeds of the long runs (`plaza sim --seeds 5000 --from 1000`, then seeds 6000–35999)
/// that never finalized again after their faults: a notarized block lost in crashes, a
/// leader's vote that only its proposal carried, a finalized block only block sync could hand
/// over, a notarization lost in crashes, a nullification only one validator held
/// (CONSENSUS.md, "The liveness gap the long run found"); and, from the first long run over
/// the replica (seeds 1000–20999), six where the simulator itself lost count: a crash dropped
/// the `Finalized` report of blocks already durably stored, so the node looked stuck.
#[test]
fn the_seeds_the_long_run_found_are_live() {
    let seeds = [1054, 1077, 1394, 1548, 2007, 2302, 2430, 2718, 2828, 3015, 3813, 3981, 4446, 4678, 5508, 5675, 5764, 15381, 17666, 18168, 31783];
    let options = SimOptions::default();
    for seed in seeds {
        let report = run(seed, &options);
        assert!(report.scenario.crashes && report.scenario.validators == 4, "seed {seed} is no longer the scenario it was");
        assert!(report.passed(), "{}: {:?}", report.scenario, report.violations);
    }
}

/// Each known bug is caught within a bounded number of seeds: the simulator can fail.
/// Consensus bugs, a driver bug (a vote handed out before the consensus-log write it depends
/// on) and a contract nondeterminism bug (execution fed the node's own clock).
#[test]
fn injected_bugs_are_caught() {
    let bugs = [
        ("quorum of 2f", InjectedBugs { quorum_too_small: true, ..InjectedBugs::default() }, ReplicaBugs::default()),
        (
            "finalize without notarization",
            InjectedBugs { finalize_without_notarization: true, ..InjectedBugs::default() },
            ReplicaBugs::default(),
        ),
        ("forgotten vote log", InjectedBugs { forget_vote_log: true, ..InjectedBugs::default() }, ReplicaBugs::default()),
        ("vote sent before its persist", InjectedBugs::default(), ReplicaBugs { send_before_persist: true, ..ReplicaBugs::default() }),
        ("execution reads the local clock", InjectedBugs::default(), ReplicaBugs { execute_at_local_time: true, ..ReplicaBugs::default() }),
    ];
    for (name, bugs, replica_bugs) in bugs {
        let options = SimOptions { bugs, replica_bugs, ..SimOptions::default() };
        let caught = (0..BUG_SEEDS_MAX).find_map(|seed| {
            let report = run(seed, &options);
            (!report.passed()).then_some((seed, report.violations))
        });
        let (seed, violations) = caught.unwrap_or_else(|| panic!("bug `{name}` survived {BUG_SEEDS_MAX} seeds"));
        eprintln!("bug `{name}` caught at seed {seed}: {}", violations[0]);
    }
}

const BUG_SEEDS_MAX: u64 = 200;

/// Validator changes by member vote under faults (n = 4 → 7 → 4, f Byzantine of the set in
/// force): every check holds across both changes, and the changes happen (PLAZA_SIM_EPOCH_SEEDS
/// overrides the count).
#[test]
fn validator_changes_under_faults_are_safe_and_live() {
    let seeds: u64 = std::env::var("PLAZA_SIM_EPOCH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let options = SimOptions::epochs();
    let summary = run_seeds(&options, 0..seeds, false);
    eprintln!("{summary}");
    assert!(summary.passed(), "{summary}");
    let reports: Vec<_> = (0..seeds.min(40)).map(|seed| run(seed, &options)).collect();
    let both = reports.iter().filter(|r| r.epoch_min == 2).count();
    let with_new = reports.iter().filter(|r| r.certificates_with_new_validators > 0).count();
    eprintln!("{both} of {} runs made both changes effective at every honest node; {with_new} have certificates signed by a voted-in validator", reports.len());
    assert!(both * 10 >= reports.len() * 8, "the changes rarely took effect: {both} of {}", reports.len());
    assert!(with_new * 10 >= reports.len() * 8, "voted-in validators rarely signed: {with_new} of {}", reports.len());
}

/// A calm epoch run: both changes take effect, the voted-in validators sign certificates.
#[test]
fn a_calm_alliance_changes_its_validators() {
    let options = SimOptions { byzantine: false, network_faults: false, ..SimOptions::epochs() };
    for seed in 0..3 {
        let report = run(seed, &options);
        assert!(report.passed(), "{}: {:?}", report.scenario, report.violations);
        assert_eq!(report.epoch_min, 2, "{}: both changes take effect", report.scenario);
        assert!(report.certificates_with_new_validators > 0, "{}", report.scenario);
    }
}

/// A node that keeps the old set one view into the new epoch is caught.
#[test]
fn the_old_set_one_view_too_long_is_caught() {
    let bugs = InjectedBugs { old_set_one_view_too_long: true, ..InjectedBugs::default() };
    let options = SimOptions { bugs, ..SimOptions::epochs() };
    let caught = (0..BUG_SEEDS_MAX).find_map(|seed| {
        let report = run(seed, &options);
        (!report.passed()).then_some((seed, report.violations))
    });
    let (seed, violations) = caught.unwrap_or_else(|| panic!("the old-set bug survived {BUG_SEEDS_MAX} seeds"));
    eprintln!("the old-set bug caught at seed {seed}: {}", violations[0]);
}
