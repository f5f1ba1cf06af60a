//! The who-owes-whom picture: a statement's payment plan as an SVG graph drawn on the server.
//! Parties sit on a circle; each transfer is one curved arrow from payer to payee whose width
//! grows with the amount and which carries the amount as text. Readable without JavaScript;
//! each edge is a `<g class="edge">` with `data-payer`, `data-payee` and `data-amount`
//! (cents as `12.34`) so tests and scripts can read it back.

use maud::{html, Markup};

use super::format::money;

/// A party on the picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphNode {
    /// What people read.
    pub name: String,
    /// What the hover shows (the key or promoter id).
    pub detail: String,
    /// Where clicking it goes.
    pub href: String,
    /// Net position in cents (negative: pays).
    pub net: i128,
}

/// One transfer: indexes into the node list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphEdge {
    pub payer: usize,
    pub payee: usize,
    pub amount: u128,
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 480.0;
const NODE_RADIUS: f64 = 16.0;
const STROKE_MIN: f64 = 2.0;
const STROKE_MAX: f64 = 14.0;

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The SVG for `edges` between `nodes`. `title` is the picture's accessible name.
pub fn render(title: &str, nodes: &[GraphNode], edges: &[GraphEdge], currency: &str) -> Markup {
    let n = nodes.len().max(1) as f64;
    let (cx, cy) = (WIDTH / 2.0, HEIGHT / 2.0);
    let radius = (HEIGHT / 2.0 - 70.0).min(WIDTH / 2.0 - 200.0);
    // Start at the top and go clockwise.
    let position = |i: usize| {
        let angle = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n;
        (cx + radius * angle.cos(), cy + radius * angle.sin(), angle)
    };
    let max_amount = edges.iter().map(|e| e.amount).max().unwrap_or(1).max(1) as f64;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="owes" role="img" aria-label=(title)
            viewBox={"0 0 " (WIDTH) " " (HEIGHT)} width="100%" preserveAspectRatio="xMidYMid meet" {
            title { (title) }
            // One arrowhead per edge, sized in user units: heads stay readable on thin arrows
            // and do not balloon on thick ones.
            defs {
                @for (i, edge) in edges.iter().enumerate() {
                    @let head = arrow_head(edge.amount, max_amount);
                    marker id={"arrow-" (i)} viewBox="0 0 10 10" refX="1" refY="5" markerUnits="userSpaceOnUse"
                        markerWidth=(head) markerHeight=(head) orient="auto" {
                        path d="M 0 0 L 10 5 L 0 10 z" fill="#2f5d8a" {}
                    }
                }
            }
            @for (i, edge) in edges.iter().enumerate() {
                @if let (Some(payer), Some(payee)) = (nodes.get(edge.payer), nodes.get(edge.payee)) {
                    @let (x1, y1, _) = position(edge.payer);
                    @let (x2, y2, _) = position(edge.payee);
                    @let width = round1(STROKE_MIN + (STROKE_MAX - STROKE_MIN) * edge.amount as f64 / max_amount);
                    // A quadratic curve bending to the right of the direction of travel, so
                    // transfers in opposite directions between two parties do not overlap.
                    @let (dx, dy) = (x2 - x1, y2 - y1);
                    @let length = (dx * dx + dy * dy).sqrt().max(1.0);
                    @let bend = length * 0.18;
                    @let (qx, qy) = ((x1 + x2) / 2.0 - dy / length * bend, (y1 + y2) / 2.0 + dx / length * bend);
                    // End on the circles' rims, leaving room for the arrowhead.
                    @let (sx, sy) = toward(x1, y1, qx, qy, NODE_RADIUS + 2.0);
                    @let (ex, ey) = toward(x2, y2, qx, qy, NODE_RADIUS + 2.0 + arrow_head(edge.amount, max_amount));
                    // The label at t = 0.4 of the curve, nearer the payer, so labels of crossing arrows part.
                    @let (lx, ly) = (0.36 * x1 + 0.48 * qx + 0.16 * x2, 0.36 * y1 + 0.48 * qy + 0.16 * y2);
                    @let amount = money(edge.amount, currency);
                    g class="edge" data-payer=(payer.name) data-payee=(payee.name) data-amount=(crate::json::cents(edge.amount)) {
                        title { (payer.name) " → " (payee.name) ": " (amount) }
                        path d={"M " (round1(sx)) " " (round1(sy)) " Q " (round1(qx)) " " (round1(qy)) " " (round1(ex)) " " (round1(ey))}
                            fill="none" stroke="#2f5d8a" stroke-opacity="0.75" stroke-width=(width) marker-end={"url(#arrow-" (i) ")"} {}
                        text class="amount" x=(round1(lx)) y=(round1(ly)) text-anchor="middle" dominant-baseline="middle" { (amount) }
                    }
                }
            }
            @for (i, node) in nodes.iter().enumerate() {
                @let (x, y, angle) = position(i);
                @let (tx, ty) = (x + (NODE_RADIUS + 8.0) * angle.cos(), y + (NODE_RADIUS + 8.0) * angle.sin());
                @let anchor = if angle.cos() > 0.3 { "start" } else if angle.cos() < -0.3 { "end" } else { "middle" };
                @let baseline = if angle.sin() > 0.5 { "hanging" } else if angle.sin() < -0.5 { "auto" } else { "middle" };
                @let fill = if node.net < 0 { "#c8553d" } else if node.net > 0 { "#3a7d44" } else { "#888888" };
                a class="party" href=(node.href) {
                    title { (node.name) " — " (node.detail) }
                    circle cx=(round1(x)) cy=(round1(y)) r=(NODE_RADIUS) fill=(fill) {}
                    text class="name" x=(round1(tx)) y=(round1(ty)) text-anchor=(anchor) dominant-baseline=(baseline) { (node.name) }
                }
            }
        }
    }
}

/// The arrowhead's length in user units for a stroke of `amount`.
fn arrow_head(amount: u128, max_amount: f64) -> f64 {
    round1(10.0 + 8.0 * amount as f64 / max_amount)
}

/// The point `distance` from (x, y) toward (tx, ty).
fn toward(x: f64, y: f64, tx: f64, ty: f64, distance: f64) -> (f64, f64) {
    let (dx, dy) = (tx - x, ty - y);
    let length = (dx * dx + dy * dy).sqrt().max(1.0);
    (x + dx / length * distance, y + dy / length * distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, net: i128) -> GraphNode {
        GraphNode { name: name.into(), detail: format!("key of {name}"), href: format!("/m/{name}"), net }
    }

    #[test]
    fn one_edge_per_transfer_with_its_amount_and_width_by_amount() {
        let nodes = vec![node("Hot Pot Palace", -3_000), node("Gym <Fit>", 2_000), node("Cinema", 1_000)];
        let edges = vec![GraphEdge { payer: 0, payee: 1, amount: 2_000 }, GraphEdge { payer: 0, payee: 2, amount: 1_000 }];
        let svg = render("Who owes whom", &nodes, &edges, "CNY").into_string();
        assert_eq!(svg.matches("<g class=\"edge\"").count(), 2);
        assert!(svg.contains("data-amount=\"20.00\""), "{svg}");
        assert!(svg.contains("data-amount=\"10.00\""));
        assert!(svg.contains(">20.00 CNY</text>"));
        // Names are escaped, shown as text, and the key only in the hover title.
        assert!(svg.contains("Gym &lt;Fit&gt;"));
        assert!(!svg.contains("Gym <Fit>"));
        assert!(svg.contains("<title>Cinema — key of Cinema</title>"));
        // The larger transfer is drawn wider.
        assert!(svg.contains("stroke-width=\"14\""), "{svg}");
        assert!(svg.contains("stroke-width=\"8\""), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3);
    }

    #[test]
    fn no_transfers_draws_only_the_parties() {
        let svg = render("t", &[node("A", 0)], &[], "CNY").into_string();
        assert_eq!(svg.matches("class=\"edge\"").count(), 0);
        assert!(svg.starts_with("<svg"));
    }
}
