//! Output for people: merchant names where the ledger knows them, dates in the alliance's time
//! zone, and columns aligned by display width (a Chinese character takes two columns, so
//! `{:<20}`, which counts characters, would misalign them). `--json` output never passes
//! through here: it keeps keys and Unix milliseconds.

use std::collections::BTreeMap;

use plaza_node::client::Client;
use plaza_node::explorer::format;
use serde_json::{Map, Value};
use unicode_width::UnicodeWidthStr;

/// Columns separated by two spaces, a header underlined with dashes, numbers right-aligned.
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| (*h).to_owned()).collect(), right: vec![false; header.len()], rows: Vec::new() }
    }

    /// Right-aligns these columns (amounts, counts).
    pub fn right(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each starting with `indent`, without trailing spaces.
    pub fn render(&self, indent: &str) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.width());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::from(indent);
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - cell.width());
                if self.right[i] {
                    text.push_str(&pad);
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&pad);
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.header);
        line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
        for row in &self.rows {
            line(row);
        }
        out
    }

    pub fn print(&self, indent: &str) {
        print!("{}", self.render(indent));
    }
}

/// `text` padded with spaces to `width` display columns (for one-off aligned lines).
pub fn pad(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(text.width())))
}

/// What the ledger knows to make output readable: merchant names by key, the time zone.
#[derive(Clone, Debug, Default)]
pub struct Names {
    merchants: BTreeMap<String, String>,
    offset_minutes: i32,
}

impl Names {
    pub fn new(merchants: BTreeMap<String, String>, offset_minutes: i32) -> Names {
        // A name two members share gets the key's start, so the output stays unambiguous.
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for name in merchants.values() {
            *count.entry(name).or_default() += 1;
        }
        let merchants = merchants
            .iter()
            .map(|(k, n)| {
                let name = if count[n.as_str()] > 1 { format!("{n} ({})", &k[..8.min(k.len())]) } else { n.clone() };
                (k.clone(), name)
            })
            .collect();
        Names { merchants, offset_minutes }
    }

    /// Asks the node for its members and time zone; without them output shows keys and UTC.
    pub fn fetch(client: &Client) -> Names {
        let get = |path: &str| client.get(path).ok().and_then(|r| r.ok_json().ok());
        let mut merchants = BTreeMap::new();
        if let Some(list) = get("/v1/merchants") {
            for m in list.get("merchants").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                if let (Some(k), Some(n)) = (m.get("key").and_then(Value::as_str), m.get("name").and_then(Value::as_str)) {
                    merchants.insert(k.to_owned(), n.to_owned());
                }
            }
        }
        let offset = get("/v1/status").and_then(|s| s.get("utc_offset_minutes").and_then(Value::as_i64)).unwrap_or(0);
        Names::new(merchants, i32::try_from(offset).unwrap_or(0))
    }

    /// A merchant key as its name, or as the key's first 16 digits when unknown.
    pub fn key(&self, hex: &str) -> String {
        match self.merchants.get(hex) {
            Some(name) => name.clone(),
            None => abbreviate(hex),
        }
    }

    /// A party as the API writes it (`merchant:KEY`, `promoter:ID`, or a bare key).
    pub fn party(&self, party: &str) -> String {
        if let Some(key) = party.strip_prefix("merchant:") {
            return self.key(key);
        }
        if let Some(id) = party.strip_prefix("promoter:") {
            return format!("promoter {id}");
        }
        self.key(party)
    }

    /// The time zone, as `UTC+08:00`.
    pub fn zone(&self) -> String {
        format::zone(self.offset_minutes)
    }

    /// Unix milliseconds as a local date and time, `2026-11-23 14:05:07`.
    pub fn time(&self, ms: u64) -> String {
        format::datetime(ms, self.offset_minutes)
    }

    /// A JSON answer made readable: known merchant keys become names, and times (fields
    /// named `…_ms` holding a date after 2000) become local dates with the zone.
    pub fn humanize(&self, v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, val) in map {
                    match (k.strip_suffix("_ms"), val.as_u64()) {
                        (Some(stem), Some(ms)) if ms >= YEAR_2000_MS => {
                            out.insert(stem.to_owned(), Value::String(format!("{} ({})", self.time(ms), self.zone())));
                        }
                        _ => {
                            out.insert(k.clone(), self.humanize(val));
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.humanize(i)).collect()),
            Value::String(s) => {
                let key = s.strip_prefix("merchant:").unwrap_or(s);
                match self.merchants.get(key) {
                    Some(name) => Value::String(format!("{name} ({})", abbreviate(key))),
                    None => v.clone(),
                }
            }
            other => other.clone(),
        }
    }
}

const YEAR_2000_MS: u64 = 946_684_800_000;

/// The first 16 hex digits and an ellipsis (enough to tell keys apart, and to grep for).
pub fn abbreviate(hex: &str) -> String {
    if hex.len() > 16 && hex.is_char_boundary(16) { format!("{}…", &hex[..16]) } else { hex.to_owned() }
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn number(v: &Value, key: &str) -> String {
    v.get(key).map(|n| match n {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }).unwrap_or_else(|| "-".into())
}

fn period_span(names: &Names, v: &Value) -> String {
    let at = |k: &str| v.get(k).and_then(Value::as_u64).map(|ms| names.time(ms)).unwrap_or_else(|| "-".into());
    format!("{} to {} ({})", at("start_ms"), at("end_ms"), names.zone())
}

/// `plaza query balances`: one row per party.
pub fn print_balances(answer: &Value, names: &Names) {
    let mut t = Table::new(&["party", "pending", "locked", "on hold", "paid", "owes pending", "owes locked", "paid out"]).right(&[1, 2, 3, 4, 5, 6, 7]);
    for b in list(answer, "balances") {
        t.row([
            names.party(field(b, "party")),
            number(b, "pending"),
            number(b, "locked"),
            number(b, "on_hold"),
            number(b, "paid"),
            number(b, "pending_payable"),
            number(b, "locked_payable"),
            number(b, "paid_out"),
        ]);
    }
    if t.is_empty() {
        println!("no balances yet");
    } else {
        t.print("");
    }
}

/// `plaza query blocks`: height, local time, records, proposer, id.
pub fn print_blocks(answer: &Value, names: &Names) {
    let mut t = Table::new(&["height", &format!("time ({})", names.zone()), "records", "proposer", "id"]).right(&[0, 2]);
    for b in list(answer, "blocks") {
        t.row([
            number(b, "height"),
            b.get("time_ms").and_then(Value::as_u64).map(|ms| names.time(ms)).unwrap_or_else(|| "-".into()),
            number(b, "records"),
            names.key(field(b, "proposer")),
            abbreviate(field(b, "id")),
        ]);
    }
    println!("tip {}", number(answer, "tip"));
    t.print("");
}

/// `plaza query statements`: one row per closed period, then the open one.
pub fn print_statements(answer: &Value, names: &Names) {
    let mut t = Table::new(&["period", &format!("from ({})", names.zone()), "to", "transfers", "hash"]).right(&[0, 3]);
    for s in list(answer, "statements") {
        let at = |k: &str| s.get(k).and_then(Value::as_u64).map(|ms| names.time(ms)).unwrap_or_else(|| "-".into());
        t.row([number(s, "period"), at("start_ms"), at("end_ms"), list(s, "payment_plan").len().to_string(), abbreviate(field(s, "hash"))]);
    }
    if t.is_empty() {
        println!("no statement yet");
    } else {
        t.print("");
    }
    if let Some(open) = answer.get("open_period") {
        println!("open period {}: {}", number(open, "number"), period_span(names, open));
    }
}

/// `plaza query statement N`: the lines, the nets and the payment plan, with names.
pub fn print_statement(answer: &Value, names: &Names) {
    println!("statement {}: {}", number(answer, "period"), period_span(names, answer));
    println!("hash {}", field(answer, "hash"));
    let mut lines = Table::new(&["kind", "debtor", "creditor", "amount", "sources"]).right(&[3, 4]);
    for l in list(answer, "lines") {
        lines.row([field(l, "kind").to_owned(), names.party(field(l, "debtor")), names.party(field(l, "creditor")), number(l, "amount"), list(l, "sources").len().to_string()]);
    }
    println!();
    println!("lines:");
    lines.print("  ");
    let mut nets = Table::new(&["party", "net"]).right(&[1]);
    for n in list(answer, "nets") {
        nets.row([names.party(field(n, "party")), number(n, "net")]);
    }
    println!();
    println!("nets:");
    nets.print("  ");
    let mut plan = Table::new(&["payer", "payee", "amount", "note"]).right(&[2]);
    for t in list(answer, "payment_plan") {
        plan.row([names.party(field(t, "payer")), names.party(field(t, "payee")), number(t, "amount"), String::new()]);
    }
    for t in list(answer, "rolled_over") {
        let why = if field(t, "reason") == "promoter-debt" { "carried: netted against its next commissions" } else { "rolled over: below the minimum payout" };
        plan.row([names.party(field(t, "payer")), names.party(field(t, "payee")), number(t, "amount"), why.to_owned()]);
    }
    println!();
    println!("payment plan:");
    if plan.is_empty() {
        println!("  nothing to pay");
    } else {
        plan.print("  ");
    }
}

/// `plaza query promoters`.
pub fn print_promoters(answer: &Value) {
    let mut t = Table::new(&["id", "name", "upstream"]);
    for p in list(answer, "promoters") {
        t.row([field(p, "id"), field(p, "name"), field(p, "upstream")]);
    }
    if t.is_empty() {
        println!("no promoters");
    } else {
        t.print("");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_ledger::genesis::parse_time_ms;

    #[test]
    fn local_times_invert_the_parser() {
        for text in ["2026-11-23T00:00:00+08:00", "2000-02-29T23:59:59+08:00", "2027-03-01T12:30:05+08:00", "1999-12-31T16:00:00+08:00"] {
            let ms = parse_time_ms(text).expect("parses");
            assert_eq!(Names::new(BTreeMap::new(), 480).time(ms), text[..19].replace('T', " "), "{text}");
        }
        assert_eq!(Names::new(BTreeMap::new(), -300).time(0), "1969-12-31 19:00:00");
        assert_eq!(Names::new(BTreeMap::new(), -330).zone(), "UTC−05:30");
    }

    #[test]
    fn columns_align_by_display_width() {
        let mut t = Table::new(&["party", "net"]).right(&[1]);
        t.row(["老王火锅", "12.00"]);
        t.row(["Iron Gym", "-3.50"]);
        let text = t.render("  ");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["  party       net", "  --------  -----", "  老王火锅  12.00", "  Iron Gym  -3.50"]);
        for l in &lines {
            assert_eq!(l.width(), lines[0].width(), "{l:?}");
        }
    }

    #[test]
    fn keys_become_names_and_times_local_dates() {
        let key = "ab".repeat(32);
        let names = Names::new(BTreeMap::from([(key.clone(), "老王火锅".to_owned())]), 480);
        let v = serde_json::json!({"proposer": key, "party": format!("merchant:{key}"), "time_ms": 1_795_363_200_000u64, "hold_ms": 86_400_000, "other": "cd".repeat(32)});
        let h = names.humanize(&v);
        assert_eq!(h["proposer"], "老王火锅 (abababababababab…)");
        assert_eq!(h["party"], "老王火锅 (abababababababab…)");
        assert_eq!(h["time"], "2026-11-23 00:00:00 (UTC+08:00)");
        assert_eq!(h["hold_ms"], 86_400_000, "a duration stays a number");
        assert_eq!(h["other"], "cd".repeat(32), "an unknown key stays whole");
        assert_eq!(names.party("promoter:kol-lily"), "promoter kol-lily");
        assert_eq!(names.party(&"ef".repeat(32)), "efefefefefefefef…");
        let twins = Names::new(BTreeMap::from([("aa".repeat(32), "Mart".to_owned()), ("bb".repeat(32), "Mart".to_owned())]), 0);
        assert_eq!(twins.key(&"aa".repeat(32)), "Mart (aaaaaaaa)");
    }
}
