//! `plaza keys`, `plaza genesis` and `plaza init` as a new user runs them, bad input included.

use std::path::Path;
use std::process::{Command, Output};

fn plaza(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plaza")).args(args).current_dir(dir).output().expect("run plaza")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "plaza failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A failure is one line starting with "error:", a non-zero exit, and never a panic.
fn fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure, got success: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.starts_with("error: "), "one-line error expected, got {stderr:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "no panic: {stderr:?}");
    assert!(stderr.contains(needle), "error should mention {needle:?}: {stderr:?}");
}

fn new_key(dir: &Path, name: &str) -> String {
    let out = ok(&plaza(&["keys", "new", "-o", name, "--json"], dir));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["public_key"].as_str().expect("public key").to_owned()
}

fn genesis_toml(members: &[(&str, &str, &str, Option<&str>)]) -> String {
    let mut t = String::from(
        "[alliance]\nname = \"Test Alliance\"\ngenesis_time = 2026-11-23T00:00:00+08:00\n\n\
         [[categories]]\ncode = \"restaurant\"\nname = \"Restaurants\"\n\n\
         [[categories]]\ncode = \"fitness\"\nname = \"Gyms\"\n\n\
         [[districts]]\ncode = \"riverside\"\nname = \"Riverside\"\n\n",
    );
    for (name, key, category, network) in members {
        t.push_str(&format!(
            "[[members]]\nname = \"{name}\"\nkey = \"{key}\"\ncategory = \"{category}\"\ndistrict = \"riverside\"\nlatitude = \"31.23\"\nlongitude = \"121.47\"\n"
        ));
        if let Some(n) = network {
            t.push_str(&format!("network_key = \"{n}\"\nvalidator = true\n"));
        }
        t.push('\n');
    }
    t
}

#[test]
fn keys_are_private_and_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public = new_key(dir.path(), "m.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("m.key")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(ok(&plaza(&["keys", "show", "m.key"], dir.path())).contains(&public));
    fails_with(&plaza(&["keys", "new", "-o", "m.key"], dir.path()), "m.key");
    std::fs::write(dir.path().join("junk.key"), "not a key").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path().join("junk.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    fails_with(&plaza(&["keys", "show", "junk.key"], dir.path()), "not a Plaza key");
    fails_with(&plaza(&["keys", "show", "missing.key"], dir.path()), "missing.key");
}

#[test]
fn genesis_and_init_from_a_clean_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let a = new_key(d, "a.key");
    let b = new_key(d, "b.key");
    let net = new_key(d, "a-net.key");
    std::fs::write(d.join("alliance.toml"), genesis_toml(&[("Hot Pot", &a, "restaurant", Some(&net)), ("Iron Gym", &b, "fitness", None)]))
        .expect("write");
    let out = ok(&plaza(&["genesis", "new", "alliance.toml", "-o", "genesis.bin", "--json"], d));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let id = v["alliance_id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 64);
    let shown: serde_json::Value = serde_json::from_str(&ok(&plaza(&["genesis", "show", "genesis.bin", "--json"], d))).expect("json");
    assert_eq!(shown["alliance_id"].as_str(), Some(id.as_str()), "the id is a function of the file");
    fails_with(&plaza(&["genesis", "new", "alliance.toml", "-o", "genesis.bin"], d), "exists");

    ok(&plaza(&["init", "--home", "home-a", "--genesis", "genesis.bin", "--key", "a.key", "--network-key", "a-net.key"], d));
    for f in ["config.toml", "genesis.bin", "api-token", "keys/merchant.key", "keys/network.key", "data/CURRENT"] {
        assert!(d.join("home-a").join(f).exists(), "{f} created");
    }
    fails_with(&plaza(&["init", "--home", "home-a", "--genesis", "genesis.bin", "--key", "a.key"], d), "already a node home");
    let stranger = new_key(d, "stranger.key");
    fails_with(&plaza(&["init", "--home", "home-x", "--genesis", "genesis.bin", "--key", "stranger.key"], d), &stranger);
    fails_with(&plaza(&["genesis", "show", "alliance.toml"], d), "not a Plaza genesis");
}

#[test]
fn bad_genesis_files_name_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let a = new_key(d, "a.key");
    let b = new_key(d, "b.key");
    let net = new_key(d, "net.key");
    let good = genesis_toml(&[("Hot Pot", &a, "restaurant", Some(&net)), ("Iron Gym", &b, "fitness", None)]);
    let identity_key = format!("01{}", "00".repeat(31));
    let cases: Vec<(String, &str)> = vec![
        (good.replace("[alliance]", "[alliance]\ncolour = \"red\""), "colour"),
        (good.replace(&b, "zz"), "not hex"),
        (good.replace(&b, &identity_key), "weak"),
        (good.replace(&b, &a), "same key"),
        (good.replace("category = \"fitness\"", "category = \"spa\""), "unknown category"),
        (good.replace("latitude = \"31.23\"", "latitude = \"31.2300001\""), "six decimals"),
        (good.replace("validator = true", "validator = false"), "validator"),
        (format!("{good}[policy]\nlock_days = 1\n"), "lock_days"),
        (format!("{good}[policy]\nreferral_rate_bps = 20000\n"), "more than 100%"),
        (format!("{good}[policy]\nmin_payout = \"-5\"\n"), "negative"),
        ("[alliance\nname = 1".to_string(), "line"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let file = format!("bad{i}.toml");
        std::fs::write(d.join(&file), text).expect("write");
        fails_with(&plaza(&["genesis", "new", &file, "-o", &format!("g{i}.bin")], d), needle);
        assert!(!d.join(format!("g{i}.bin")).exists(), "a bad genesis writes nothing");
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in [&["keys", "new"][..], &["keys", "show"], &["genesis", "new"], &["init"], &["sim"]] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push("--help");
        let out = ok(&plaza(&args, dir.path()));
        let example = out.contains("Example: plaza") || out.contains("Examples:\n  plaza");
        assert!(example, "{cmd:?} --help shows an example:\n{out}");
    }
}

/// docs/genesis.example.toml names the command that prints it, and with real keys filled in it
/// is a valid genesis whose promoters are registered from the start (issue 18).
#[test]
fn the_example_genesis_with_real_keys_registers_its_promoters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = ok(&plaza(&["genesis", "example"], dir.path()));
    assert!(example.contains("`plaza genesis example` prints this file"), "the example names the command that prints it");
    assert!(!example.contains("--example"), "no pointer to a command that does not exist");
    // Every placeholder value, as the example's header says (two members with a network key
    // each); the header's own instructions, comment lines, name them too and stay as they are.
    let mut i = 0;
    let mut text = String::new();
    for line in example.lines() {
        let mut line = line.to_owned();
        if !line.trim_start().starts_with('#') {
            for placeholder in ["<hex public key>", "<hex network key>"] {
                while line.contains(placeholder) {
                    i += 1;
                    let key = new_key(dir.path(), &format!("k{i}.key"));
                    line = line.replacen(placeholder, &key, 1);
                }
            }
        }
        text.push_str(&line);
        text.push('\n');
    }
    assert_eq!(i, 4, "two merchant keys and two network keys to fill in");
    std::fs::write(dir.path().join("alliance.toml"), &text).expect("write");
    ok(&plaza(&["genesis", "new", "alliance.toml", "-o", "genesis.bin"], dir.path()));
    let shown: serde_json::Value = serde_json::from_str(&ok(&plaza(&["genesis", "show", "genesis.bin", "--json"], dir.path()))).expect("json");
    assert_eq!(shown["promoters"], serde_json::json!([
        {"id": "kol-lily", "name": "Lily", "upstream": null},
        {"id": "kol-max", "name": "Max", "upstream": "kol-lily"},
    ]));
    // An upstream that is not a promoter of the genesis is a clear error.
    std::fs::write(dir.path().join("bad.toml"), text.replace("upstream = \"kol-lily\"", "upstream = \"kol-nobody\"")).expect("write");
    fails_with(&plaza(&["genesis", "new", "bad.toml", "-o", "bad.bin"], dir.path()), "upstream kol-nobody is not a promoter of the genesis");
}
