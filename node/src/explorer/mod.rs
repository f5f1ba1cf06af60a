//! The explorer (DESIGN §8): HTML pages for auditors and merchants, rendered on the server
//! with `maud`, readable without JavaScript, in English or Chinese.
//!
//! Pages: `/` (the alliance), `/blocks` (blocks with records first; `?show=all`),
//! `/blocks/{height}`, `/records/{id}` (with its receipt) and `/records/{id}/proof`,
//! `/merchants` (`?district=`, `?near=LAT,LON` for a distance column), `/merchants/{key}`, `/promoters/{id}`, `/cards/{card}`,
//! `/coupons`, `/coupons/{batch}`, `/governance`, `/proposals/{id}`, `/statements`,
//! `/statements/{period}` and its picture `/statements/{period}/graph.svg`, `/search?q=`.
//!
//! Conventions: a party is shown by its name, its key in the hover title and on its own page;
//! amounts carry the alliance's currency; times are in the alliance's zone (genesis'
//! `utc_offset_minutes`). `?lang=en|zh` switches the language (kept in a cookie), otherwise
//! `Accept-Language` decides.
//!
//! Architecture invariant: the explorer only reads — the finalized state, the store, and its
//! own in-memory index of non-empty blocks — and never takes the driver's locks for longer
//! than one page.

pub mod format;
mod graph;
mod i18n;
mod pages;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use plaza_ledger::contract::State;
use plaza_ledger::genesis::Genesis;
use plaza_ledger::record::{Party, PromoterId};
use plaza_ledger::PublicKey;

use crate::Shared;
pub use i18n::Lang;

/// Blocks on one page of `/blocks`.
pub const BLOCKS_PAGE: usize = 50;
/// Statements scanned for a merchant's lines (the latest ones).
pub const MERCHANT_STATEMENTS_MAX: u64 = 60;
/// Search results shown, at most.
pub const SEARCH_RESULTS_MAX: usize = 50;
/// Bytes of a search query, at most.
pub const SEARCH_QUERY_BYTES_MAX: usize = 200;

/// The explorer's own state: the node's, and an index of the heights of non-empty blocks,
/// extended up to the tip on each request that needs it (one pass over the chain in total).
pub struct Explorer {
    pub(crate) shared: Arc<Shared>,
    index: Mutex<BlockIndex>,
}

#[derive(Default)]
struct BlockIndex {
    indexed_to: u64,
    non_empty: Vec<u64>,
}

impl Explorer {
    /// Heights of blocks with records, ascending, up to `tip`.
    fn non_empty_blocks(&self, tip: u64) -> Vec<u64> {
        let mut index = self.index.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while index.indexed_to < tip {
            let h = index.indexed_to + 1;
            match self.shared.store.block(h) {
                Ok(Some(b)) => {
                    if !b.block.records.is_empty() {
                        index.non_empty.push(h);
                    }
                    index.indexed_to = h;
                }
                _ => break,
            }
        }
        index.non_empty.clone()
    }
}

/// The explorer's routes, to be merged into the API's router.
pub fn router(shared: Arc<Shared>) -> Router {
    let explorer = Arc::new(Explorer { shared, index: Mutex::new(BlockIndex::default()) });
    Router::new()
        .route("/", get(pages::overview))
        .route("/blocks", get(pages::blocks))
        .route("/blocks/{height}", get(pages::block))
        .route("/records/{id}", get(pages::record))
        .route("/records/{id}/proof", get(pages::proof))
        .route("/merchants", get(pages::merchants))
        .route("/merchants/{key}", get(pages::merchant))
        .route("/promoters/{id}", get(pages::promoter))
        .route("/cards/{card}", get(pages::card))
        .route("/coupons", get(pages::coupons))
        .route("/coupons/{batch}", get(pages::coupon_batch))
        .route("/governance", get(pages::governance))
        .route("/proposals/{id}", get(pages::proposal))
        .route("/statements", get(pages::statements))
        .route("/statements/{period}", get(pages::statement))
        .route("/statements/{period}/graph.svg", get(pages::statement_graph))
        .route("/search", get(pages::search))
        .with_state(explorer)
}

pub(crate) type Ex = AxumState<Arc<Explorer>>;
pub(crate) type PathArg = Path<String>;

/// What every page needs: the language, names of parties, the alliance's zone and currency.
pub(crate) struct Ctx {
    pub lang: Lang,
    remember_lang: bool,
    pub query: BTreeMap<String, String>,
    pub alliance_name: String,
    pub currency: String,
    pub utc_offset_minutes: i32,
    merchants: BTreeMap<PublicKey, String>,
    promoters: BTreeMap<PromoterId, String>,
    categories: BTreeMap<String, String>,
    districts: BTreeMap<String, String>,
}

/// Parses `a=b&c=d` (percent-decoded, `+` as space); later keys win.
fn parse_query(raw: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => {
                    let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    out.push(digit(hex[0]) * 16 + digit(hex[1]));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value.
pub(crate) fn encode_query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Ctx {
    pub fn new(genesis: &Genesis, state: &State, headers: &HeaderMap, raw_query: Option<&str>) -> Ctx {
        let query = parse_query(raw_query);
        let (lang, remember_lang) = Lang::choose(query.get("lang").map(String::as_str), headers);
        Ctx {
            lang,
            remember_lang,
            query,
            alliance_name: genesis.name.clone(),
            currency: genesis.currency.clone(),
            utc_offset_minutes: genesis.utc_offset_minutes,
            merchants: state.merchants().map(|(p, _)| (p.key, p.name.clone())).collect(),
            promoters: state.promoters().map(|(id, name, _)| (id.clone(), name.to_owned())).collect(),
            categories: genesis.categories.iter().map(|c| (c.code.clone(), c.name.clone())).collect(),
            districts: genesis.districts.iter().map(|c| (c.code.clone(), c.name.clone())).collect(),
        }
    }

    /// This page's query with `key` set to `value` (for the language switch).
    pub fn query_with(&self, key: &str, value: &str) -> String {
        let mut q = self.query.clone();
        q.insert(key.to_owned(), value.to_owned());
        let pairs: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", encode_query_value(k), encode_query_value(v))).collect();
        format!("?{}", pairs.join("&"))
    }

    pub fn t(&self, key: &'static str) -> &'static str {
        self.lang.t(key)
    }
    pub fn money(&self, cents: u128) -> String {
        format::money(cents, &self.currency)
    }
    pub fn signed_money(&self, cents: i128) -> String {
        format::signed_money(cents, &self.currency)
    }
    pub fn time(&self, ms: u64) -> String {
        format::datetime(ms, self.utc_offset_minutes)
    }
    pub fn zone(&self) -> String {
        format::zone(self.utc_offset_minutes)
    }
    pub fn category(&self, code: &str) -> String {
        self.categories.get(code).cloned().unwrap_or_else(|| code.to_owned())
    }
    pub fn district(&self, code: &str) -> String {
        self.districts.get(code).cloned().unwrap_or_else(|| code.to_owned())
    }
    pub fn districts(&self) -> impl Iterator<Item = (&String, &String)> {
        self.districts.iter()
    }
    pub fn merchant_name(&self, key: &PublicKey) -> Option<&str> {
        self.merchants.get(key).map(String::as_str)
    }
    /// A party's display name (its short key or id when it has none).
    pub fn party_name(&self, party: &Party) -> String {
        match party {
            Party::Merchant(k) => self.merchant_name(k).map_or_else(|| format::short(&k.to_hex()), str::to_owned),
            Party::Promoter(p) => self.promoters.get(p).cloned().unwrap_or_else(|| p.as_str().to_owned()),
        }
    }
    pub fn party_detail(&self, party: &Party) -> String {
        match party {
            Party::Merchant(k) => k.to_hex(),
            Party::Promoter(p) => format!("promoter {}", p.as_str()),
        }
    }
    pub fn party_href(&self, party: &Party) -> String {
        match party {
            Party::Merchant(k) => format!("/merchants/{}", k.to_hex()),
            Party::Promoter(p) => format!("/promoters/{}", encode_query_value(p.as_str())),
        }
    }
    /// A link to a party: its name, its key on hover.
    pub fn party(&self, party: &Party) -> Markup {
        html! { a.party href=(self.party_href(party)) title=(self.party_detail(party)) { (self.party_name(party)) } }
    }
    pub fn merchant(&self, key: &PublicKey) -> Markup {
        self.party(&Party::Merchant(*key))
    }
    /// A hash shown short, with the whole in the hover title and, when given, a link.
    pub fn hash_link(&self, hex: &str, href: Option<&str>) -> Markup {
        html! {
            @if let Some(h) = href { a.hash href=(h) title=(hex) { code { (format::short(hex)) } } }
            @else { code.hash title=(hex) { (format::short(hex)) } }
        }
    }

    /// The whole page around `body`.
    pub fn page(&self, title: &str, body: Markup) -> Markup {
        let lang = self.lang;
        html! {
            (DOCTYPE)
            html lang=(lang.html()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · " (self.alliance_name) }
                    style { (PreEscaped(CSS)) }
                }
                body {
                    header {
                        a.brand href="/" { (self.alliance_name) }
                        nav {
                            a href="/" { (self.t("overview")) }
                            a href="/blocks" { (self.t("blocks")) }
                            a href="/merchants" { (self.t("merchants")) }
                            a href="/statements" { (self.t("statements")) }
                            a href="/coupons" { (self.t("coupons")) }
                            a href="/governance" { (self.t("governance")) }
                        }
                        form.search action="/search" method="get" {
                            input type="search" name="q" placeholder=(self.t("search_hint")) aria-label=(self.t("search"));
                            button type="submit" { (self.t("search")) }
                        }
                        span.lang {
                            @if lang == Lang::En { b { "EN" } } @else { a href=(self.query_with("lang", "en")) { "EN" } }
                            " · "
                            @if lang == Lang::Zh { b { "中文" } } @else { a href=(self.query_with("lang", "zh")) { "中文" } }
                        }
                    }
                    main {
                        h1 { (title) }
                        (body)
                    }
                    footer {
                        (self.t("time_zone")) ": " (self.zone()) " · " (self.t("currency")) ": " (self.currency)
                        " · " a href="/openapi.json" { "API" }
                    }
                }
            }
        }
    }

    /// An HTML response (remembering a language chosen with `?lang=`).
    pub fn respond(&self, status: StatusCode, page: Markup) -> Response {
        let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page.into_string()).into_response();
        if self.remember_lang
            && let Ok(v) = HeaderValue::from_str(&format!("plaza_lang={}; Path=/; Max-Age=31536000; SameSite=Lax", self.lang.code()))
        {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
        response
    }

    pub fn ok(&self, title: &str, body: Markup) -> Response {
        self.respond(StatusCode::OK, self.page(title, body))
    }

    pub fn not_found(&self, what: String) -> Response {
        let title = self.t("not_found");
        self.respond(StatusCode::NOT_FOUND, self.page(title, html! { p { (what) } }))
    }

    pub fn bad_request(&self, what: String) -> Response {
        let title = self.t("bad_request");
        self.respond(StatusCode::BAD_REQUEST, self.page(title, html! { p { (what) } }))
    }
}

/// Named in CSS so Chinese renders with a CJK face where one is installed (Noto CJK on Debian).
const CSS: &str = r#"
:root { --ink:#1d2733; --muted:#5b6b7b; --line:#d9e0e7; --accent:#2f5d8a; --bg:#f7f9fb; }
* { box-sizing: border-box; }
body { margin:0; color:var(--ink); background:var(--bg);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  font-size:15px; line-height:1.45; }
header { display:flex; flex-wrap:wrap; gap:.6em 1.2em; align-items:center; padding:.7em 1em; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; color:var(--ink); text-decoration:none; }
nav { display:flex; flex-wrap:wrap; gap:.2em .9em; }
a { color:var(--accent); }
form.search { display:flex; gap:.3em; flex:1 1 16em; }
form.search input { flex:1; min-width:0; padding:.3em .5em; border:1px solid var(--line); border-radius:4px; font:inherit; }
main { max-width:1200px; margin:0 auto; padding:.5em 1em 2em; }
h1 { font-size:1.5em; margin:.6em 0 .4em; } h2 { font-size:1.2em; margin:1.4em 0 .5em; }
table { border-collapse:collapse; width:100%; background:#fff; margin:.4em 0 1em; }
th, td { text-align:left; padding:.35em .6em; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:.9em; }
td.num, th.num { text-align:right; white-space:nowrap; font-variant-numeric: tabular-nums; }
.scroll { overflow-x:auto; }
code { font-family: ui-monospace, "Noto Sans Mono CJK SC", monospace; font-size:.9em; overflow-wrap:anywhere; }
code.key { word-break:break-all; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.25em 1em; background:#fff; padding:.7em 1em; border:1px solid var(--line); }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; overflow-wrap:anywhere; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(11em, 1fr)); gap:.6em; margin:.5em 0 1em; }
.cards div { background:#fff; border:1px solid var(--line); padding:.5em .8em; }
.cards b { display:block; font-size:1.25em; }
.muted { color:var(--muted); }
.accepted { color:#3a7d44; } .rejected { color:#c8553d; }
.picture { background:#fff; border:1px solid var(--line); padding:.5em; }
svg.owes { display:block; width:100%; max-width:900px; max-height:62vh; height:auto; margin:0 auto; }
svg.owes text { font-family: inherit; font-size:14px; fill:var(--ink); }
svg.owes text.amount { font-size:13px; font-weight:600; paint-order:stroke; stroke:#fff; stroke-width:4px; }
footer { color:var(--muted); font-size:.85em; padding:1em; text-align:center; }
@media (max-width: 640px) { body { font-size:14px; } th, td { padding:.3em .35em; } dl.facts { grid-template-columns:1fr; } }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_encoded() {
        let q = parse_query(Some("q=Hot+Pot%20Palace&lang=zh&x=%E4%B8%AD&bad=%zz%"));
        assert_eq!(q["q"], "Hot Pot Palace");
        assert_eq!(q["lang"], "zh");
        assert_eq!(q["x"], "中");
        assert_eq!(q["bad"], "%zz%");
        assert_eq!(encode_query_value("a b/中"), "a%20b%2F%E4%B8%AD");
        assert!(parse_query(None).is_empty());
    }
}
