//! The explorer in a real browser (issue 15): `plaza testnet --demo --keep-running` plays the
//! demo alliance day and leaves the nodes up; headless Chromium opens the pages and the test
//! asserts on the DOM — every merchant's name is there, the who-owes-whom SVG has one edge per
//! payment-plan transfer with the right payer, payee and amount, no merchant key is shown as
//! text where its name exists, every link answers 200 (HTML for the explorer's pages), Chinese
//! labels come with `?lang=zh`. Screenshots of the overview and a statement are kept under
//! `$CARGO_TARGET_TMPDIR/explorer/` (the CI artifacts). Then the testnet is stopped and its
//! nodes are started again from their homes: they must keep finalizing (the demo's clock jump
//! is kept in each node home, so block times agree after a restart).
//!
//! Chromium and the CJK fonts come from Debian's packages, installed by `.ci/browser-setup.sh`
//! (which skips what is present); the test runs it itself when `chromium` is missing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");
/// Pages the link check visits, at most (every block of the chain is linked from its child).
const CRAWL_PAGES_MAX: usize = 4000;

/// The `plaza testnet` process; stopped with SIGTERM (it then stops its nodes) on drop.
struct Testnet {
    child: Option<Child>,
}

impl Testnet {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Nodes started by the test itself (after the restart); SIGKILLed on drop.
struct Nodes(Vec<Child>);
impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Page {
    status: u16,
    content_type: String,
    body: String,
}

/// One GET over HTTP/1.1 (the explorer answers with Content-Length or chunks).
fn get(addr: SocketAddr, path: &str) -> Page {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the explorer");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: text/html\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let mut body = raw[split + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut data = body.as_slice();
        loop {
            let end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size");
            let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).expect("chunk size").trim(), 16).expect("chunk size");
            data = &data[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&data[..size]);
            data = &data[size + 2..];
        }
        body = out;
    }
    Page { status, content_type: header("content-type").unwrap_or_default(), body: String::from_utf8_lossy(&body).into_owned() }
}

fn json(addr: SocketAddr, path: &str) -> Value {
    let page = get(addr, path);
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn chromium() -> PathBuf {
    let find = || {
        ["chromium", "chromium-browser"].iter().find_map(|name| {
            let out = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (!path.is_empty()).then(|| PathBuf::from(path))
        })
    };
    if let Some(p) = find() {
        return p;
    }
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/browser-setup.sh");
    let status = Command::new("bash").arg(&setup).status().expect("run .ci/browser-setup.sh");
    assert!(status.success(), ".ci/browser-setup.sh failed");
    find().expect("chromium is installed by .ci/browser-setup.sh")
}

/// Runs headless Chromium with `args` (a fresh profile each time).
fn browser(chrome: &Path, profile: &Path, args: &[String]) -> String {
    let out = Command::new(chrome)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dump_dom(chrome: &Path, profile: &Path, url: &str) -> String {
    let dom = browser(chrome, profile, &["--window-size=1400,1000".into(), "--dump-dom".into(), url.into()]);
    assert!(dom.contains("</html>"), "no DOM for {url}: {dom}");
    dom
}

fn screenshot(chrome: &Path, profile: &Path, url: &str, file: &Path, size: &str) {
    let _ = std::fs::remove_file(file);
    browser(chrome, profile, &[format!("--screenshot={}", file.display()), format!("--window-size={size}"), url.into()]);
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("screenshot {}: {e}", file.display()));
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "screenshot {} looks empty", file.display());
}

/// Text a reader sees: tags (and so attributes such as hover titles) removed, and the
/// `<code class="key">` elements where a page deliberately shows a full key, and hover
/// titles, removed too.
fn visible_text(html: &str) -> String {
    let mut s = html.to_owned();
    // Full keys on detail pages, and the SVG's hover titles (<title> elements are tooltips).
    for (open, close) in [("<code class=\"key\">", "</code>"), ("<title>", "</title>")] {
        while let Some(start) = s.find(open) {
            let end = s[start..].find(close).map_or(s.len(), |e| start + e + close.len());
            s.replace_range(start..end, " ");
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Every `href="…"` of a page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("href=\"") {
        rest = &rest[i + 6..];
        let Some(end) = rest.find('"') else { break };
        out.push(unescape(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

/// The `<g class="edge" …>` elements of the first who-owes-whom SVG: (payer, payee, amount).
fn svg_edges(html: &str) -> Vec<(String, String, String)> {
    let start = html.find("<svg").expect("an SVG picture");
    let end = html[start..].find("</svg>").map_or(html.len(), |e| start + e);
    let svg = &html[start..end];
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        let i = tag.find(&key).unwrap_or_else(|| panic!("{name} on {tag}")) + key.len();
        unescape(&tag[i..i + tag[i..].find('"').expect("closing quote")])
    };
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find("<g class=\"edge\"") {
        let tag_end = rest[i..].find('>').expect("tag end") + i;
        let tag = &rest[i..tag_end];
        out.push((attr(tag, "data-payer"), attr(tag, "data-payee"), attr(tag, "data-amount")));
        rest = &rest[tag_end..];
    }
    out
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_demo_alliance_in_a_headless_browser_then_restarted() {
    let chrome = chromium();
    let dir = tempfile::tempdir().expect("temp dir");
    let alliance_dir = dir.path().join("alliance");
    let profile = dir.path().join("chromium-profile");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");

    // 1. The demo day, left running.
    let mut child = Command::new(PLAZA)
        .args(["testnet", "--nodes", "4", "--demo", "--keep-running", "--dir"])
        .arg(&alliance_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("plaza testnet");
    let stdout = child.stdout.take().expect("stdout");
    let mut testnet = Testnet { child: Some(child) };
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut output = Vec::new();
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(u) = line.trim().strip_prefix("explorer: ") {
                    break u.trim().to_owned();
                }
                output.push(line);
            }
            Err(_) => panic!("the demo printed no explorer URL; its output:\n{}", output.join("\n")),
        }
    };
    let addr: SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse().expect("explorer URL is http://ip:port/");
    let base = format!("http://{addr}");

    // What the pages must show, from the JSON API.
    let merchants: Vec<(String, String)> = json(addr, "/v1/merchants")["merchants"]
        .as_array()
        .expect("merchants")
        .iter()
        .map(|m| (m["key"].as_str().expect("key").to_owned(), m["name"].as_str().expect("name").to_owned()))
        .collect();
    assert!(merchants.len() >= 6, "the demo has six merchants");
    let promoters: Vec<(String, String)> = json(addr, "/v1/promoters")["promoters"]
        .as_array()
        .expect("promoters")
        .iter()
        .map(|p| (p["id"].as_str().expect("id").to_owned(), p["name"].as_str().expect("name").to_owned()))
        .collect();
    let name_of = |party: &str| -> String {
        if let Some(k) = party.strip_prefix("merchant:") {
            return merchants.iter().find(|(key, _)| key == k).map(|(_, n)| n.clone()).unwrap_or_else(|| panic!("unknown merchant {k}"));
        }
        let id = party.strip_prefix("promoter:").expect("a party");
        promoters.iter().find(|(p, _)| p == id).map(|(_, n)| n.clone()).unwrap_or_else(|| panic!("unknown promoter {id}"))
    };
    let latest = json(addr, "/v1/statements/latest");
    let plan: Vec<(String, String, String)> = latest["payment_plan"]
        .as_array()
        .expect("payment plan")
        .iter()
        .map(|t| {
            (name_of(t["payer"].as_str().expect("payer")), name_of(t["payee"].as_str().expect("payee")), t["amount"].as_str().expect("amount").to_owned())
        })
        .collect();
    assert!(!plan.is_empty(), "the demo's latest statement has a payment plan");

    // 2. The overview in the browser: names, the picture, one edge per transfer.
    let overview = dump_dom(&chrome, &profile, &format!("{base}/"));
    assert!(overview.contains("name=\"viewport\""), "a phone-friendly viewport");
    assert!(overview.contains("Riverside Merchants Alliance"), "the alliance's name");
    for (_, name) in &merchants {
        assert!(overview.contains(&maud_escape(name)), "merchant {name} on the overview");
    }
    let mut edges = svg_edges(&overview);
    let mut expected = plan.clone();
    edges.sort();
    expected.sort();
    assert_eq!(edges, expected, "one SVG edge per payment-plan transfer, with its payer, payee and amount");
    for (payer, payee, amount) in &plan {
        let shown = format!("{amount} CNY");
        let grouped = group(amount);
        assert!(overview.contains(&format!("{grouped} CNY")), "{payer} → {payee}: {shown} shown with the currency");
    }

    // 3. A statement page, and the screenshots.
    let period = latest["period"].as_u64().expect("period");
    let statement = dump_dom(&chrome, &profile, &format!("{base}/statements/{period}"));
    let mut statement_edges = svg_edges(&statement);
    statement_edges.sort();
    assert_eq!(statement_edges, expected);
    screenshot(&chrome, &profile, &format!("{base}/"), &artifacts.join("overview.png"), "1400,1000");
    screenshot(&chrome, &profile, &format!("{base}/statements/{period}"), &artifacts.join("statement.png"), "1400,1000");
    screenshot(&chrome, &profile, &format!("{base}/?lang=zh"), &artifacts.join("overview-zh-phone.png"), "390,844");

    // 4. Chinese labels.
    let zh = dump_dom(&chrome, &profile, &format!("{base}/?lang=zh"));
    assert!(zh.contains("lang=\"zh-CN\"") && zh.contains("谁欠谁") && zh.contains("付款计划"), "Chinese labels with ?lang=zh");

    // 5. Every link answers; explorer pages are HTML; no merchant key shown where its name is.
    let keys: Vec<&str> = merchants.iter().map(|(k, _)| k.as_str()).collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::from(["/".to_owned()]);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        assert!(seen.len() <= CRAWL_PAGES_MAX, "more than {CRAWL_PAGES_MAX} pages: a link loop?");
        let page = get(addr, &path);
        assert_eq!(page.status, 200, "link {path} answered {}: {}", page.status, &page.body[..page.body.len().min(300)]);
        let api = path.starts_with("/v1/") || path == "/openapi.json" || path == "/metrics";
        if api {
            *kinds.entry("api").or_default() += 1;
            continue;
        }
        if path.ends_with(".svg") {
            assert!(page.content_type.starts_with("image/svg+xml"), "{path}: {}", page.content_type);
            continue;
        }
        assert!(page.content_type.starts_with("text/html"), "{path} is {}", page.content_type);
        *kinds.entry("html").or_default() += 1;
        let text = visible_text(&page.body);
        for key in &keys {
            assert!(!text.contains(key) && !text.contains(&format!("{}…", &key[..8])), "{path} shows merchant key {key} as text instead of its name");
        }
        for link in links(&page.body) {
            if link.starts_with('/') && !link.contains("lang=") {
                let link = link.split('#').next().unwrap_or("").to_owned();
                if !seen.contains(&link) {
                    queue.push_back(link);
                }
            } else if link.starts_with('?') {
                // The language switch: the same page in the other language.
                let base_path = path.split('?').next().unwrap_or("/");
                let p = format!("{base_path}{link}");
                if !seen.contains(&p) && seen.len() < 5 {
                    queue.push_back(p);
                }
            }
        }
    }
    assert!(kinds.get("html").copied().unwrap_or(0) >= 20, "the crawl reached the pages: {kinds:?}");
    for must in ["/blocks", "/merchants", "/statements", "/coupons", "/governance"] {
        assert!(seen.contains(must), "the overview links to {must}");
    }
    assert!(seen.iter().any(|p| p.starts_with("/records/") && p.ends_with("/proof")), "a record links to its inclusion proof");
    assert!(seen.iter().any(|p| p.starts_with("/cards/")), "a card page is linked");

    // 6. Search by order id, merchant name and height.
    for (q, expect) in [("GYM-0001", "/records/"), ("Hot%20Pot", "/merchants/"), ("1", "/blocks/1")] {
        let page = get(addr, &format!("/search?q={q}"));
        assert_eq!(page.status, 200);
        assert!(links(&page.body).iter().any(|l| l.starts_with(expect)), "search {q} finds {expect}");
    }

    // 7. Stop the testnet; restart its nodes from their homes; they keep finalizing.
    let described: Value = serde_json::from_str(&std::fs::read_to_string(alliance_dir.join("testnet.json")).expect("testnet.json")).expect("json");
    let height_before = json(addr, "/v1/status")["height"].as_u64().expect("height");
    testnet.stop();
    // The nodes bind fresh ports (port 0), so each is restarted, as `plaza testnet` does, with
    // the current addresses of the ones already back as its peers.
    let mut nodes = Nodes(Vec::new());
    let mut apis: Vec<SocketAddr> = Vec::new();
    let mut peers: Vec<String> = Vec::new();
    for n in described["nodes"].as_array().expect("nodes") {
        let home = PathBuf::from(n["home"].as_str().expect("home"));
        let config_path = home.join("config.toml");
        let config = std::fs::read_to_string(&config_path).expect("config");
        let list = peers.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ");
        let config: String = config.lines().map(|l| if l.starts_with("peers = ") { format!("peers = [{list}]\n") } else { format!("{l}\n") }).collect();
        std::fs::write(&config_path, config).expect("write config");
        let _ = std::fs::remove_file(home.join("api.addr"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log")).expect("log");
        let err = log.try_clone().expect("log");
        nodes.0.push(
            Command::new(PLAZA).args(["start", "--home"]).arg(&home).stdin(Stdio::null()).stdout(log).stderr(err).spawn().expect("plaza start"),
        );
        let addr_file = home.join("api.addr");
        wait_until("a restarted node writes its API address", Duration::from_secs(30), || addr_file.exists());
        let api: SocketAddr = std::fs::read_to_string(&addr_file).expect("api.addr").trim().parse().expect("addr");
        let mut status = Value::Null;
        wait_until("a restarted node answers with its p2p address", Duration::from_secs(30), || {
            status = serde_json::from_str::<Value>(&get(api, "/v1/status").body).unwrap_or(Value::Null);
            status["listen"].as_array().is_some_and(|l| !l.is_empty())
        });
        peers.push(format!("{}/p2p/{}", status["listen"][0].as_str().expect("listen"), status["peer_id"].as_str().expect("peer id")));
        apis.push(api);
    }
    wait_until("the restarted nodes finalize new blocks", Duration::from_secs(90), || {
        apis.iter().all(|a| {
            TcpStream::connect_timeout(a, Duration::from_secs(1)).is_ok()
                && serde_json::from_str::<Value>(&get(*a, "/v1/status").body).ok().and_then(|v| v["height"].as_u64()).is_some_and(|h| h >= height_before + 5)
        })
    });
}

/// How maud writes a name into HTML.
fn maud_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `1234.50` → `1,234.50`.
fn group(amount: &str) -> String {
    let (units, cents) = amount.split_once('.').unwrap_or((amount, "00"));
    let mut out = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{cents}")
}
