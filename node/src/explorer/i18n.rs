//! The explorer's two languages. A page's language comes from `?lang=en|zh` (remembered in a
//! cookie), else from the browser's `Accept-Language`, else English.

use axum::http::{header, HeaderMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
    /// The `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
    fn parse(text: &str) -> Option<Lang> {
        let t = text.trim().to_ascii_lowercase();
        if t.starts_with("zh") {
            Some(Lang::Zh)
        } else if t.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// (language, whether it came from the query and should be remembered).
    pub fn choose(query_lang: Option<&str>, headers: &HeaderMap) -> (Lang, bool) {
        if let Some(l) = query_lang.and_then(Lang::parse) {
            return (l, true);
        }
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("plaza_lang=").and_then(Lang::parse));
        if let Some(l) = cookie {
            return (l, false);
        }
        // The first language listed that we have (quality values are in the order browsers send).
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let chosen = accept.split(',').find_map(|part| Lang::parse(part.split(';').next().unwrap_or("")));
        (chosen.unwrap_or(Lang::En), false)
    }

    /// A label in this language.
    pub fn t(self, key: &'static str) -> &'static str {
        let (en, zh) = label(key);
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }
}

/// (English, Chinese) for every label the pages use; an unknown key shows itself.
fn label(key: &'static str) -> (&'static str, &'static str) {
    match key {
        "explorer" => ("Explorer", "浏览器"),
        "overview" => ("Overview", "概览"),
        "blocks" => ("Blocks", "区块"),
        "block" => ("Block", "区块"),
        "merchants" => ("Merchants", "商家"),
        "merchant" => ("Merchant", "商家"),
        "promoters" => ("Promoters", "推广者"),
        "statements" => ("Statements", "结算单"),
        "statement" => ("Statement", "结算单"),
        "coupons" => ("Coupons", "优惠券"),
        "governance" => ("Governance", "治理"),
        "search" => ("Search", "搜索"),
        "search_hint" => ("record id, order id, merchant, height, card", "记录号、订单号、商家、高度、会员卡"),
        "results" => ("Results", "结果"),
        "no_results" => ("Nothing found.", "没有找到。"),
        "name" => ("Name", "名称"),
        "category" => ("Category", "行业"),
        "district" => ("District", "商圈"),
        "all_districts" => ("All districts", "全部商圈"),
        "distance" => ("Distance", "距离"),
        "near_point" => ("Distance from (lat,lon)", "距离起点（纬度,经度）"),
        "filter" => ("Filter", "筛选"),
        "status" => ("Status", "状态"),
        "validator" => ("Validator", "验证节点"),
        "validators" => ("Validators", "验证节点"),
        "members" => ("Members", "成员"),
        "height" => ("Height", "高度"),
        "time" => ("Time", "时间"),
        "latest_block" => ("Latest block", "最新区块"),
        "records" => ("Records", "记录"),
        "record" => ("Record", "记录"),
        "kind" => ("Kind", "类型"),
        "signer" => ("Signer", "签名商家"),
        "created_at" => ("Created at", "创建时间"),
        "receipt" => ("Receipt", "回执"),
        "proof" => ("Inclusion proof", "包含证明"),
        "details" => ("Details", "详情"),
        "proposer" => ("Proposer", "提议者"),
        "certificate" => ("Certificate", "最终确认证书"),
        "signers" => ("Signers", "签名者"),
        "id" => ("Id", "编号"),
        "key" => ("Key", "公钥"),
        "period" => ("Period", "结算期"),
        "from" => ("From", "起"),
        "to" => ("To", "止"),
        "who_owes_whom" => ("Who owes whom", "谁欠谁"),
        "payment_plan" => ("Payment plan", "付款计划"),
        "payer" => ("Payer", "付款方"),
        "payee" => ("Payee", "收款方"),
        "amount" => ("Amount", "金额"),
        "outstanding" => ("Outstanding", "未付"),
        "nets" => ("Net positions", "净额"),
        "net" => ("Net", "净额"),
        "lines" => ("Lines", "明细"),
        "debtor" => ("Debtor", "债务方"),
        "creditor" => ("Creditor", "债权方"),
        "sources" => ("Source records", "来源记录"),
        "bilateral" => ("Bilateral nets", "双边净额"),
        "rolled_over" => ("Rolled over (below the minimum payout)", "结转（低于最低付款额）"),
        "nothing_to_pay" => ("Nothing to pay in this period.", "本期无需付款。"),
        "no_statement" => ("No statement yet: the first period has not closed.", "暂无结算单：第一个结算期尚未结束。"),
        "latest_statement" => ("Latest statement", "最新结算单"),
        "balances" => ("Balances", "余额"),
        "receivable" => ("Owed to it", "应收"),
        "payable" => ("It owes", "应付"),
        "pending" => ("PENDING", "待锁定"),
        "locked" => ("LOCKED", "已锁定"),
        "on_hold" => ("ON HOLD", "冻结"),
        "paid" => ("PAID", "已付"),
        "open_items" => ("Items by state", "按状态的款项"),
        "locks_at" => ("Locks at", "锁定时间"),
        "state" => ("State", "状态"),
        "its_lines" => ("Its lines in each statement", "各结算单中的明细"),
        "card" => ("Member card", "会员卡"),
        "home_merchant" => ("Home merchant", "所属商家"),
        "points" => ("Points", "积分"),
        "spendable" => ("Spendable now", "现可用"),
        "debt" => ("Negative points (refunds)", "负积分（退款）"),
        "lots" => ("Points lots", "积分批次"),
        "issuer" => ("Issuer", "发行商家"),
        "spendable_at" => ("Spendable from", "可用起始"),
        "expires" => ("Expires", "到期"),
        "no_personal_data" => ("The ledger knows no personal data of a card holder.", "账本上没有持卡人的任何个人信息。"),
        "batch" => ("Batch", "批次"),
        "value" => ("Value", "面值"),
        "min_spend" => ("Minimum spend", "最低消费"),
        "redeemable_at" => ("Redeemable at", "可用商家"),
        "funding" => ("Funded by", "出资方"),
        "codes" => ("Codes", "券码数"),
        "redeemed" => ("Redeemed", "已核销"),
        "code_hash" => ("Code hash", "券码哈希"),
        "redeemed_by" => ("Redeemed by", "核销于"),
        "proposals" => ("Proposals", "提案"),
        "proposal" => ("Proposal", "提案"),
        "action" => ("Action", "内容"),
        "votes" => ("Votes", "投票"),
        "yes" => ("yes", "赞成"),
        "no" => ("no", "反对"),
        "policy" => ("Policy versions", "政策版本"),
        "version" => ("Version", "版本"),
        "effective" => ("Effective from", "生效时间"),
        "referral_rate" => ("Referral", "推荐佣金率"),
        "promoter_rate" => ("Promoter", "推广佣金率"),
        "home_rate" => ("Home merchant", "归属商家分成"),
        "share_cap" => ("Cap", "上限"),
        "currency" => ("Currency", "货币"),
        "time_zone" => ("Time zone", "时区"),
        "alliance_id" => ("Alliance id", "联盟编号"),
        "open_period" => ("Open period", "当前结算期"),
        "show_all" => ("All blocks", "全部区块"),
        "show_records" => ("Blocks with records", "有记录的区块"),
        "older" => ("Older", "更早"),
        "empty_blocks_hidden" => ("Empty blocks are hidden.", "已隐藏空区块。"),
        "not_found" => ("Not found", "未找到"),
        "bad_request" => ("Bad request", "请求有误"),
        "json" => ("JSON", "JSON"),
        "verified" => ("Verified against the block's records root", "已按区块记录根验证"),
        "path" => ("Merkle path", "默克尔路径"),
        "index" => ("Index", "序号"),
        "tree_size" => ("Tree size", "树大小"),
        "records_root" => ("Records root", "记录根"),
        "state_root" => ("State root", "状态根"),
        "statement_hash" => ("Statement hash", "结算单哈希"),
        "pending_mempool" => ("pending (not in a block yet)", "待处理（尚未入块）"),
        "arrow_legend" => ("Arrows point from payer to payee; width grows with the amount.", "箭头由付款方指向收款方；线越粗金额越大。"),
        _ => (key, key),
    }
}

/// A record kind's label.
pub fn kind_label(lang: Lang, kind: &str) -> &'static str {
    let (en, zh) = match kind {
        "propose" => ("proposal", "提案"),
        "vote" => ("vote", "投票"),
        "issue_card" => ("card issued", "发卡"),
        "refer" => ("referral", "推荐"),
        "issue_coupons" => ("coupons issued", "发券"),
        "sale" => ("sale", "销售"),
        "refund" => ("refund", "退款"),
        "revoke_redemption" => ("redemption revoked", "撤销核销"),
        "agreement" => ("agreement", "协议"),
        "accept" => ("agreement accepted", "接受协议"),
        "confirm_payment" => ("payment confirmed", "确认收款"),
        _ => ("record", "记录"),
    };
    if lang == Lang::Zh { zh } else { en }
}

/// A statement line kind's label.
pub fn line_label(lang: Lang, kind: &str) -> &'static str {
    let (en, zh) = match kind {
        "referral" => ("referral commission", "推荐佣金"),
        "promoter" => ("promoter commission", "推广佣金"),
        "upstream" => ("upstream promoter", "上级推广佣金"),
        "home-share" => ("home-merchant share", "会员归属分成"),
        "coupon-clearing" => ("coupon clearing", "优惠券清算"),
        "points-clearing" => ("points clearing", "积分清算"),
        "clawback" => ("clawback", "追回"),
        "fixed-fee" => ("fixed fee", "固定费用"),
        "rollover" => ("rollover", "结转"),
        _ => ("line", "明细"),
    };
    if lang == Lang::Zh { zh } else { en }
}

/// A merchant or proposal status label.
pub fn status_label(lang: Lang, status: &str) -> &'static str {
    let (en, zh) = match status {
        "active" => ("active", "正常"),
        "suspended" => ("suspended", "暂停"),
        "removed" => ("removed", "已移除"),
        "open" => ("open", "投票中"),
        "passed" => ("passed", "已通过"),
        "failed" => ("failed", "未通过"),
        _ => ("unknown", "未知"),
    };
    if lang == Lang::Zh { zh } else { en }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_query_beats_the_cookie_beats_accept_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::choose(None, &h), (Lang::En, false));
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("zh-CN,zh;q=0.9,en;q=0.8"));
        assert_eq!(Lang::choose(None, &h), (Lang::Zh, false));
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; plaza_lang=en"));
        assert_eq!(Lang::choose(None, &h), (Lang::En, false));
        assert_eq!(Lang::choose(Some("zh"), &h), (Lang::Zh, true));
        assert_eq!(Lang::choose(Some("fr"), &h), (Lang::En, false));
    }

    #[test]
    fn every_label_has_both_languages() {
        for key in ["overview", "who_owes_whom", "pending", "locked", "on_hold", "paid", "search_hint"] {
            assert_ne!(Lang::En.t(key), key, "{key}");
            assert_ne!(Lang::Zh.t(key), Lang::En.t(key), "{key}");
        }
        assert_eq!(kind_label(Lang::Zh, "sale"), "销售");
        assert_eq!(line_label(Lang::En, "home-share"), "home-merchant share");
    }
}
