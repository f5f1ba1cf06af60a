//! README's "Using it" as a new user follows it (issue 16): the command lines of its two
//! first-alliance blocks are read from README.md itself, so the test and the README cannot
//! drift, and each is run as written by `sh -c` in a fresh directory, with the `plaza` under
//! test first on the PATH.
//!
//! The substitutions are mechanical and the README states them: each `<… address>` becomes
//! `127.0.0.1` (loopback only); `<hotpot's peer id>` the peer id `plaza keys show
//! hotpot-network.key --json` prints; `/tmp/plaza-dev` a fresh temporary directory; after
//! `plaza genesis example > alliance.toml`, each `<hex public key>` / `<hex network key>` the
//! public key of the key file its line's comment names (as the example's header says).
//! `plaza start` and `plaza testnet` lines run in the background until the test ends.
//!
//! Every other `plaza` line of "Using it" names a subcommand that exists (`--help` works).
//! Every wait polls with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use plaza_node::client::Client;
use serde_json::Value;

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");
const DEV_BLOCK: &str = "### A one-node alliance to try things";
const REAL_BLOCK: &str = "### A real alliance, one node per merchant";

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README.md")
}

/// The lines of the first ```sh block after `heading`.
fn block_after(readme: &str, heading: &str) -> Vec<String> {
    let at = readme.find(heading).unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("the block ends");
    rest[start..start + end].lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A directory to run README's lines in, with the background processes they started.
struct Session {
    dir: PathBuf,
    path_env: String,
    background: Vec<(String, Child)>,
}

impl Session {
    fn new(dir: &Path) -> Session {
        let bin = Path::new(PLAZA).parent().expect("binary dir").display().to_string();
        Session { dir: dir.to_owned(), path_env: format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()), background: Vec::new() }
    }
    fn command(&self, line: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(line).current_dir(&self.dir).env("PATH", &self.path_env).env_remove("PLAZA_API_TOKEN").stdin(Stdio::null());
        c
    }
    /// Runs a line to its end; it must succeed.
    fn run(&self, line: &str) -> String {
        let out: Output = self.command(line).output().expect("sh");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "README line failed ({:?}):\n  {line}\n{text}", out.status.code());
        text
    }
    /// Starts a long-running line in the background, its output in a log file.
    fn spawn(&mut self, line: &str) -> PathBuf {
        let log_path = self.dir.join(format!("background-{}.log", self.background.len()));
        let log = std::fs::File::create(&log_path).expect("log");
        let child = self.command(&format!("exec {line}")).stdout(log.try_clone().expect("log")).stderr(log).spawn().expect("spawn");
        self.background.push((line.to_owned(), child));
        log_path
    }
    fn check_alive(&mut self) {
        for (line, child) in &mut self.background {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("README's background line ended ({status}):\n  {line}");
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (_, child) in &mut self.background {
            // SIGINT, as Ctrl-C: the testnet stops its nodes; then make sure.
            let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for (_, child) in &mut self.background {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The API client of a node home once its node has written `api.addr` and answers.
fn node_client(session: &mut Session, home: &Path) -> Client {
    let addr_file = home.join("api.addr");
    wait_until(&format!("{} writes its API address", home.display()), Duration::from_secs(90), || {
        session.check_alive();
        addr_file.exists()
    });
    let addr = std::fs::read_to_string(&addr_file).expect("api.addr").trim().parse().expect("an address");
    let client = Client::new(addr, None);
    wait_until(&format!("{} is ready", home.display()), Duration::from_secs(90), || {
        session.check_alive();
        client.get("/readyz").is_ok_and(|a| a.status == 200)
    });
    client
}

/// The argument after `flag` in a command line.
fn arg_after(line: &str, flag: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.iter().position(|w| *w == flag).and_then(|i| words.get(i + 1)).map(|w| (*w).to_owned())
}

fn is_background(line: &str) -> bool {
    line.starts_with("plaza start ") || line.starts_with("plaza testnet ")
}

fn public_key(session: &Session, file: &str, field: &str) -> String {
    let out = session.run(&format!("plaza keys show {file} --json"));
    let v: Value = serde_json::from_str(&out).expect("keys show json");
    v[field].as_str().expect("key field").to_owned()
}

/// Fills the example genesis's placeholders with the keys the lines' comments name.
fn fill_genesis(session: &Session, file: &Path) {
    let text = std::fs::read_to_string(file).expect("alliance.toml");
    let mut filled = String::new();
    let mut count = 0;
    for line in text.lines() {
        let mut line = line.to_owned();
        for placeholder in ["<hex public key>", "<hex network key>"] {
            // The header's instructions name the placeholders too; only values are filled.
            if line.contains(placeholder) && !line.trim_start().starts_with('#') {
                let named = line.split("plaza keys show ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_else(|| panic!("the line names no key file: {line}"));
                line = line.replace(placeholder, &public_key(session, named, "public_key"));
                count += 1;
            }
        }
        filled.push_str(&line);
        filled.push('\n');
    }
    assert!(count >= 3, "the example's placeholders were found ({count})");
    std::fs::write(file, filled).expect("write alliance.toml");
}

#[test]
fn the_one_node_alliance_runs_as_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dev = dir.path().join("plaza-dev");
    let mut session = Session::new(dir.path());
    let lines = block_after(&readme(), DEV_BLOCK);
    assert!(lines.iter().all(|l| l.starts_with("plaza ")), "only plaza commands: {lines:?}");
    let mut outputs = Vec::new();
    for raw in &lines {
        let line = raw.replace("/tmp/plaza-dev", dev.to_str().expect("path"));
        if is_background(&line) {
            session.spawn(&line);
            node_client(&mut session, &dev.join("node0"));
        } else {
            outputs.push(session.run(&line));
        }
    }
    // The retry answered the original; verify re-executed the chain.
    assert!(outputs.iter().any(|o| o.contains("already on the ledger")), "{outputs:#?}");
    assert!(lines.iter().any(|l| l.starts_with("plaza verify")), "the block ends with the auditor's check");
}

#[test]
fn the_real_alliance_runs_as_written_on_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut session = Session::new(dir.path());
    let lines = block_after(&readme(), REAL_BLOCK);
    assert!(lines.iter().all(|l| l.starts_with("plaza ")), "only plaza commands: {lines:?}");
    let mut clients: Vec<(String, Client)> = Vec::new();
    let mut outputs = Vec::new();
    for raw in &lines {
        let mut line = raw.replace("<hotpot's address>", "127.0.0.1").replace("<gym's address>", "127.0.0.1");
        if line.contains("<hotpot's peer id>") {
            line = line.replace("<hotpot's peer id>", &public_key(&session, "hotpot-network.key", "peer_id"));
        }
        assert!(!line.contains('<') || line.contains(" > "), "a placeholder the test does not know: {line}");
        if is_background(&line) {
            session.spawn(&line);
            let home = arg_after(&line, "--home").expect("--home");
            let client = node_client(&mut session, &dir.path().join(&home));
            clients.push((home, client));
        } else {
            let out = session.run(&line);
            if line.starts_with("plaza genesis example") {
                fill_genesis(&session, &dir.path().join("alliance.toml"));
            }
            if line.starts_with("plaza init") {
                assert!(out.contains("peer id") && out.contains("--peer /ip4/127.0.0.1/tcp/"), "init prints the peer id and address: {out}");
            }
            outputs.push((line, out));
        }
    }
    assert_eq!(clients.len(), 2, "two nodes started");
    // Both nodes hold the same chain, with the merchants' sales in it.
    let status = |c: &Client| -> Value { c.get("/v1/status").expect("status").ok_json().expect("json") };
    let (hotpot, gym) = (&clients[0].1, &clients[1].1);
    assert_eq!(status(hotpot)["validator"], true);
    assert_eq!(status(gym)["validator"], false, "the gym's node does not vote");
    let target = status(hotpot)["height"].as_u64().expect("height");
    wait_until("the gym's node has Hot Pot's chain", Duration::from_secs(60), || status(gym)["height"].as_u64().unwrap_or(0) >= target);
    let block = |c: &Client| -> Value { c.get(&format!("/v1/blocks/{target}")).expect("block").ok_json().expect("json") };
    assert_eq!(block(hotpot)["id"], block(gym)["id"], "one chain");
    let verify = outputs.iter().find(|(l, _)| l.starts_with("plaza verify")).expect("a verify line");
    assert!(!verify.1.is_empty(), "verify printed its report");
}

/// The other `plaza` lines in "Using it" name commands that exist.
#[test]
fn every_other_readme_command_exists() {
    let readme = readme();
    let section = &readme[readme.find("## Using it").expect("Using it")..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut checked = 0;
    for line in section.lines().filter(|l| l.starts_with("plaza ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).take_while(|w| !w.starts_with('-') && !w.starts_with('#') && !w.starts_with('>')).collect();
        // `plaza keys show FILE`: the subcommand path is at most two words.
        let path: Vec<&str> = words.into_iter().take(2).collect();
        let mut args = path.clone();
        args.push("--help");
        let out = Command::new(PLAZA).args(&args).output().expect("plaza");
        let ok = out.status.success() || {
            // A second word that is an argument (`plaza verify-proof FILE`): the first alone.
            Command::new(PLAZA).args([path[0], "--help"]).output().is_ok_and(|o| o.status.success())
        };
        assert!(ok, "README's command does not exist: {line}");
        checked += 1;
    }
    assert!(checked >= 20, "README's lines were found ({checked})");
}
