//! The explorer's pages, one handler each. Every handler builds its [`Ctx`] from the
//! finalized state, reads what it needs, and renders; no handler waits on anything.

use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use plaza_ledger::block::FinalizedBlock;
use plaza_ledger::codec::Decode;
use plaza_ledger::contract::{State, Statement, StatementSummary, STATE_BYTES_MAX};
use plaza_ledger::geo::{distance_m, Point};
use plaza_ledger::merkle;
use plaza_ledger::nearby;
use plaza_ledger::money::Amount;
use plaza_ledger::receipt::Receipt;
use plaza_ledger::record::{Action, CardId, CouponValue, Funding, Party, Payload, Place, PromoterId, Record, Terms};
use plaza_ledger::{Hash, PublicKey};

use super::format::{percent, short};
use super::graph::{self, GraphEdge, GraphNode};
use super::i18n::{kind_label, line_label, status_label};
use super::{encode_query_value, Ctx, Ex, Explorer, PathArg, BLOCKS_PAGE, MERCHANT_STATEMENTS_MAX, SEARCH_QUERY_BYTES_MAX, SEARCH_RESULTS_MAX};
use crate::json::kind_name;

fn ctx(ex: &Explorer, state: &State, headers: &HeaderMap, query: &Option<String>) -> Ctx {
    Ctx::new(ex.shared.store.genesis(), state, headers, query.as_deref())
}

fn tip(ex: &Explorer) -> u64 {
    *ex.shared.tip.borrow()
}

fn internal(ctx: &Ctx, e: impl std::fmt::Display) -> Response {
    ctx.respond(StatusCode::INTERNAL_SERVER_ERROR, ctx.page("Error", html! { p { "the node could not read its store: " (e) } }))
}

fn amount(ctx: &Ctx, a: Amount) -> String {
    ctx.money(u128::from(a.cents()))
}

/// A closed period's full statement from the store.
fn stored_statement(ex: &Explorer, period: u64) -> Result<Option<Statement>, String> {
    let Some(bytes) = ex.shared.store.statement(period).map_err(|e| e.to_string())? else { return Ok(None) };
    Statement::from_bytes(&bytes, STATE_BYTES_MAX).map(Some).map_err(|e| format!("stored statement {period}: {e}"))
}

// ------------------------------------------------------------------------------ pieces

/// The picture's parties (payers first, by the size of their nets, so arrows run round the
/// circle), its edges (one per payment-plan transfer) and its title.
fn graph_data(ctx: &Ctx, s: &Statement) -> (Vec<GraphNode>, Vec<GraphEdge>, String) {
    let mut parties: Vec<Party> = Vec::new();
    for t in &s.transfers {
        for p in [&t.payer, &t.payee] {
            if !parties.contains(p) {
                parties.push(p.clone());
            }
        }
    }
    parties.sort_by_key(|p| (s.net_of(p), p.clone()));
    let nodes: Vec<GraphNode> = parties
        .iter()
        .map(|p| GraphNode { name: ctx.party_name(p), detail: ctx.party_detail(p), href: ctx.party_href(p), net: s.net_of(p) })
        .collect();
    let index = |p: &Party| parties.iter().position(|q| q == p).unwrap_or(0);
    let edges: Vec<GraphEdge> =
        s.transfers.iter().map(|t| GraphEdge { payer: index(&t.payer), payee: index(&t.payee), amount: t.amount }).collect();
    let title = format!("{} — {} {}", ctx.t("who_owes_whom"), ctx.t("statement"), s.period);
    (nodes, edges, title)
}

/// The who-owes-whom picture of one statement.
fn picture(ctx: &Ctx, s: &Statement) -> Markup {
    let (nodes, edges, title) = graph_data(ctx, s);
    html! {
        @if s.transfers.is_empty() {
            p.muted { (ctx.t("nothing_to_pay")) }
        } @else {
            figure.picture {
                (graph::render(&title, &nodes, &edges, &ctx.currency))
                figcaption.muted { (ctx.t("arrow_legend")) }
            }
        }
    }
}

/// The payment plan with what is still outstanding (S10, S12).
fn plan_table(ctx: &Ctx, s: &Statement, summary: Option<&StatementSummary>) -> Markup {
    html! {
        @if !s.transfers.is_empty() {
            div.scroll { table.plan {
                tr { th { (ctx.t("payer")) } th { (ctx.t("payee")) } th.num { (ctx.t("amount")) } th.num { (ctx.t("outstanding")) } th { (ctx.t("state")) } }
                @for (i, t) in s.transfers.iter().enumerate() {
                    @let outstanding = summary.and_then(|m| m.obligations.get(i)).map_or(t.amount, |o| o.outstanding);
                    tr {
                        td { (ctx.party(&t.payer)) } td { (ctx.party(&t.payee)) }
                        td.num { (ctx.money(t.amount)) } td.num { (ctx.money(outstanding)) }
                        td { @if outstanding == 0 { (ctx.t("paid")) } @else { (ctx.t("locked")) } }
                    }
                }
            } }
        }
    }
}

fn receipt_cell(ctx: &Ctx, receipt: Option<&Receipt>) -> Markup {
    html! {
        @match receipt {
            Some(r) if r.is_accepted() => span.accepted title=(r.code().map_or("", |c| c.description())) { "✓ " (r.code().map_or("accepted", |c| c.name())) },
            Some(r) => span.rejected title=(r.code().map_or("", |c| c.description())) { "✗ " (r.code().map_or("unknown", |c| c.name())) },
            None => span.muted { (ctx.t("pending_mempool")) },
        }
    }
}

fn place(ctx: &Ctx, p: &Place) -> Markup {
    match p {
        Place::Merchant(k) => ctx.merchant(k),
        Place::Category(c) => html! { (ctx.category(c)) },
    }
}

fn places(ctx: &Ctx, list: &[Place]) -> Markup {
    html! {
        @if list.is_empty() { span.muted { "—" } }
        @for (i, p) in list.iter().enumerate() { @if i > 0 { ", " } (place(ctx, p)) }
    }
}

fn card_link(card: &CardId) -> Markup {
    let hex = card.to_hex();
    html! { a.card href={"/cards/" (hex)} title=(hex) { code { (short(&hex)) } } }
}

fn coupon_value(ctx: &Ctx, v: &CouponValue) -> String {
    match v {
        CouponValue::Fixed(a) => amount(ctx, *a),
        CouponValue::Percent(b) => percent(b.0),
    }
}

fn funding(ctx: &Ctx, f: &Funding) -> &'static str {
    match (f, ctx.lang) {
        (Funding::Issuer, super::Lang::Zh) => "发行商家",
        (Funding::Issuer, super::Lang::En) => "the issuer",
        (Funding::Redeemer, super::Lang::Zh) => "核销商家",
        (Funding::Redeemer, super::Lang::En) => "the redeeming merchant",
    }
}

/// A governance action in words, with names.
fn action(ctx: &Ctx, a: &Action) -> Markup {
    let zh = ctx.lang == super::Lang::Zh;
    html! {
        @match a {
            Action::AdmitMerchant(p) => { (if zh { "接纳商家 " } else { "admit " }) b { (p.name) } " (" (ctx.category(&p.category)) ", " (ctx.district(&p.district)) ")" }
            Action::UpdateMerchant(p) => { (if zh { "更新资料 " } else { "update the profile of " }) (ctx.merchant(&p.key)) }
            Action::SuspendMerchant(k) => { (if zh { "暂停 " } else { "suspend " }) (ctx.merchant(k)) }
            Action::ReinstateMerchant(k) => { (if zh { "恢复 " } else { "reinstate " }) (ctx.merchant(k)) }
            Action::RemoveMerchant(k) => { (if zh { "移除 " } else { "remove " }) (ctx.merchant(k)) }
            Action::RegisterPromoter { id, name, upstream } => {
                (if zh { "登记推广者 " } else { "register promoter " }) b { (name) } " (" (id.as_str()) ")"
                @if let Some(u) = upstream { (if zh { "，上级 " } else { ", upstream " }) (ctx.party(&Party::Promoter(u.clone()))) }
            }
            Action::AddValidator { merchant, .. } => { (if zh { "增加验证节点 " } else { "add validator " }) (ctx.merchant(merchant)) }
            Action::RemoveValidator { merchant } => { (if zh { "移除验证节点 " } else { "remove validator " }) (ctx.merchant(merchant)) }
            Action::PublishPolicy(p) => {
                (if zh { "发布政策 v" } else { "publish policy v" }) (p.version) ": "
                (ctx.t("referral_rate")) " " (percent(p.referral_rate.0)) ", " (ctx.t("promoter_rate")) " " (percent(p.promoter_rate.0))
                ", " (ctx.t("home_rate")) " " (percent(p.home_rate.0)) " · " (ctx.t("effective")) " " (ctx.time(p.effective_at_ms))
            }
            Action::ReleaseHold(party) => { (if zh { "解除冻结 " } else { "release the hold on " }) (ctx.party(party)) }
        }
    }
}

/// A record's payload in one line, for tables.
fn summary(ctx: &Ctx, r: &Record) -> Markup {
    html! {
        @match r.payload() {
            Payload::Propose { action: a } => (action(ctx, a)),
            Payload::Vote { proposal, approve } => {
                (if *approve { ctx.t("yes") } else { ctx.t("no") }) " · " (ctx.hash_link(&proposal.to_hex(), Some(&format!("/proposals/{}", proposal.to_hex()))))
            }
            Payload::IssueCard { card } => (card_link(card)),
            Payload::Refer { promoter, valid_at, .. } => {
                @if let Some(p) = promoter { (ctx.party(&Party::Promoter(p.clone()))) " · " }
                (places(ctx, valid_at))
            }
            Payload::IssueCoupons { batch, code_hashes, value, .. } => { (batch) " · " (code_hashes.len()) " × " (coupon_value(ctx, value)) }
            Payload::Sale { order, gross, card, .. } => {
                (order) " · " (amount(ctx, *gross))
                @if let Some(c) = card { " · " (card_link(c)) }
            }
            Payload::Refund { order, amount: a, .. } => { (order) " · −" (amount(ctx, *a)) }
            Payload::RevokeRedemption { order, .. } => (order),
            Payload::Agreement { agreement_id, counterparty, .. } => { (agreement_id) " · " (ctx.merchant(counterparty)) }
            Payload::Accept { agreement } => (ctx.hash_link(&agreement.to_hex(), Some(&format!("/records/{}", agreement.to_hex())))),
            Payload::ConfirmPayment { period, payer, amount: a } => {
                a href={"/statements/" (period)} { (ctx.t("statement")) " " (period) } " · " (ctx.merchant(payer)) " · " (amount(ctx, *a))
            }
        }
    }
}

/// A record's payload field by field, for its page.
fn payload_facts(ctx: &Ctx, r: &Record) -> Markup {
    html! {
        @match r.payload() {
            Payload::Propose { action: a } => { dt { (ctx.t("action")) } dd { (action(ctx, a)) } dt { (ctx.t("proposal")) } dd { a href={"/proposals/" (r.id().to_hex())} { (ctx.t("votes")) } } }
            Payload::Vote { proposal, approve } => {
                dt { (ctx.t("proposal")) } dd { (ctx.hash_link(&proposal.to_hex(), Some(&format!("/proposals/{}", proposal.to_hex())))) }
                dt { (ctx.t("votes")) } dd { (if *approve { ctx.t("yes") } else { ctx.t("no") }) }
            }
            Payload::IssueCard { card } => { dt { (ctx.t("card")) } dd { (card_link(card)) } }
            Payload::Refer { code_hash, card, promoter, upstream, valid_at, expires_at_ms, multi_use } => {
                dt { (ctx.t("code_hash")) } dd { (ctx.hash_link(&code_hash.to_hex(), None)) }
                @if let Some(c) = card { dt { (ctx.t("card")) } dd { (card_link(c)) } }
                @if let Some(p) = promoter { dt { (ctx.t("promoters")) } dd { (ctx.party(&Party::Promoter(p.clone()))) @if let Some(u) = upstream { " ← " (ctx.party(&Party::Promoter(u.clone()))) } } }
                dt { (ctx.t("redeemable_at")) } dd { (places(ctx, valid_at)) }
                dt { (ctx.t("expires")) } dd { (ctx.time(*expires_at_ms)) @if *multi_use { " · multi-use" } }
            }
            Payload::IssueCoupons { batch, code_hashes, value, min_spend, redeemable_at, funding: f, expires_at_ms } => {
                dt { (ctx.t("batch")) } dd { a href={"/coupons/" (r.id().to_hex())} { (batch) } }
                dt { (ctx.t("codes")) } dd { (code_hashes.len()) }
                dt { (ctx.t("value")) } dd { (coupon_value(ctx, value)) }
                dt { (ctx.t("min_spend")) } dd { (amount(ctx, *min_spend)) }
                dt { (ctx.t("redeemable_at")) } dd { (places(ctx, redeemable_at)) }
                dt { (ctx.t("funding")) } dd { (funding(ctx, f)) }
                dt { (ctx.t("expires")) } dd { (ctx.time(*expires_at_ms)) }
            }
            Payload::Sale { order, gross, base, card, referral_code, coupon_codes, points_redeemed } => {
                dt { "Order" } dd { (order) }
                dt { "Gross" } dd { (amount(ctx, *gross)) }
                dt { "Commission base" } dd { (amount(ctx, *base)) }
                @if let Some(c) = card { dt { (ctx.t("card")) } dd { (card_link(c)) } }
                @if let Some(code) = referral_code { dt { "Referral code" } dd { (ctx.hash_link(&code.hash().to_hex(), None)) } }
                @for code in coupon_codes { dt { (ctx.t("coupons")) } dd { (ctx.hash_link(&code.hash().to_hex(), None)) } }
                @if *points_redeemed > 0 { dt { (ctx.t("points")) } dd { (points_redeemed) } }
            }
            Payload::Refund { order, refund_id, amount: a } => { dt { "Order" } dd { (order) } dt { "Refund" } dd { (refund_id) } dt { (ctx.t("amount")) } dd { (amount(ctx, *a)) } }
            Payload::RevokeRedemption { order, code_hash } => { dt { "Order" } dd { (order) } dt { (ctx.t("code_hash")) } dd { (ctx.hash_link(&code_hash.to_hex(), None)) } }
            Payload::Agreement { agreement_id, counterparty, terms, starts_at_ms, ends_at_ms } => {
                dt { (ctx.t("id")) } dd { (agreement_id) }
                dt { "Counterparty" } dd { (ctx.merchant(counterparty)) }
                dt { "Terms" } dd {
                    @match terms {
                        Terms::FixedFee { payer, amount: a } => { (ctx.merchant(payer)) " pays " (amount(ctx, *a)) " / " (ctx.t("period")) }
                        Terms::RateOverride { referral_rate, home_rate } => {
                            @if let Some(b) = referral_rate { (ctx.t("referral_rate")) " " (percent(b.0)) " " }
                            @if let Some(b) = home_rate { (ctx.t("home_rate")) " " (percent(b.0)) }
                        }
                    }
                }
                dt { (ctx.t("from")) } dd { (ctx.time(*starts_at_ms)) }
                @if let Some(e) = ends_at_ms { dt { (ctx.t("to")) } dd { (ctx.time(*e)) } }
            }
            Payload::Accept { agreement } => { dt { "Agreement" } dd { (ctx.hash_link(&agreement.to_hex(), Some(&format!("/records/{}", agreement.to_hex())))) } }
            Payload::ConfirmPayment { period, payer, amount: a } => {
                dt { (ctx.t("statement")) } dd { a href={"/statements/" (period)} { (period) } }
                dt { (ctx.t("payer")) } dd { (ctx.merchant(payer)) }
                dt { (ctx.t("amount")) } dd { (amount(ctx, *a)) }
            }
        }
    }
}

fn records_table(ctx: &Ctx, records: &[Record], receipts: &[Receipt]) -> Markup {
    html! {
        div.scroll { table.records {
            tr { th { "#" } th { (ctx.t("kind")) } th { (ctx.t("signer")) } th { (ctx.t("details")) } th { (ctx.t("receipt")) } th { (ctx.t("record")) } }
            @for (i, r) in records.iter().enumerate() {
                tr {
                    td.num { (i) }
                    td { (kind_label(ctx.lang, kind_name(r.payload()))) }
                    td { (ctx.merchant(r.signer())) }
                    td { (summary(ctx, r)) }
                    td { (receipt_cell(ctx, receipts.iter().find(|x| x.record == r.id()))) }
                    td { (ctx.hash_link(&r.id().to_hex(), Some(&format!("/records/{}", r.id().to_hex())))) }
                }
            }
        } }
    }
}

fn kinds_summary(ctx: &Ctx, records: &[Record]) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for r in records {
        let k = kind_label(ctx.lang, kind_name(r.payload()));
        match counts.iter_mut().find(|(name, _)| *name == k) {
            Some((_, n)) => *n += 1,
            None => counts.push((k, 1)),
        }
    }
    counts.iter().map(|(k, n)| format!("{n} × {k}")).collect::<Vec<_>>().join(", ")
}

fn block_rows(ctx: &Ctx, blocks: &[FinalizedBlock]) -> Markup {
    html! {
        div.scroll { table.blocks {
            tr { th.num { (ctx.t("height")) } th { (ctx.t("time")) } th.num { (ctx.t("records")) } th { (ctx.t("kind")) } th { (ctx.t("proposer")) } }
            @for b in blocks {
                @let h = &b.block.header;
                tr {
                    td.num { a href={"/blocks/" (h.height)} { (h.height) } }
                    td { (ctx.time(h.time_ms)) }
                    td.num { (b.block.records.len()) }
                    td { (kinds_summary(ctx, &b.block.records)) @if h.statement_hash.is_some() { " · " b { (ctx.t("statement")) } } }
                    td { (ctx.merchant(&h.proposer)) }
                }
            }
        } }
    }
}

// ------------------------------------------------------------------------------ pages

pub async fn overview(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ex = ex.0;
    let tip = tip(&ex);
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let latest = match ex.shared.store.block(tip) {
        Ok(b) => b,
        Err(e) => return internal(&ctx, e),
    };
    let statement = match state.latest_statement().map(|(p, _)| stored_statement(&ex, p)).transpose() {
        Ok(s) => s.flatten(),
        Err(e) => return internal(&ctx, e),
    };
    let (open, open_start, open_end) = state.period();
    let validators: Vec<PublicKey> = state.validator_set().validators().iter().map(|v| v.key).collect();
    let recent: Vec<FinalizedBlock> = ex
        .non_empty_blocks(tip)
        .iter()
        .rev()
        .take(8)
        .filter_map(|h| ex.shared.store.block(*h).ok().flatten())
        .collect();
    let genesis = ex.shared.store.genesis();
    let body = html! {
        div.cards {
            div { (ctx.t("height")) b { a href={"/blocks/" (tip)} { (tip) } } }
            div { (ctx.t("latest_block")) b { (latest.as_ref().map_or_else(|| ctx.time(genesis.time_ms), |b| ctx.time(b.block.header.time_ms))) } }
            div { (ctx.t("members")) b { (state.active_members()) } }
            div { (ctx.t("open_period")) b { (open) } span.muted { (ctx.time(open_start)) " – " (ctx.time(open_end)) } }
        }
        section id="latest-statement" {
            @if let Some(s) = &statement {
                h2 { (ctx.t("latest_statement")) ": " a href={"/statements/" (s.period)} { (ctx.t("statement")) " " (s.period) }
                    span.muted { " · " (ctx.time(s.start_ms)) " – " (ctx.time(s.end_ms)) } }
                h3 { (ctx.t("who_owes_whom")) }
                (picture(&ctx, s))
                h3 { (ctx.t("payment_plan")) }
                (plan_table(&ctx, s, state.statement(s.period)))
            } @else {
                h2 { (ctx.t("latest_statement")) }
                p.muted { (ctx.t("no_statement")) }
            }
        }
        h2 { (ctx.t("members")) }
        (merchant_table(&ctx, &state, &validators, None))
        dl.facts {
            dt { (ctx.t("alliance_id")) } dd { code.key { (ex.shared.alliance.to_hex()) } }
            dt { (ctx.t("currency")) } dd { (ctx.currency) }
            dt { (ctx.t("time_zone")) } dd { (ctx.zone()) }
        }

        h2 { (ctx.t("validators")) }
        p { @for (i, v) in validators.iter().enumerate() { @if i > 0 { ", " } (ctx.merchant(v)) } }
        @let promoters: Vec<_> = state.promoters().collect();
        @if !promoters.is_empty() {
            h2 { (ctx.t("promoters")) }
            ul { @for (id, _, upstream) in &promoters {
                li { (ctx.party(&Party::Promoter((*id).clone())))
                    @if let Some(u) = upstream { span.muted { " ← " } (ctx.party(&Party::Promoter((*u).clone()))) } }
            } }
        }
        h2 { a href="/blocks" { (ctx.t("show_records")) } }
        (block_rows(&ctx, &recent))
    };
    ctx.ok(&ctx.alliance_name.clone(), body)
}

/// The members table; `district` filters it. (The nearby view — distance from a chosen
/// point — is meant to add a column and a sort here.)
fn merchant_table(ctx: &Ctx, state: &State, validators: &[PublicKey], district: Option<&str>) -> Markup {
    merchant_table_near(ctx, state, validators, district, None)
}

/// The merchant table; with `near`, a distance column (integer metres, `plaza_ledger::geo`)
/// and the rows nearest first, ties by key (issue 19).
fn merchant_table_near(ctx: &Ctx, state: &State, validators: &[PublicKey], district: Option<&str>, near: Option<Point>) -> Markup {
    let mut rows: Vec<(&plaza_ledger::record::MerchantProfile, plaza_ledger::contract::MerchantStatus, Option<u64>)> = state
        .merchants()
        .filter(|(p, _)| district.is_none_or(|d| p.district == d))
        .map(|(p, s)| (p, s, near.zip(nearby::location(p)).map(|(from, at)| distance_m(from, at))))
        .collect();
    rows.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.key.cmp(&b.0.key)));
    html! {
        div.scroll { table.merchants {
            tr {
                th { (ctx.t("name")) } th { (ctx.t("category")) } th { (ctx.t("district")) }
                @if near.is_some() { th { (ctx.t("distance")) } }
                th { (ctx.t("status")) } th { (ctx.t("validator")) }
            }
            @for (p, s, d) in &rows {
                tr {
                    td { (ctx.merchant(&p.key)) }
                    td { (ctx.category(&p.category)) }
                    td { a href={"/merchants?district=" (encode_query_value(&p.district))} { (ctx.district(&p.district)) } }
                    @if near.is_some() { td.num { (d.map(distance_text).unwrap_or_default()) } }
                    td { (status_label(ctx.lang, s.name())) }
                    td { @if validators.contains(&p.key) { "✓" } @else { "—" } }
                }
            }
        } }
    }
}

/// `850 m`, `1.27 km` (integers only).
fn distance_text(m: u64) -> String {
    if m < 1000 { format!("{m} m") } else { format!("{}.{:02} km", m / 1000, (m % 1000) / 10) }
}

pub async fn merchants(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let district = ctx.query.get("district").filter(|d| !d.is_empty()).cloned();
    let near_text = ctx.query.get("near").filter(|n| !n.trim().is_empty()).cloned();
    let near = match near_text.as_deref().map(Point::parse) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return ctx.bad_request(format!("near: {e}")),
    };
    let validators: Vec<PublicKey> = state.validator_set().validators().iter().map(|v| v.key).collect();
    let body = html! {
        form.filter method="get" action="/merchants" {
            label { (ctx.t("near_point")) " "
                input type="text" name="near" placeholder="31.2239,121.4460" value=(near_text.as_deref().unwrap_or("")) {}
            }
            " "
            label { (ctx.t("district")) " "
                select name="district" {
                    option value="" { (ctx.t("all_districts")) }
                    @for (code, name) in ctx.districts() {
                        option value=(code) selected[district.as_deref() == Some(code.as_str())] { (name) }
                    }
                }
            }
            " " button type="submit" { (ctx.t("filter")) }
        }
        (merchant_table_near(&ctx, &state, &validators, district.as_deref(), near))
    };
    ctx.ok(ctx.t("merchants"), body)
}

pub async fn blocks(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ex = ex.0;
    let tip = tip(&ex);
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    drop(state);
    let all = ctx.query.get("show").is_some_and(|s| s == "all");
    let before: u64 = match ctx.query.get("before").map(|b| b.parse::<u64>()) {
        None => tip.saturating_add(1),
        Some(Ok(b)) => b,
        Some(Err(_)) => return ctx.bad_request("before= takes a block height".into()),
    };
    let heights: Vec<u64> = if all {
        (1..before.min(tip.saturating_add(1))).rev().take(BLOCKS_PAGE).collect()
    } else {
        ex.non_empty_blocks(tip).into_iter().rev().filter(|h| *h < before).take(BLOCKS_PAGE).collect()
    };
    let mut list = Vec::with_capacity(heights.len());
    for h in &heights {
        match ex.shared.store.block(*h) {
            Ok(Some(b)) => list.push(b),
            Ok(None) => {}
            Err(e) => return internal(&ctx, e),
        }
    }
    let show = if all { "&show=all" } else { "" };
    let body = html! {
        p {
            @if all { a href="/blocks" { (ctx.t("show_records")) } " · " b { (ctx.t("show_all")) } }
            @else { b { (ctx.t("show_records")) } " · " a href="/blocks?show=all" { (ctx.t("show_all")) } span.muted { " — " (ctx.t("empty_blocks_hidden")) } }
        }
        (block_rows(&ctx, &list))
        @if let Some(last) = heights.last() && heights.len() == BLOCKS_PAGE && *last > 1 {
            p { a href={"/blocks?before=" (last) (show)} { (ctx.t("older")) " →" } }
        }
    };
    ctx.ok(ctx.t("blocks"), body)
}

fn find_block(ex: &Explorer, text: &str) -> Result<Option<FinalizedBlock>, String> {
    if text.len() == 64 {
        let Ok(id) = Hash::from_hex(text) else { return Ok(None) };
        match ex.shared.store.height_of_block(&id).map_err(|e| e.to_string())? {
            Some(h) => ex.shared.store.block(h).map_err(|e| e.to_string()),
            None => Ok(None),
        }
    } else {
        match text.parse::<u64>() {
            Ok(h) => ex.shared.store.block(h).map_err(|e| e.to_string()),
            Err(_) => Ok(None),
        }
    }
}

pub async fn block(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let fb = match find_block(&ex, &path.0) {
        Ok(Some(b)) => b,
        Ok(None) => return ctx.not_found(format!("no finalized block {}", path.0)),
        Err(e) => return internal(&ctx, e),
    };
    let receipts = match ex.shared.store.receipts_of(&fb) {
        Ok(r) => r,
        Err(e) => return internal(&ctx, e),
    };
    let h = &fb.block.header;
    // The statement this block closed, if any: the summary with its hash.
    let closed = h.statement_hash.and_then(|sh| {
        let mut p = 0;
        while let Some(s) = state.statement(p) {
            if s.hash == sh {
                return Some(p);
            }
            p += 1;
        }
        None
    });
    let body = html! {
        dl.facts {
            dt { (ctx.t("time")) } dd { (ctx.time(h.time_ms)) }
            dt { (ctx.t("id")) } dd { code.key { (fb.block.id().to_hex()) } }
            dt { "View" } dd { (h.view) }
            dt { (ctx.t("proposer")) } dd { (ctx.merchant(&h.proposer)) }
            dt { "Parent" } dd { @if h.height > 1 { a href={"/blocks/" (h.height - 1)} { (h.height - 1) } } @else { "genesis" } " " (ctx.hash_link(&h.parent.to_hex(), None)) }
            dt { (ctx.t("records_root")) } dd { (ctx.hash_link(&h.records_root.to_hex(), None)) }
            dt { "Receipts root" } dd { (ctx.hash_link(&h.receipts_root.to_hex(), None)) }
            dt { (ctx.t("state_root")) } dd { (ctx.hash_link(&h.state_root.to_hex(), None)) }
            @if let Some(sh) = h.statement_hash {
                dt { (ctx.t("statement_hash")) } dd {
                    (ctx.hash_link(&sh.to_hex(), None))
                    @if let Some(p) = closed { " · " a href={"/statements/" (p)} { (ctx.t("statement")) " " (p) } }
                }
            }
            dt { (ctx.t("certificate")) } dd {
                (fb.certificate.target.kind.name()) " · " (ctx.t("signers")) ": "
                @for (i, k) in fb.certificate.signers().enumerate() { @if i > 0 { ", " } (ctx.merchant(k)) }
            }
            dt { (ctx.t("json")) } dd { a href={"/v1/blocks/" (h.height)} { "/v1/blocks/" (h.height) } }
        }
        h2 { (ctx.t("records")) " (" (fb.block.records.len()) ")" }
        (records_table(&ctx, &fb.block.records, &receipts))
    };
    ctx.ok(&format!("{} {}", ctx.t("block"), h.height), body)
}

/// A record and where it is: (record, height and index, receipt), or pending in the mempool.
#[allow(clippy::type_complexity)]
fn locate(ex: &Explorer, id: &Hash) -> Result<Option<(Record, Option<(u64, u32)>, Option<Receipt>)>, String> {
    if let Some(loc) = ex.shared.store.record_location(id).map_err(|e| e.to_string())? {
        let block = ex.shared.store.block(loc.height).map_err(|e| e.to_string())?.ok_or("indexed block missing")?;
        let record = block.block.records.get(loc.index as usize).cloned().ok_or("record index out of range")?;
        let receipt = ex.shared.store.receipt(id).map_err(|e| e.to_string())?;
        return Ok(Some((record, Some((loc.height, loc.index)), receipt)));
    }
    Ok(ex.shared.mempool().get(id).cloned().map(|r| (r, None, None)))
}

pub async fn record(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let Ok(id) = Hash::from_hex(&path.0) else { return ctx.bad_request(format!("{:?} is not a record id (64 hex digits)", path.0)) };
    let (record, location, receipt) = match locate(&ex, &id) {
        Ok(Some(found)) => found,
        Ok(None) => return ctx.not_found(format!("record {id} is neither pending here nor in a finalized block")),
        Err(e) => return internal(&ctx, e),
    };
    let hex = id.to_hex();
    let body = html! {
        dl.facts {
            dt { (ctx.t("id")) } dd { code.key { (hex) } }
            dt { (ctx.t("kind")) } dd { (kind_label(ctx.lang, kind_name(record.payload()))) }
            dt { (ctx.t("signer")) } dd { (ctx.merchant(record.signer())) }
            dt { (ctx.t("created_at")) } dd { (ctx.time(record.body().created_at_ms)) }
            dt { (ctx.t("block")) } dd {
                @if let Some((h, i)) = location { a href={"/blocks/" (h)} { (h) } " · " (ctx.t("index")) " " (i) } @else { (ctx.t("pending_mempool")) }
            }
            dt { (ctx.t("receipt")) } dd {
                (receipt_cell(&ctx, receipt.as_ref()))
                @if let Some(c) = receipt.as_ref().and_then(Receipt::code) { br; span.muted { (c.description()) } }
            }
            (payload_facts(&ctx, &record))
            @if location.is_some() {
                dt { (ctx.t("proof")) } dd { a href={"/records/" (hex) "/proof"} { (ctx.t("proof")) } " · " a href={"/v1/proofs/" (hex)} { (ctx.t("json")) } }
            }
        }
    };
    ctx.ok(&format!("{}: {}", ctx.t("record"), kind_label(ctx.lang, kind_name(record.payload()))), body)
}

pub async fn proof(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let Ok(id) = Hash::from_hex(&path.0) else { return ctx.bad_request(format!("{:?} is not a record id (64 hex digits)", path.0)) };
    let location = match ex.shared.store.record_location(&id) {
        Ok(Some(l)) => l,
        Ok(None) => return ctx.not_found(format!("record {id} is not in a finalized block")),
        Err(e) => return internal(&ctx, e),
    };
    let block = match ex.shared.store.block(location.height) {
        Ok(Some(b)) => b,
        Ok(None) => return internal(&ctx, "indexed block missing"),
        Err(e) => return internal(&ctx, e),
    };
    let leaves: Vec<Hash> = block.block.records.iter().map(|r| merkle::leaf_hash(r.id().as_bytes())).collect();
    let Some(p) = merkle::prove(&leaves, location.index as usize) else { return internal(&ctx, "record index out of range") };
    let verified = p.verify(&leaves[location.index as usize], &block.block.header.records_root);
    let body = html! {
        dl.facts {
            dt { (ctx.t("record")) } dd { a href={"/records/" (id.to_hex())} { code { (short(&id.to_hex())) } } }
            dt { (ctx.t("block")) } dd { a href={"/blocks/" (location.height)} { (location.height) } }
            dt { (ctx.t("records_root")) } dd { code.key { (block.block.header.records_root.to_hex()) } }
            dt { (ctx.t("index")) } dd { (p.index) }
            dt { (ctx.t("tree_size")) } dd { (p.tree_size) }
            dt { (ctx.t("verified")) } dd { @if verified { span.accepted { "✓" } } @else { span.rejected { "✗" } } }
            dt { (ctx.t("signers")) } dd { @for (i, k) in block.certificate.signers().enumerate() { @if i > 0 { ", " } (ctx.merchant(k)) } }
            dt { (ctx.t("json")) } dd { a href={"/v1/proofs/" (id.to_hex())} { "/v1/proofs/" (short(&id.to_hex())) } }
        }
        h2 { (ctx.t("path")) }
        ol { @for h in &p.path { li { code.key { (h.to_hex()) } } } }
        p.muted { "leaf = blake3(0x00 ‖ record id), node = blake3(0x01 ‖ left ‖ right) (RFC 9162 shape; docs/FORMAT.md). "
            code { "plaza proof " (short(&id.to_hex())) } " writes a self-contained proof for offline checking." }
    };
    ctx.ok(ctx.t("proof"), body)
}

/// The money page of a merchant or a promoter.
fn party_money(ex: &Explorer, ctx: &Ctx, state: &State, party: &Party) -> Result<Markup, String> {
    let b = state.balance(party);
    let items = state.items_of(party);
    let (latest, _) = state.latest_statement().map_or((None, ()), |(p, _)| (Some(p), ()));
    let first = latest.map_or(0, |l| l.saturating_sub(MERCHANT_STATEMENTS_MAX - 1));
    let mut statements = Vec::new();
    if let Some(latest) = latest {
        for p in (first..=latest).rev() {
            if let Some(s) = stored_statement(ex, p)? {
                statements.push(s);
            }
        }
    }
    let counterparty = |debtor: &Party, creditor: &Party| -> (Markup, bool) {
        if debtor == party { (ctx.party(creditor), false) } else { (ctx.party(debtor), true) }
    };
    Ok(html! {
        h2 { (ctx.t("balances")) }
        div.cards {
            div { (ctx.t("receivable")) " · " (ctx.t("pending")) b { (ctx.money(b.pending)) } }
            div { (ctx.t("receivable")) " · " (ctx.t("locked")) b { (ctx.money(b.locked)) } }
            div { (ctx.t("receivable")) " · " (ctx.t("on_hold")) b { (ctx.money(b.on_hold)) } }
            div { (ctx.t("receivable")) " · " (ctx.t("paid")) b { (ctx.money(b.paid)) } }
            div { (ctx.t("payable")) " · " (ctx.t("pending")) b { (ctx.money(b.pending_payable)) } }
            div { (ctx.t("payable")) " · " (ctx.t("locked")) b { (ctx.money(b.locked_payable)) } }
            div { (ctx.t("payable")) " · " (ctx.t("paid")) b { (ctx.money(b.paid_out)) } }
        }
        h2 { (ctx.t("open_items")) }
        div.scroll { table.items {
            tr { th { (ctx.t("state")) } th { (ctx.t("kind")) } th { "" } th.num { (ctx.t("amount")) } th { (ctx.t("time")) } th { (ctx.t("record")) } }
            @for item in &items {
                @let (other, incoming) = counterparty(&item.debtor, &item.creditor);
                tr {
                    td { @if item.held { (ctx.t("on_hold")) } @else { (ctx.t("pending")) } }
                    td { (line_label(ctx.lang, item.kind.name())) }
                    td { @if incoming { "← " } @else { "→ " } (other) }
                    td.num { @if incoming { "+" } @else { "−" } (amount(ctx, item.amount)) }
                    td { (ctx.t("locks_at")) " " (ctx.time(item.lock_at_ms)) }
                    td { (ctx.hash_link(&item.source.to_hex(), Some(&format!("/records/{}", item.source.to_hex())))) }
                }
            }
            @for s in &statements {
                @if let Some(summary) = state.statement(s.period) {
                    @for o in summary.obligations.iter().filter(|o| o.payer == *party || o.payee == *party) {
                        @let (other, incoming) = counterparty(&o.payer, &o.payee);
                        tr {
                            td { @if o.outstanding == 0 { (ctx.t("paid")) } @else { (ctx.t("locked")) } }
                            td { (ctx.t("payment_plan")) }
                            td { @if incoming { "← " } @else { "→ " } (other) }
                            td.num { @if incoming { "+" } @else { "−" } (ctx.money(o.amount)) @if o.outstanding != 0 && o.outstanding != o.amount { br; span.muted { (ctx.t("outstanding")) " " (ctx.money(o.outstanding)) } } }
                            td { a href={"/statements/" (s.period)} { (ctx.t("statement")) " " (s.period) } }
                            td { }
                        }
                    }
                }
            }
        } }
        h2 { (ctx.t("its_lines")) }
        @for s in statements.iter().filter(|s| s.lines.iter().any(|l| l.debtor == *party || l.creditor == *party)) {
            h3 { a href={"/statements/" (s.period)} { (ctx.t("statement")) " " (s.period) } span.muted { " · " (ctx.time(s.start_ms)) " – " (ctx.time(s.end_ms)) " · " (ctx.t("net")) " " (ctx.signed_money(s.net_of(party))) } }
            div.scroll { table.lines {
                tr { th { (ctx.t("kind")) } th { "" } th.num { (ctx.t("amount")) } th { (ctx.t("sources")) } }
                @for l in s.lines.iter().filter(|l| l.debtor == *party || l.creditor == *party) {
                    @let (other, incoming) = counterparty(&l.debtor, &l.creditor);
                    tr {
                        td { (line_label(ctx.lang, l.kind.name())) }
                        td { @if incoming { "← " } @else { "→ " } (other) }
                        td.num { @if incoming { "+" } @else { "−" } (ctx.money(l.amount)) }
                        td { @for (i, src) in l.sources.iter().enumerate() { @if i > 0 { " " } (ctx.hash_link(&src.to_hex(), Some(&format!("/records/{}", src.to_hex())))) } }
                    }
                }
            } }
        }
    })
}

pub async fn merchant(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let Ok(key) = PublicKey::from_hex(&path.0) else { return ctx.bad_request(format!("{:?} is not a merchant key (64 hex digits)", path.0)) };
    let Some((p, status)) = state.merchant(&key) else { return ctx.not_found(format!("{key} is not a member")) };
    let validator = state.validator_set().contains(&key);
    let money = match party_money(&ex, &ctx, &state, &Party::Merchant(key)) {
        Ok(m) => m,
        Err(e) => return internal(&ctx, e),
    };
    let body = html! {
        dl.facts {
            dt { (ctx.t("key")) } dd { code.key { (key.to_hex()) } }
            dt { (ctx.t("category")) } dd { (ctx.category(&p.category)) }
            dt { (ctx.t("district")) } dd { a href={"/merchants?district=" (encode_query_value(&p.district))} { (ctx.district(&p.district)) } }
            dt { "Location" } dd { (format!("{:.6}, {:.6}", f64::from(p.latitude_e6) / 1e6, f64::from(p.longitude_e6) / 1e6)) }
            dt { (ctx.t("status")) } dd { (status_label(ctx.lang, status.name())) }
            dt { (ctx.t("validator")) } dd { @if validator { "✓" } @else { "—" } }
            dt { (ctx.t("json")) } dd { a href={"/v1/merchants/" (key.to_hex())} { "/v1/merchants/…" } }
        }
        (money)
    };
    ctx.ok(&p.name.clone(), body)
}

pub async fn promoter(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let Ok(id) = PromoterId::new(&path.0) else { return ctx.bad_request(format!("{:?} is not a promoter id", path.0)) };
    let Some((_, name, upstream)) = state.promoters().find(|(p, _, _)| **p == id) else { return ctx.not_found(format!("no promoter {}", id.as_str())) };
    let (name, upstream) = (name.to_owned(), upstream.cloned());
    let money = match party_money(&ex, &ctx, &state, &Party::Promoter(id.clone())) {
        Ok(m) => m,
        Err(e) => return internal(&ctx, e),
    };
    let body = html! {
        dl.facts {
            dt { (ctx.t("id")) } dd { code { (id.as_str()) } }
            @if let Some(u) = &upstream { dt { "Upstream" } dd { (ctx.party(&Party::Promoter(u.clone()))) } }
        }
        (money)
    };
    ctx.ok(&name, body)
}

pub async fn card(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let now = ex.shared.clock.now_ms();
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let Ok(card) = CardId::from_hex(&path.0) else { return ctx.bad_request(format!("{:?} is not a card id (32 hex digits)", path.0)) };
    let Some(view) = state.card(&card, now) else { return ctx.not_found(format!("no card {}", card.to_hex())) };
    let mut lots = view.lots.clone();
    lots.sort_by(|a, b| {
        (ctx.merchant_name(&a.issuer), a.expires_at_ms, a.id).cmp(&(ctx.merchant_name(&b.issuer), b.expires_at_ms, b.id))
    });
    let body = html! {
        p.muted { (ctx.t("no_personal_data")) }
        dl.facts {
            dt { (ctx.t("id")) } dd { code.key { (card.to_hex()) } }
            dt { (ctx.t("home_merchant")) } dd { (ctx.merchant(&view.home)) }
            dt { (ctx.t("points")) } dd { (view.points) }
            dt { (ctx.t("spendable")) } dd { (view.spendable) }
            @if view.debt > 0 { dt { (ctx.t("debt")) } dd { (view.debt) } }
        }
        h2 { (ctx.t("lots")) }
        div.scroll { table.lots {
            tr { th { (ctx.t("issuer")) } th.num { (ctx.t("points")) } th { (ctx.t("spendable_at")) } th { (ctx.t("expires")) } }
            @for l in &lots {
                tr { td { (ctx.merchant(&l.issuer)) } td.num { (l.points) } td { (ctx.time(l.spendable_at_ms)) } td { (ctx.time(l.expires_at_ms)) } }
            }
        } }
    };
    ctx.ok(ctx.t("card"), body)
}

pub async fn coupons(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let batches = state.coupon_batches();
    let body = html! {
        div.scroll { table.batches {
            tr { th { (ctx.t("batch")) } th { (ctx.t("issuer")) } th.num { (ctx.t("value")) } th.num { (ctx.t("min_spend")) } th { (ctx.t("redeemable_at")) } th { (ctx.t("funding")) } th { (ctx.t("expires")) } th.num { (ctx.t("codes")) } th.num { (ctx.t("redeemed")) } }
            @for b in &batches {
                tr {
                    td { a href={"/coupons/" (b.id.to_hex())} { (b.name) } }
                    td { (ctx.merchant(&b.issuer)) }
                    td.num { (coupon_value(&ctx, &b.value)) }
                    td.num { (amount(&ctx, b.min_spend)) }
                    td { (places(&ctx, &b.redeemable_at)) }
                    td { (funding(&ctx, &b.funding)) }
                    td { (ctx.time(b.expires_at_ms)) }
                    td.num { (b.codes) }
                    td.num { (b.redeemed) }
                }
            }
        } }
    };
    ctx.ok(ctx.t("coupons"), body)
}

pub async fn coupon_batch(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let Ok(id) = Hash::from_hex(&path.0) else { return ctx.bad_request(format!("{:?} is not a batch id (64 hex digits)", path.0)) };
    let Some(b) = state.coupon_batches().into_iter().find(|b| b.id == id) else { return ctx.not_found(format!("no coupon batch {id}")) };
    let codes = state.coupons_of_batch(&id);
    let body = html! {
        dl.facts {
            dt { (ctx.t("issuer")) } dd { (ctx.merchant(&b.issuer)) }
            dt { (ctx.t("value")) } dd { (coupon_value(&ctx, &b.value)) }
            dt { (ctx.t("min_spend")) } dd { (amount(&ctx, b.min_spend)) }
            dt { (ctx.t("redeemable_at")) } dd { (places(&ctx, &b.redeemable_at)) }
            dt { (ctx.t("funding")) } dd { (funding(&ctx, &b.funding)) }
            dt { (ctx.t("expires")) } dd { (ctx.time(b.expires_at_ms)) }
            dt { (ctx.t("record")) } dd { (ctx.hash_link(&id.to_hex(), Some(&format!("/records/{}", id.to_hex())))) }
        }
        div.scroll { table.codes {
            tr { th { (ctx.t("code_hash")) } th { (ctx.t("redeemed_by")) } }
            @for (h, by) in &codes {
                tr {
                    td { (ctx.hash_link(&h.to_hex(), None)) }
                    td { @if let Some((m, order)) = by { (ctx.merchant(m)) " · " a href={"/search?q=" (encode_query_value(order))} { (order) } } @else { "—" } }
                }
            }
        } }
    };
    ctx.ok(&format!("{} {}", ctx.t("batch"), b.name), body)
}

pub async fn governance(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let mut proposals = state.proposals();
    proposals.sort_by_key(|p| std::cmp::Reverse((p.created_at_ms, p.id)));
    let body = html! {
        h2 { (ctx.t("proposals")) }
        div.scroll { table.proposals {
            tr { th { (ctx.t("time")) } th { (ctx.t("proposer")) } th { (ctx.t("action")) } th { (ctx.t("status")) } th { (ctx.t("votes")) } }
            @for p in &proposals {
                @let yes = p.votes.iter().filter(|(_, a)| *a).count();
                tr {
                    td { a href={"/proposals/" (p.id.to_hex())} { (ctx.time(p.created_at_ms)) } }
                    td { (ctx.merchant(&p.proposer)) }
                    td { (action(&ctx, p.action)) }
                    td { (status_label(ctx.lang, p.status.name())) }
                    td { (yes) " " (ctx.t("yes")) " / " (p.votes.len() - yes) " " (ctx.t("no")) }
                }
            }
        } }
        h2 { (ctx.t("policy")) }
        div.scroll { table.policies {
            tr { th.num { (ctx.t("version")) } th { (ctx.t("effective")) } th.num { (ctx.t("referral_rate")) } th.num { (ctx.t("promoter_rate")) } th.num { (ctx.t("home_rate")) } th.num { (ctx.t("share_cap")) } }
            @for p in state.policies() {
                tr {
                    td.num { (p.version) } td { (ctx.time(p.effective_at_ms)) }
                    td.num { (percent(p.referral_rate.0)) } td.num { (percent(p.promoter_rate.0)) }
                    td.num { (percent(p.home_rate.0)) } td.num { (percent(p.share_cap.0)) }
                }
            }
        } }
    };
    ctx.ok(ctx.t("governance"), body)
}

pub async fn proposal(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let Ok(id) = Hash::from_hex(&path.0) else { return ctx.bad_request(format!("{:?} is not a proposal id (64 hex digits)", path.0)) };
    let proposals = state.proposals();
    let Some(p) = proposals.iter().find(|p| p.id == id) else { return ctx.not_found(format!("no proposal {id}")) };
    let body = html! {
        dl.facts {
            dt { (ctx.t("action")) } dd { (action(&ctx, p.action)) }
            dt { (ctx.t("proposer")) } dd { (ctx.merchant(&p.proposer)) }
            dt { (ctx.t("time")) } dd { (ctx.time(p.created_at_ms)) }
            dt { (ctx.t("status")) } dd { (status_label(ctx.lang, p.status.name())) }
            dt { (ctx.t("record")) } dd { (ctx.hash_link(&id.to_hex(), Some(&format!("/records/{}", id.to_hex())))) }
        }
        h2 { (ctx.t("votes")) }
        div.scroll { table.votes {
            tr { th { (ctx.t("merchant")) } th { (ctx.t("votes")) } }
            @for (k, approve) in p.votes { tr { td { (ctx.merchant(k)) } td { @if *approve { (ctx.t("yes")) } @else { (ctx.t("no")) } } } }
        } }
    };
    ctx.ok(ctx.t("proposal"), body)
}

pub async fn statements(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let (open, start, end) = state.period();
    let mut summaries = Vec::new();
    let mut p = 0;
    while let Some(s) = state.statement(p) {
        summaries.push((p, s));
        p += 1;
    }
    let body = html! {
        p { (ctx.t("open_period")) " " (open) ": " (ctx.time(start)) " – " (ctx.time(end)) }
        @if summaries.is_empty() { p.muted { (ctx.t("no_statement")) } }
        div.scroll { table.statements {
            tr { th.num { (ctx.t("period")) } th { (ctx.t("from")) } th { (ctx.t("to")) } th.num { (ctx.t("payment_plan")) } th.num { (ctx.t("amount")) } th.num { (ctx.t("outstanding")) } th { "Hash" } }
            @for (p, s) in summaries.iter().rev() {
                tr {
                    td.num { a href={"/statements/" (p)} { (p) } }
                    td { (ctx.time(s.start_ms)) } td { (ctx.time(s.end_ms)) }
                    td.num { (s.obligations.len()) }
                    td.num { (ctx.money(s.obligations.iter().map(|o| o.amount).sum())) }
                    td.num { (ctx.money(s.obligations.iter().map(|o| o.outstanding).sum())) }
                    td { (ctx.hash_link(&s.hash.to_hex(), None)) }
                }
            }
        } }
    };
    ctx.ok(ctx.t("statements"), body)
}

fn statement_for(ex: &Explorer, ctx: &Ctx, text: &str) -> Result<Statement, Response> {
    let Ok(period) = text.parse::<u64>() else { return Err(ctx.bad_request(format!("{text:?} is not a period number"))) };
    match stored_statement(ex, period) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(ctx.not_found(format!("no statement for period {period} yet"))),
        Err(e) => Err(internal(ctx, e)),
    }
}

pub async fn statement(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let s = match statement_for(&ex, &ctx, &path.0) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let summary = state.statement(s.period);
    let body = html! {
        dl.facts {
            dt { (ctx.t("from")) } dd { (ctx.time(s.start_ms)) }
            dt { (ctx.t("to")) } dd { (ctx.time(s.end_ms)) }
            dt { (ctx.t("statement_hash")) } dd { code.key { (s.hash().to_hex()) } }
            dt { (ctx.t("json")) } dd { a href={"/v1/statements/" (s.period)} { "/v1/statements/" (s.period) } " · " a href={"/statements/" (s.period) "/graph.svg"} { "SVG" } }
        }
        h2 { (ctx.t("who_owes_whom")) }
        (picture(&ctx, &s))
        h2 { (ctx.t("payment_plan")) }
        (plan_table(&ctx, &s, summary))
        h2 { (ctx.t("nets")) }
        div.scroll { table.nets {
            tr { th { (ctx.t("name")) } th.num { (ctx.t("net")) } }
            @for (p, n) in &s.nets { tr { td { (ctx.party(p)) } td.num { (ctx.signed_money(*n)) } } }
        } }
        @if !s.bilateral.is_empty() {
            h2 { (ctx.t("bilateral")) }
            div.scroll { table.bilateral {
                tr { th { "A" } th { "B" } th.num { (ctx.t("net")) } }
                @for b in &s.bilateral { tr { td { (ctx.party(&b.a)) } td { (ctx.party(&b.b)) } td.num { (ctx.signed_money(b.net)) } } }
            } }
        }
        h2 { (ctx.t("lines")) " (" (s.lines.len()) ")" }
        div.scroll { table.lines {
            tr { th { (ctx.t("kind")) } th { (ctx.t("debtor")) } th { (ctx.t("creditor")) } th.num { (ctx.t("amount")) } th { (ctx.t("sources")) } }
            @for l in &s.lines {
                tr {
                    td { (line_label(ctx.lang, l.kind.name())) }
                    td { (ctx.party(&l.debtor)) } td { (ctx.party(&l.creditor)) }
                    td.num { (ctx.money(l.amount)) }
                    td { @for (i, src) in l.sources.iter().enumerate() { @if i > 0 { " " } (ctx.hash_link(&src.to_hex(), Some(&format!("/records/{}", src.to_hex())))) } }
                }
            }
        } }
        @if !s.rolled_over.is_empty() {
            h2 { (ctx.t("rolled_over")) }
            div.scroll { table.rolled {
                tr { th { (ctx.t("payer")) } th { (ctx.t("payee")) } th.num { (ctx.t("amount")) } }
                @for t in &s.rolled_over { tr { td { (ctx.party(&t.payer)) } td { (ctx.party(&t.payee)) } td.num { (ctx.money(t.amount)) } } }
            } }
        }
    };
    ctx.ok(&format!("{} {}", ctx.t("statement"), s.period), body)
}

/// The picture alone, as an SVG document.
pub async fn statement_graph(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery, path: PathArg) -> Response {
    let ex = ex.0;
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let text = path.0.clone();
    let s = match statement_for(&ex, &ctx, &text) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (nodes, edges, title) = graph_data(&ctx, &s);
    let svg = graph::render(&title, &nodes, &edges, &ctx.currency).into_string();
    ([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response()
}

/// One search hit: what it is, its label, where it goes.
struct Hit {
    what: &'static str,
    label: Markup,
    href: String,
}

pub async fn search(ex: Ex, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ex = ex.0;
    let tip = tip(&ex);
    let state = ex.shared.state();
    let ctx = ctx(&ex, &state, &headers, &q);
    let text = ctx.query.get("q").map(|s| s.trim().to_owned()).unwrap_or_default();
    if text.len() > SEARCH_QUERY_BYTES_MAX {
        return ctx.bad_request(format!("a search is at most {SEARCH_QUERY_BYTES_MAX} bytes"));
    }
    let mut hits: Vec<Hit> = Vec::new();
    if !text.is_empty() {
        let lower = text.to_lowercase();
        if let Ok(h) = text.parse::<u64>()
            && h >= 1
            && h <= tip
        {
            hits.push(Hit { what: ctx.t("block"), label: html! { (ctx.t("height")) " " (h) }, href: format!("/blocks/{h}") });
        }
        if let Ok(id) = Hash::from_hex(&lower) {
            match locate(&ex, &id) {
                Ok(Some((r, _, _))) => hits.push(Hit {
                    what: ctx.t("record"),
                    label: html! { (kind_label(ctx.lang, kind_name(r.payload()))) " · " (ctx.merchant_name(r.signer()).unwrap_or("")) },
                    href: format!("/records/{lower}"),
                }),
                Ok(None) => {}
                Err(e) => return internal(&ctx, e),
            }
            if let Ok(Some(h)) = ex.shared.store.height_of_block(&id) {
                hits.push(Hit { what: ctx.t("block"), label: html! { (ctx.t("height")) " " (h) }, href: format!("/blocks/{h}") });
            }
            if state.proposals().iter().any(|p| p.id == id) {
                hits.push(Hit { what: ctx.t("proposal"), label: html! { (short(&lower)) }, href: format!("/proposals/{lower}") });
            }
            if let Some(b) = state.coupon_batches().into_iter().find(|b| b.id == id) {
                hits.push(Hit { what: ctx.t("batch"), label: html! { (b.name) }, href: format!("/coupons/{lower}") });
            }
            if let Some(c) = state.coupon(&id) {
                hits.push(Hit { what: ctx.t("coupons"), label: html! { (ctx.t("code_hash")) " " (short(&lower)) }, href: format!("/coupons/{}", c.batch.to_hex()) });
            }
        }
        if let Ok(key) = PublicKey::from_hex(&lower)
            && let Some((p, _)) = state.merchant(&key)
        {
            hits.push(Hit { what: ctx.t("merchant"), label: html! { (p.name) }, href: format!("/merchants/{lower}") });
        }
        if lower.len() == 32
            && let Ok(card) = CardId::from_hex(&lower)
            && state.card(&card, u64::MAX).is_some()
        {
            hits.push(Hit { what: ctx.t("card"), label: html! { code { (short(&lower)) } }, href: format!("/cards/{lower}") });
        }
        for sale in state.sales_by_order(&text) {
            hits.push(Hit {
                what: kind_label(ctx.lang, "sale"),
                label: html! { (sale.order) " · " (ctx.merchant_name(&sale.seller).unwrap_or("")) " · " (amount(&ctx, sale.gross)) },
                href: format!("/records/{}", sale.record.to_hex()),
            });
        }
        for (p, _) in state.merchants().filter(|(p, _)| p.name.to_lowercase().contains(&lower)) {
            hits.push(Hit { what: ctx.t("merchant"), label: html! { (p.name) }, href: format!("/merchants/{}", p.key.to_hex()) });
        }
        for (id, name, _) in state.promoters().filter(|(id, name, _)| name.to_lowercase().contains(&lower) || id.as_str() == lower) {
            hits.push(Hit { what: ctx.t("promoters"), label: html! { (name) }, href: format!("/promoters/{}", encode_query_value(id.as_str())) });
        }
    }
    hits.truncate(SEARCH_RESULTS_MAX);
    let body = html! {
        form.search method="get" action="/search" {
            input type="search" name="q" value=(text) placeholder=(ctx.t("search_hint")) aria-label=(ctx.t("search"));
            button type="submit" { (ctx.t("search")) }
        }
        @if !text.is_empty() && hits.is_empty() { p { (ctx.t("no_results")) } }
        @if !hits.is_empty() {
            div.scroll { table.results {
                @for h in &hits { tr { td { (h.what) } td { a href=(h.href) { (h.label) } } } }
            } }
        }
    };
    ctx.ok(ctx.t("search"), body)
}
