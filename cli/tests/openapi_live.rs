//! The OpenAPI description against the live API (issue 16): every operation of
//! `node/openapi.json` is called on real `plaza` nodes, with valid inputs and with the error
//! cases it documents, and every answer is checked against the description — its status must
//! be listed for that operation, its content type must be the one listed, and a JSON body
//! must match the response's schema. The test walks the document, not a list of routes: an
//! operation (or a documented status) that no case exercises fails it, so a new route needs
//! a case here.
//!
//! The schemas are checked by a small validator for the subset of OpenAPI 3.0 the document
//! uses (it refuses any other keyword or format, so the subset cannot grow unnoticed). One
//! rule is stricter than OpenAPI: an object schema with `properties` and no
//! `additionalProperties` is closed — every field an answer carries must be described (the
//! properties of `allOf` siblings count).
//!
//! Two alliances: the demo's six merchants on one node, after the demo's day (governance,
//! cards, referrals, coupons, points, an agreement, refunds, two statements), and one node of
//! four validators alone (not ready, nothing final, its testnet clock off). Every wait polls
//! with a deadline; nothing sleeps to hide a race.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::record::CodeSecret;
use plaza_ledger::{Hash, Keypair};
use plaza_node::config::NodeConfig;
use plaza_testnet::local::{Layout, LocalTestnet};
use serde_json::{json, Value};

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");
const OPENAPI_FILE: &str = include_str!("../../node/openapi.json");
/// The request body limit of the demo node, so a body over it is cheap to send.
const BODY_BYTES_MAX: usize = 8192;
/// A guest token of the demo node, allowed two records per signer a minute.
const GUEST_TOKEN: &str = "guest-token-for-the-openapi-test-0123456789";
const GUEST_RECORDS_PER_MINUTE: u64 = 2;

const HOTPOT: usize = 0;
const GYM: usize = 1;
const SCHOOL: usize = 2;
const MARKET: usize = 3;
const CINEMA: usize = 5;

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// HTTP: one request per connection, with the content type the answer names.

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the node");
    stream.set_read_timeout(Some(Duration::from_secs(90))).expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body.unwrap_or("").as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let mut body = raw[split + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        body = dechunk(&body);
    }
    Answer { status, content_type: header("content-type").unwrap_or_default(), body: String::from_utf8_lossy(&body).into_owned() }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&data[..end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).expect("a chunk size");
        data = &data[end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}

/// `type/subtype` without parameters, lower case.
fn essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------
// The schema validator.

/// Every keyword the document may use; the validator knows each.
const KEYWORDS: &[&str] = &[
    "type", "properties", "required", "items", "$ref", "enum", "nullable", "additionalProperties", "oneOf", "allOf", "format", "minimum",
    "maximum", "minItems", "maxItems", "description", "example", "default", "pattern",
];
const FORMATS: &[&str] = &["hash", "public-key", "card-id", "hex", "amount", "signed-amount", "party", "place"];

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
fn amount(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "00"));
    !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()) && (1..=2).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit())
}
fn key_hex(s: &str) -> bool {
    s.len() == 64 && lower_hex(s)
}

fn format_holds(format: &str, s: &str) -> bool {
    match format {
        "hash" | "public-key" => key_hex(s),
        "card-id" => s.len() == 32 && lower_hex(s),
        "hex" => s.len() % 2 == 0 && lower_hex(s),
        "amount" => amount(s),
        "signed-amount" => amount(s.strip_prefix('-').unwrap_or(s)),
        "party" => s.strip_prefix("merchant:").is_some_and(key_hex) || s.strip_prefix("promoter:").is_some_and(|p| !p.is_empty()),
        "place" => s.strip_prefix("merchant:").is_some_and(key_hex) || s.strip_prefix("category:").is_some_and(|c| !c.is_empty()),
        other => panic!("the validator knows no format {other:?}"),
    }
}

struct Validator<'a> {
    doc: &'a Value,
}

impl Validator<'_> {
    /// Follows `$ref`s (`#/…` pointers into the document).
    fn resolve<'s>(&'s self, mut node: &'s Value) -> &'s Value {
        for _ in 0..32 {
            let Some(target) = node.get("$ref").and_then(Value::as_str) else { return node };
            assert_eq!(node.as_object().map(serde_json::Map::len), Some(1), "a $ref stands alone (OpenAPI 3.0 ignores its siblings): {node}");
            let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("only local $refs: {target}"));
            node = self.doc.pointer(pointer).unwrap_or_else(|| panic!("$ref {target} points at nothing"));
        }
        panic!("a $ref cycle at {node}");
    }

    /// The property names a schema describes, through its `allOf`.
    fn property_names(&self, schema: &Value, into: &mut BTreeSet<String>) {
        let schema = self.resolve(schema);
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            into.extend(p.keys().cloned());
        }
        for member in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.property_names(member, into);
        }
    }

    fn errors(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &BTreeSet::new(), &mut errors);
        errors
    }

    /// `siblings`: the properties `allOf` siblings describe (so not undocumented here).
    fn check(&self, schema: &Value, value: &Value, at: &str, siblings: &BTreeSet<String>, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let o = schema.as_object().unwrap_or_else(|| panic!("a schema is an object: {schema}"));
        if let Some(k) = o.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
            panic!("the validator knows no keyword {k:?} (at {at}): {schema}");
        }
        if value.is_null() && o.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(members) = o.get("allOf").and_then(Value::as_array) {
            let mut names = siblings.clone();
            for m in members {
                self.property_names(m, &mut names);
            }
            if let Some(p) = o.get("properties").and_then(Value::as_object) {
                names.extend(p.keys().cloned());
            }
            for m in members {
                self.check(m, value, at, &names, errors);
            }
        }
        if let Some(branches) = o.get("oneOf").and_then(Value::as_array) {
            let outcomes: Vec<Vec<String>> = branches
                .iter()
                .map(|b| {
                    let mut e = Vec::new();
                    self.check(b, value, at, siblings, &mut e);
                    e
                })
                .collect();
            let matched = outcomes.iter().filter(|e| e.is_empty()).count();
            if matched != 1 {
                let closest = outcomes.iter().filter(|e| !e.is_empty()).min_by_key(|e| e.len()).map(|e| e.join("; ")).unwrap_or_default();
                errors.push(format!("{at}: matches {matched} of {} oneOf branches (closest: {closest})", branches.len()));
            }
        }
        if let Some(allowed) = o.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        if let Some(t) = o.get("type").and_then(Value::as_str) {
            let fits = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => panic!("unknown type {other:?} at {at}"),
            };
            if !fits {
                errors.push(format!("{at}: {value} is not of type {t}"));
                return;
            }
        }
        if let (Some(p), Some(s)) = (o.get("pattern").and_then(Value::as_str), value.as_str()) {
            let re = regex::Regex::new(p).unwrap_or_else(|e| panic!("pattern {p:?} at {at}: {e}"));
            if !re.is_match(s) {
                errors.push(format!("{at}: {s:?} does not match {p}"));
            }
        }
        if let (Some(f), Some(s)) = (o.get("format").and_then(Value::as_str), value.as_str())
            && !format_holds(f, s)
        {
            errors.push(format!("{at}: {s:?} is not of format {f}"));
        }
        if let Some(n) = value.as_f64() {
            if o.get("minimum").and_then(Value::as_f64).is_some_and(|m| n < m) {
                errors.push(format!("{at}: {value} is below the minimum"));
            }
            if o.get("maximum").and_then(Value::as_f64).is_some_and(|m| n > m) {
                errors.push(format!("{at}: {value} is above the maximum"));
            }
        }
        if let Some(items) = value.as_array() {
            if o.get("minItems").and_then(Value::as_u64).is_some_and(|m| (items.len() as u64) < m) {
                errors.push(format!("{at}: fewer than minItems items"));
            }
            if o.get("maxItems").and_then(Value::as_u64).is_some_and(|m| items.len() as u64 > m) {
                errors.push(format!("{at}: more than maxItems items"));
            }
            if let Some(item_schema) = o.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.check(item_schema, item, &format!("{at}[{i}]"), &BTreeSet::new(), errors);
                }
            }
        }
        if let Some(fields) = value.as_object() {
            for name in o.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    errors.push(format!("{at}: the required field {name:?} is missing"));
                }
            }
            let properties = o.get("properties").and_then(Value::as_object);
            for (name, field) in fields {
                let here = format!("{at}.{name}");
                match (properties.and_then(|p| p.get(name)), o.get("additionalProperties")) {
                    (Some(s), _) => self.check(s, field, &here, &BTreeSet::new(), errors),
                    (None, Some(Value::Bool(true))) => {}
                    (None, Some(Value::Bool(false))) => errors.push(format!("{here}: not allowed (additionalProperties: false)")),
                    (None, Some(s)) => self.check(s, field, &here, &BTreeSet::new(), errors),
                    // The test's rule: a described object is closed, `allOf` siblings included.
                    (None, None) if properties.is_some() && !siblings.contains(name) => errors.push(format!("{here}: a field the schema does not describe")),
                    (None, None) => {}
                }
            }
        }
    }

    /// Checks a schema and everything under it for keywords, formats and $refs the validator
    /// knows, without a value.
    fn check_schema(&self, schema: &Value, at: &str, seen: &mut BTreeSet<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            if seen.insert(r.to_owned()) {
                self.check_schema(self.resolve(schema), r, seen);
            }
            return;
        }
        let o = schema.as_object().unwrap_or_else(|| panic!("{at}: a schema is an object"));
        if let Some(k) = o.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
            panic!("{at}: the validator knows no keyword {k:?}");
        }
        if let Some(f) = o.get("format").and_then(Value::as_str) {
            assert!(FORMATS.contains(&f), "{at}: the validator knows no format {f:?}");
        }
        for p in o.get("properties").and_then(Value::as_object).into_iter().flatten() {
            self.check_schema(p.1, &format!("{at}.{}", p.0), seen);
        }
        for key in ["items", "additionalProperties"] {
            if let Some(s) = o.get(key).filter(|s| s.is_object()) {
                self.check_schema(s, &format!("{at}.{key}"), seen);
            }
        }
        for key in ["allOf", "oneOf"] {
            for (i, s) in o.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
                self.check_schema(s, &format!("{at}.{key}[{i}]"), seen);
            }
        }
    }
}

#[test]
fn the_validator_checks_what_it_claims() {
    let doc = json!({"components": {"schemas": {
        "Hash": {"type": "string", "format": "hash"},
        "Base": {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": 0}}},
        "Both": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/Hash"}}}]},
        "Either": {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["x"]}]},
        "Maybe": {"type": "string", "nullable": true},
    }}});
    let v = Validator { doc: &doc };
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let ok = |name: &str, value: Value| assert!(v.errors(&schema(name), &value).is_empty(), "{name} {value}: {:?}", v.errors(&schema(name), &value));
    let bad = |name: &str, value: Value| assert!(!v.errors(&schema(name), &value).is_empty(), "{name} accepts {value}");
    ok("Both", json!({"a": 1, "b": "ab".repeat(32)}));
    bad("Both", json!({"a": 1, "b": "AB".repeat(32)}));
    bad("Both", json!({"a": -1}));
    bad("Both", json!({"b": "ab".repeat(32)}));
    bad("Both", json!({"a": 1, "c": 2}));
    bad("Base", json!({"a": 1, "b": 2}));
    bad("Base", json!({"a": 1.5}));
    ok("Either", json!(true));
    ok("Either", json!("x"));
    bad("Either", json!("y"));
    ok("Maybe", json!(null));
    bad("Hash", json!(null));
    assert!(amount("12.50") && amount("0") && !amount("1.234") && !amount("-1.00") && !amount(".5"));
}

// ---------------------------------------------------------------------------------------
// Calling the operations.

/// A node to call: its API address and token.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    token: String,
}

#[derive(Clone, Copy)]
enum Auth {
    Node,
    Guest,
    Wrong,
    None,
}

enum Body {
    Json(Value),
    Raw(String),
}

struct Operation {
    id: String,
    template: String,
    method: String,
}

struct Checker<'a> {
    doc: &'a Value,
    v: Validator<'a>,
    operations: Vec<Operation>,
    /// Operation id → the response keys ("200", "404", "default") a case has answered with.
    exercised: BTreeMap<String, BTreeSet<String>>,
    /// Operation id → a method and path a case called successfully.
    samples: BTreeMap<String, (String, String)>,
    cases: usize,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

impl<'a> Checker<'a> {
    fn new(doc: &'a Value) -> Checker<'a> {
        let mut operations = Vec::new();
        for (template, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {template}: no operationId")).to_owned();
                operations.push(Operation { id, template: template.clone(), method: method.clone() });
            }
        }
        Checker { doc, v: Validator { doc }, operations, exercised: BTreeMap::new(), samples: BTreeMap::new(), cases: 0 }
    }

    /// The operation a request addresses, as a router would pick it: the path template that
    /// matches with the most literal segments.
    fn operation(&self, method: &str, path: &str) -> &Operation {
        let concrete = segments(path.split('?').next().unwrap_or(""));
        self.operations
            .iter()
            .filter(|o| o.method.eq_ignore_ascii_case(method))
            .filter_map(|o| {
                let t = segments(&o.template);
                let fits = t.len() == concrete.len() && t.iter().zip(&concrete).all(|(t, c)| t.starts_with('{') || t == c);
                fits.then(|| (t.iter().filter(|s| !s.starts_with('{')).count(), o))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, o)| o)
            .unwrap_or_else(|| panic!("openapi.json has no operation for {method} {path}"))
    }


    fn op_json(&self, o: &Operation) -> &'a Value {
        &self.doc["paths"][&o.template][&o.method]
    }

    /// Calls `method path`, checks the answer against the description and returns its JSON
    /// (null for another content type). `expect`: the status the case must get; `code`: the
    /// error code it must carry. `via_default`: the status is one the operation's `default`
    /// answer covers (generic errors); otherwise it must be listed.
    #[allow(clippy::too_many_arguments)]
    fn call(&mut self, node: &Target, method: &str, path: &str, auth: Auth, body: Option<Body>, expect: u16, code: Option<&str>, via_default: bool) -> Value {
        self.cases += 1;
        let operation = self.operation(method, path);
        let (op_id, op) = (operation.id.clone(), self.op_json(operation));
        let what = format!("{op_id} ({method} {path})");
        let token = match auth {
            Auth::Node => Some(node.token.as_str()),
            Auth::Guest => Some(GUEST_TOKEN),
            Auth::Wrong => Some("not-the-token"),
            Auth::None => None,
        };
        let text = body.as_ref().map(|b| match b {
            Body::Json(v) => v.to_string(),
            Body::Raw(s) => s.clone(),
        });
        let answer = http(node.addr, method, path, token, text.as_deref());
        let shown: String = answer.body.chars().take(600).collect();
        assert_eq!(answer.status, expect, "{what}: status {} (expected {expect}): {shown}", answer.status);
        // The status is documented for the operation.
        let key = answer.status.to_string();
        let responses = &op["responses"];
        let (key, response) = match responses.get(&key) {
            Some(r) if !via_default => (key, r),
            Some(_) => panic!("{what}: {key} is listed; the case should not count on `default`"),
            None if via_default => ("default".to_owned(), responses.get("default").unwrap_or_else(|| panic!("{what}: no default answer"))),
            None => panic!("{what}: status {key} is not documented for {op_id}: {shown}"),
        };
        let response = self.v.resolve(response);
        // The content type is the documented one, and a JSON body matches its schema.
        let content = response.get("content").and_then(Value::as_object);
        let Some(content) = content else {
            assert!(answer.body.is_empty(), "{what}: the description lists no content for {key}, the answer has: {shown}");
            return Value::Null;
        };
        let media = essence(&answer.content_type);
        let (_, described) =
            content.iter().find(|(m, _)| essence(m) == media).unwrap_or_else(|| panic!("{what}: content type {:?} is not one of {:?}", answer.content_type, content.keys().collect::<Vec<_>>()));
        let schema = described.get("schema").unwrap_or_else(|| panic!("{what}: {media} without a schema"));
        let value = if media == "application/json" {
            let value: Value = serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {shown}"));
            let errors = self.v.errors(schema, &value);
            assert!(errors.is_empty(), "{what}: the {key} answer does not match its schema:\n  {}\nanswer: {shown}", errors.join("\n  "));
            value
        } else {
            let errors = self.v.errors(schema, &Value::String(answer.body.clone()));
            assert!(errors.is_empty() && !answer.body.is_empty(), "{what}: {errors:?}");
            Value::Null
        };
        if let Some(code) = code {
            assert_eq!(value["code"].as_str(), Some(code), "{what}: error code: {shown}");
        }
        if (200..300).contains(&answer.status) {
            // What a valid case sends is what the description says it may send.
            if let Some(Body::Json(sent)) = &body {
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                assert!(!schema.is_null(), "{what}: a JSON body, but no request schema");
                let errors = self.v.errors(schema, sent);
                assert!(errors.is_empty(), "{what}: the request does not match its schema: {errors:?}\nrequest: {sent}");
            }
            let documented: BTreeSet<&str> =
                op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query").filter_map(|p| p["name"].as_str()).collect();
            for pair in path.split_once('?').map(|(_, q)| q).unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                let name = pair.split('=').next().unwrap_or("");
                assert!(documented.contains(name), "{what}: query parameter {name:?} is not documented");
            }
            self.samples.entry(op_id.clone()).or_insert_with(|| (method.to_owned(), path.to_owned()));
        }
        self.exercised.entry(op_id).or_default().insert(key);
        value
    }

    fn get(&mut self, node: &Target, path: &str) -> Value {
        self.call(node, "GET", path, Auth::Node, None, 200, None, false)
    }
    fn get_err(&mut self, node: &Target, path: &str, status: u16, code: &str) -> Value {
        self.call(node, "GET", path, Auth::Node, None, status, Some(code), false)
    }
    fn post(&mut self, node: &Target, path: &str, auth: Auth, body: Value) -> Value {
        self.call(node, "POST", path, auth, Some(Body::Json(body)), 200, None, false)
    }
    fn post_err(&mut self, node: &Target, path: &str, auth: Auth, body: Body, status: u16, code: &str) -> Value {
        self.call(node, "POST", path, auth, Some(body), status, Some(code), false)
    }

    /// Every operation answers a generic error (a URI over the limit, 414) in the form its
    /// `default` answer describes.
    fn generic_errors(&mut self, node: &Target) {
        let padding = "a".repeat(9000);
        for (method, path) in self.samples.values().cloned().collect::<Vec<_>>() {
            let sep = if path.contains('?') { '&' } else { '?' };
            self.call(node, &method, &format!("{path}{sep}padding={padding}"), Auth::Node, None, 414, Some("uri-too-long"), true);
        }
    }

    /// Every operation was called successfully, and every answer it documents was seen.
    fn assert_all_exercised(&self) {
        let mut missing = Vec::new();
        for o in &self.operations {
            let seen = self.exercised.get(&o.id).cloned().unwrap_or_default();
            if !seen.iter().any(|k| k.starts_with('2')) {
                missing.push(format!("{}: no successful case", o.id));
            }
            for key in self.op_json(o)["responses"].as_object().expect("responses").keys() {
                if !seen.contains(key) {
                    missing.push(format!("{}: answer {key} never exercised", o.id));
                }
            }
        }
        assert!(missing.is_empty(), "operations of openapi.json without a case:\n  {}", missing.join("\n  "));
    }
}

/// Structure the test relies on: unique snake_case operation ids, a schema for every JSON
/// body and answer, and only what the validator knows in every schema.
fn check_document(doc: &Value) {
    let v = Validator { doc };
    let mut ids = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {template}: no operationId"));
            assert!(
                id.starts_with(|c: char| c.is_ascii_lowercase()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{method} {template}: operationId {id:?} is not snake_case"
            );
            assert!(ids.insert(id.to_owned()), "operationId {id:?} is used twice");
            let mut contents: Vec<(String, &Value)> = Vec::new();
            if let Some(c) = op.get("requestBody").map(|r| &r["content"]) {
                contents.push((format!("{id} request"), c));
            }
            for (status, r) in op["responses"].as_object().expect("responses") {
                let r = v.resolve(r);
                let c = r.get("content").unwrap_or_else(|| panic!("{id} {status}: no content"));
                contents.push((format!("{id} {status}"), c));
            }
            for (what, content) in contents {
                for (media, m) in content.as_object().expect("content") {
                    let schema = m.get("schema").unwrap_or_else(|| panic!("{what} {media}: no schema"));
                    v.check_schema(schema, &what, &mut seen);
                }
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        v.check_schema(schema, name, &mut seen);
    }
}

// ---------------------------------------------------------------------------------------
// The nodes.

/// Starts node `index` with its config changed by `change`, records its address and process
/// in the testnet (which stops it when dropped) and waits until it answers.
fn start_node(net: &mut LocalTestnet, index: usize, change: impl FnOnce(&mut NodeConfig)) -> Target {
    let node = &mut net.nodes[index];
    let config_path = node.home.join("config.toml");
    let mut config = NodeConfig::from_toml(&std::fs::read_to_string(&config_path).expect("config")).expect("config parses");
    change(&mut config);
    std::fs::write(&config_path, config.to_toml()).expect("write config");
    let addr_file = node.home.join("api.addr");
    let _ = std::fs::remove_file(&addr_file);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(node.log_path()).expect("log");
    let child = Command::new(PLAZA)
        .args(["start", "--home"])
        .arg(&node.home)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("plaza start");
    node.child = Some(child);
    wait_until("the node writes its API address", Duration::from_secs(60), || addr_file.exists());
    let addr: SocketAddr = std::fs::read_to_string(&addr_file).expect("api.addr").trim().parse().expect("an address");
    node.api = Some(addr);
    let target = Target { addr, token: node.token.clone() };
    wait_until("the node answers", Duration::from_secs(60), || http(addr, "GET", "/healthz", None, None).status == 200);
    target
}

fn code_hash(secret: &str) -> String {
    CodeSecret::new(secret.as_bytes()).expect("a code").hash().to_hex()
}

fn random_hex(bytes: usize) -> String {
    let key = Keypair::generate().public().to_hex();
    key[..bytes * 2].to_owned()
}

#[test]
fn the_live_api_matches_its_openapi_description() {
    let doc: Value = serde_json::from_str(OPENAPI_FILE).expect("openapi.json parses");
    assert_eq!(doc["openapi"], "3.0.3");
    check_document(&doc);
    let mut c = Checker::new(&doc);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut net = LocalTestnet::prepare(&dir.path().join("demo"), 1, true, Path::new(PLAZA), Layout::Loopback).expect("prepare the demo alliance");
    let a = start_node(&mut net, 0, |config| {
        config.api_body_bytes_max = BODY_BYTES_MAX;
        config.api_guest_tokens = vec![GUEST_TOKEN.to_owned()];
        config.api_guest_records_per_signer_per_minute = GUEST_RECORDS_PER_MINUTE;
    });
    // One validator of four, alone: not ready and nothing finalized; its testnet clock is off.
    let mut lone = LocalTestnet::prepare(&dir.path().join("lone"), 4, false, Path::new(PLAZA), Layout::Loopback).expect("prepare four validators");
    let b = start_node(&mut lone, 0, |config| config.testnet_clock_api = false);

    wait_until("a first block", Duration::from_secs(60), || net.nodes[0].height().unwrap_or(0) >= 1);
    plaza_testnet::demo::run_demo(&mut net, &AtomicBool::new(false), &mut |_| {}).expect("the demo's day");
    let key = |m: usize| net.merchants[m].keypair.public().to_hex();
    let alliance = net.alliance;
    let card_market = hex::encode([0x11u8; 16]);
    let stranger = Keypair::generate();

    // Liveness, readiness, status, metrics, this description, the explorer.
    assert_eq!(c.get(&a, "/healthz")["status"], "ok");
    assert_eq!(c.get(&a, "/readyz")["status"], "ready");
    let not_ready = c.call(&b, "GET", "/readyz", Auth::None, None, 503, Some("not-ready"), false);
    assert_eq!(not_ready["quorum"], 3, "{not_ready}");
    let status = c.get(&a, "/v1/status");
    c.get(&b, "/v1/status");
    c.call(&a, "GET", "/metrics", Auth::None, None, 200, None, false);
    let served = http(a.addr, "GET", "/openapi.json", None, None);
    assert_eq!(served.body, OPENAPI_FILE, "the node serves node/openapi.json as it is");
    c.get(&a, "/openapi.json");
    c.call(&a, "GET", "/", Auth::None, None, 200, None, false);

    // Submitting: node-signed payloads, client-signed records, batches, guests.
    let now = status["clock_ms"].as_u64().expect("clock");
    let sign = |m: usize, payload: Value, created: u64| {
        let record = plaza_testnet::api::sign_payload(&payload, &net.merchants[m].keypair, alliance, created).expect("sign");
        hex::encode(record.to_bytes())
    };
    let sale = |order: &str, gross: &str| json!({"kind": "sale", "order": order, "gross": gross});
    let card = |byte: u8| json!({"kind": "issue_card", "card": hex::encode([byte; 16])});
    let first = c.post(&a, "/v1/records?wait=true", Auth::Node, json!({"payload": sale("OA-1", "25.00")}));
    assert_eq!((first["status"].as_str(), first["original"].as_bool()), (Some("final"), Some(false)), "{first}");
    let sale_id = first["id"].as_str().expect("id").to_owned();
    let again = c.post(&a, "/v1/records?wait=true", Auth::Node, json!({"payload": sale("OA-1", "25.00")}));
    assert_eq!((again["id"].as_str(), again["original"].as_bool()), (Some(sale_id.as_str()), Some(true)), "{again}");
    let proposal = c.post(
        &a,
        "/v1/records?wait=true",
        Auth::Node,
        json!({"payload": {"kind": "propose", "action": {"type": "register_promoter", "id": "oa-promoter", "name": "OpenAPI Promoter"}}}),
    );
    let proposal_id = proposal["id"].as_str().expect("id").to_owned();
    let stranger_record = {
        let record = plaza_testnet::api::sign_payload(&card(0x99), &stranger, alliance, now).expect("sign");
        hex::encode(record.to_bytes())
    };
    let batch = c.post(&a, "/v1/records?wait=true", Auth::Node, json!({"records": [sign(GYM, card(0x33), now), stranger_record.clone()]}));
    assert_eq!((batch["results"][0]["status"].as_str(), batch["results"][1]["code"].as_str()), (Some("final"), Some("not-a-member")), "{batch}");
    // A revocation long after the redemption: final, with a rejection receipt.
    let revoke = c.post(
        &a,
        "/v1/records?wait=true",
        Auth::Node,
        json!({"record": sign(MARKET, json!({"kind": "revoke_redemption", "order": "FM-0001", "code": "CPN-SCH-0001"}), now)}),
    );
    assert_eq!(revoke["receipt"]["accepted"], false, "{revoke}");
    let unwaited = c.post(&a, "/v1/records", Auth::Node, json!({"record": sign(SCHOOL, card(0x44), now)}));
    c.get(&a, &format!("/v1/records/{}", unwaited["id"].as_str().expect("id")));
    for byte in [0x55, 0x56] {
        c.post(&a, "/v1/records", Auth::Guest, json!({"record": sign(CINEMA, card(byte), now)}));
    }
    c.post_err(&a, "/v1/records", Auth::Guest, Body::Json(json!({"record": sign(CINEMA, card(0x57), now)})), 429, "rate-limited");
    c.post_err(&a, "/v1/records", Auth::Guest, Body::Json(json!({"payload": sale("OA-2", "1.00")})), 403, "node-token-required");
    c.post_err(&a, "/v1/records", Auth::None, Body::Json(json!({"payload": sale("OA-2", "1.00")})), 401, "unauthorized");
    c.post_err(&a, "/v1/records", Auth::Wrong, Body::Json(json!({"payload": sale("OA-2", "1.00")})), 403, "forbidden");
    c.post_err(&a, "/v1/records?wait=true", Auth::Node, Body::Json(json!({"payload": sale("OA-1", "26.00")})), 409, "conflicting-order");
    c.post_err(&a, "/v1/records", Auth::Node, Body::Raw("x".repeat(BODY_BYTES_MAX + 1000)), 413, "body-too-large");
    for (body, code) in [
        (Body::Raw("{".into()), "bad-json"),
        (Body::Json(json!({"recrod": "00"})), "bad-json"),
        (Body::Json(json!({})), "empty"),
        (Body::Json(json!({"record": "zz"})), "bad-hex"),
        (Body::Json(json!({"record": "00"})), "malformed-record"),
        (Body::Json(json!({"payload": sale("OA-3", "-1.00")})), "bad-payload"),
        (Body::Json(json!({"record": stranger_record})), "not-a-member"),
        (Body::Json(json!({"record": sign(GYM, card(0x66), now - 24 * 3_600_000)})), "outside-time-window"),
    ] {
        c.post_err(&a, "/v1/records", Auth::Node, body, 400, code);
    }
    let other_alliance = plaza_testnet::api::sign_payload(&card(0x67), &net.merchants[GYM].keypair, Hash::ZERO, now).expect("sign");
    c.post_err(&a, "/v1/records", Auth::Node, Body::Json(json!({"record": hex::encode(other_alliance.to_bytes())})), 400, "invalid-record");

    // The commission base a sale may declare.
    c.post(&a, "/v1/sales/base", Auth::None, json!({"gross": "100.00"}));
    let base = c.post(
        &a,
        "/v1/sales/base",
        Auth::None,
        json!({"seller": key(CINEMA), "gross": "120.00", "card": card_market, "coupon_code_hashes": [code_hash("CPN-HOT-0002")], "points_redeemed": 0}),
    );
    assert_eq!(base["coupons_funded_by_others"], "30.00", "{base}");
    c.post_err(&a, "/v1/sales/base", Auth::None, Body::Json(json!({"gross": "-1"})), 400, "bad-amount");
    c.post_err(&a, "/v1/sales/base", Auth::None, Body::Raw("x".into()), 400, "bad-json");
    let refused = c.call(&a, "POST", "/v1/sales/base", Auth::None, Some(Body::Json(json!({"gross": "10.00", "coupon_code_hashes": [random_hex(32)]}))), 422, None, false);
    assert!(refused["code"].as_str().is_some_and(|s| !s.is_empty()), "{refused}");

    // Records and proofs.
    let record = c.get(&a, &format!("/v1/records/{sale_id}"));
    assert_eq!(record["record"]["payload"]["kind"], "sale", "{record}");
    c.get_err(&a, "/v1/records/zz", 400, "bad-hash");
    c.get_err(&a, &format!("/v1/records/{}", random_hex(32)), 404, "not-found");
    let proof = c.get(&a, &format!("/v1/proofs/{sale_id}"));
    assert_eq!(proof["verified"], true, "{proof}");
    c.get_err(&a, "/v1/proofs/zz", 400, "bad-hash");
    c.get_err(&a, &format!("/v1/proofs/{}", random_hex(32)), 404, "not-found");
    c.get(&a, "/v1/proofs/state/statement/0");
    c.get(&a, &format!("/v1/proofs/state/card/{card_market}"));
    c.get(&a, &format!("/v1/proofs/state/balance/merchant:{}", key(GYM)));
    c.get_err(&a, "/v1/proofs/state/nonsense/1", 400, "bad-state-key");
    c.get_err(&a, &format!("/v1/proofs/state/card/{}", random_hex(16)), 404, "not-found");
    c.get(&a, "/v1/checkpoint");
    c.get_err(&b, "/v1/checkpoint", 404, "not-found");

    // Blocks: every block with records, so every payload kind the demo wrote is checked.
    c.get(&a, "/v1/blocks");
    c.get_err(&a, "/v1/blocks?limit=0", 400, "bad-limit");
    c.get_err(&a, "/v1/blocks?from=x", 400, "bad-query");
    let mut kinds = BTreeSet::new();
    let mut proposals = Vec::new();
    let mut from = 1;
    loop {
        let page = c.get(&a, &format!("/v1/blocks?from={from}&limit=100"));
        let blocks = page["blocks"].as_array().expect("blocks").clone();
        for header in blocks.iter().filter(|h| h["records"].as_u64() > Some(0)) {
            let block = c.get(&a, &format!("/v1/blocks/{}", header["height"]));
            for r in block["record_list"].as_array().expect("records") {
                kinds.insert(r["payload"]["kind"].as_str().expect("kind").to_owned());
                if r["payload"]["kind"] == "propose" {
                    proposals.push(r["id"].as_str().expect("id").to_owned());
                }
            }
        }
        if blocks.len() < 100 {
            break;
        }
        from += 100;
    }
    let all_kinds = ["accept", "agreement", "confirm_payment", "issue_card", "issue_coupons", "propose", "refer", "refund", "revoke_redemption", "sale", "vote"];
    assert_eq!(kinds, all_kinds.iter().map(|k| (*k).to_owned()).collect::<BTreeSet<_>>(), "every payload kind is in a checked block");
    c.get(&a, &format!("/v1/blocks/{}", first["height"]));
    let by_height = c.get(&a, "/v1/blocks/1");
    c.get(&a, &format!("/v1/blocks/{}", by_height["id"].as_str().expect("id")));
    c.get_err(&a, "/v1/blocks/x", 400, "bad-height");
    c.get_err(&a, "/v1/blocks/999999999", 404, "not-found");

    // Merchants, districts, promoters.
    c.get(&a, "/v1/merchants");
    let near = c.get(&a, "/v1/merchants?near=31.2239,121.4460&within_m=20000");
    assert!(near["merchants"].as_array().is_some_and(|m| !m.is_empty()), "{near}");
    let hotpot = c.get(&a, &format!("/v1/merchants/{}", key(HOTPOT)));
    c.get(&a, &format!("/v1/merchants?category=restaurant&district={}", hotpot["district"].as_str().expect("district")));
    let coupon_place = c.get(&a, &format!("/v1/merchants?accepts_coupon={}", code_hash("CPN-HOT-0002")));
    assert_eq!(coupon_place["coupon"]["usable"], true, "{coupon_place}");
    c.get(&a, &format!("/v1/merchants?accepts_card={card_market}"));
    c.get(&a, &format!("/v1/merchants?accepts_points_of={}", key(HOTPOT)));
    c.get_err(&a, "/v1/merchants?radius=5", 400, "unknown-parameter");
    c.get_err(&a, "/v1/merchants?near=91,0", 400, "latitude-out-of-range");
    c.get_err(&a, &format!("/v1/merchants?accepts_coupon={}", random_hex(32)), 404, "unknown-coupon");
    c.get(&a, "/v1/districts");
    c.get_err(&a, "/v1/merchants/xyz", 400, "bad-key");
    c.get_err(&a, &format!("/v1/merchants/{}", stranger.public().to_hex()), 404, "not-found");
    let promoters = c.get(&a, "/v1/promoters");
    assert!(promoters["promoters"].as_array().is_some_and(|p| p.iter().any(|p| p["id"] == "kol-lily" && p["upstream"] == "agency-sun")), "{promoters}");

    // Cards, coupons, balances.
    let market_card = c.get(&a, &format!("/v1/cards/{card_market}"));
    assert!(!market_card["lots"].as_array().expect("lots").is_empty(), "{market_card}");
    c.get_err(&a, "/v1/cards/xyz", 400, "bad-card");
    c.get_err(&a, &format!("/v1/cards/{}", random_hex(16)), 404, "not-found");
    let redeemed = c.get(&a, &format!("/v1/coupons/{}", code_hash("CPN-HOT-0001")));
    assert!(redeemed["redeemed_by"].is_object(), "{redeemed}");
    let unused = c.get(&a, &format!("/v1/coupons/{}", code_hash("CPN-HOT-0002")));
    assert!(unused["redeemed_by"].is_null(), "{unused}");
    c.get_err(&a, "/v1/coupons/zz", 400, "bad-hash");
    c.get_err(&a, &format!("/v1/coupons/{}", random_hex(32)), 404, "not-found");
    c.get(&a, "/v1/balances");
    c.get(&a, &format!("/v1/balances/merchant:{}", key(GYM)));
    c.get(&a, &format!("/v1/balances/{}", key(MARKET)));
    c.get(&a, "/v1/balances/promoter:kol-lily");
    c.get_err(&a, "/v1/balances/nobody", 400, "bad-party");

    // Statements, governance, policy.
    let statements = c.get(&a, "/v1/statements");
    assert!(statements["statements"].as_array().is_some_and(|s| s.len() >= 2), "{statements}");
    let latest = c.get(&a, "/v1/statements/latest");
    for period in 0..=latest["period"].as_u64().expect("period") {
        c.get(&a, &format!("/v1/statements/{period}"));
    }
    c.get_err(&b, "/v1/statements/latest", 404, "not-found");
    c.get_err(&a, "/v1/statements/x", 400, "bad-period");
    c.get_err(&a, "/v1/statements/999", 404, "not-found");
    assert_eq!(c.get(&a, &format!("/v1/proposals/{proposal_id}"))["status"], "open");
    for id in &proposals {
        c.get(&a, &format!("/v1/proposals/{id}"));
    }
    c.get_err(&a, "/v1/proposals/zz", 400, "bad-hash");
    c.get_err(&a, &format!("/v1/proposals/{}", random_hex(32)), 404, "not-found");
    let policy = c.get(&a, "/v1/policy");
    assert_eq!(policy["versions"].as_array().map(Vec::len), Some(2), "{policy}");

    // Backup and the testnet clock.
    let backup_dir = dir.path().join("backup");
    let backup = json!({"dir": backup_dir.to_str().expect("utf-8 path")});
    c.post(&a, "/v1/admin/backup", Auth::Node, backup.clone());
    c.post_err(&a, "/v1/admin/backup", Auth::Node, Body::Json(backup.clone()), 400, "bad-backup-dir");
    c.post_err(&a, "/v1/admin/backup", Auth::Node, Body::Json(json!({"dir": "relative/backup"})), 400, "bad-backup-dir");
    c.post_err(&a, "/v1/admin/backup", Auth::Node, Body::Raw("x".into()), 400, "bad-json");
    c.post_err(&a, "/v1/admin/backup", Auth::None, Body::Json(backup.clone()), 401, "unauthorized");
    c.post_err(&a, "/v1/admin/backup", Auth::Wrong, Body::Json(backup), 403, "forbidden");
    let moved = c.post(&a, "/v1/testnet/clock", Auth::Node, json!({"advance_ms": 1000}));
    assert!(moved["clock_offset_ms"].as_i64().is_some_and(|o| o > 0), "{moved}");
    c.post_err(&a, "/v1/testnet/clock", Auth::Node, Body::Json(json!({"advance_ms": -1})), 400, "bad-clock");
    c.post_err(&a, "/v1/testnet/clock", Auth::Node, Body::Json(json!({})), 400, "bad-json");
    c.post_err(&a, "/v1/testnet/clock", Auth::None, Body::Json(json!({"advance_ms": 1000})), 401, "unauthorized");
    c.post_err(&a, "/v1/testnet/clock", Auth::Wrong, Body::Json(json!({"advance_ms": 1000})), 403, "forbidden");
    c.post_err(&b, "/v1/testnet/clock", Auth::Node, Body::Json(json!({"advance_ms": 1000})), 403, "testnet-only");

    c.generic_errors(&a);
    c.assert_all_exercised();
    eprintln!("openapi_live: {} operations, {} cases", c.operations.len(), c.cases);
    net.stop_all();
    lone.stop_all();
}
