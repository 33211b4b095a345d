//! Usage charts drawn on the server as inline SVG: one stacked bar per day, one colour per
//! plan, from the aggregated statistics only (`AdminService::stats`, where a group smaller
//! than `privacy.min_group_size` is already merged into "other" or left out, P10). Presentation
//! attributes only — no `style`, no script — so the console's strict CSP holds.

use std::collections::BTreeMap;
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;
/// Days shown at most (the newest).
pub const MAX_DAYS: usize = 30;

/// Plans in stacking order, with their colours.
const PLANS: [(&str, &str); 4] = [
    ("free", "#8fb3d9"),
    ("pro", "#3a78c2"),
    ("studio", "#1d3f73"),
    ("other", "#b9a36b"),
];

/// Per plan, per day: the value of `field` (`jobs` or `credits`) in the statistics' groups.
pub struct Series {
    pub days: Vec<String>,
    /// (plan, one value per day)
    pub plans: Vec<(&'static str, Vec<u64>)>,
}

/// Reads `field` of every group of `stats` (`{as_of, groups:[{plan, day, jobs, credits}]}`)
/// for the [`MAX_DAYS`] days up to `as_of` (or up to the newest group without it), every day
/// shown, quiet ones too.
pub fn series(stats: &serde_json::Value, field: &str) -> Series {
    let mut by: BTreeMap<(&str, String), u64> = BTreeMap::new();
    let mut newest: Option<String> = None;
    for g in stats["groups"].as_array().into_iter().flatten() {
        let (Some(plan), Some(day)) = (g["plan"].as_str(), g["day"].as_str()) else {
            continue;
        };
        let Some(&(plan, _)) = PLANS.iter().find(|(p, _)| *p == plan) else {
            continue;
        };
        newest = newest.max(Some(day.to_string()));
        *by.entry((plan, day.to_string())).or_default() += g[field].as_u64().unwrap_or(0);
    }
    let last = stats["as_of"]
        .as_str()
        .and_then(|t| t.get(..10))
        .map(str::to_string)
        .or(newest);
    let days = last.map_or_else(Vec::new, |d| days_up_to(&d, MAX_DAYS));
    let plans = PLANS
        .iter()
        .map(|(plan, _)| {
            let values = days
                .iter()
                .map(|d| by.get(&(*plan, d.clone())).copied().unwrap_or(0))
                .collect::<Vec<_>>();
            (*plan, values)
        })
        .filter(|(_, v)| v.iter().any(|&n| n > 0))
        .collect();
    Series { days, plans }
}

/// The `n` days ending on `last` (`YYYY-MM-DD`), oldest first; just `last` if it is no date.
fn days_up_to(last: &str, n: usize) -> Vec<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(end) = time::Date::parse(last, &format) else {
        return vec![last.to_string()];
    };
    let mut days: Vec<String> = std::iter::successors(Some(end), |d| d.previous_day())
        .take(n)
        .filter_map(|d| d.format(&format).ok())
        .collect();
    days.reverse();
    days
}

/// A round upper bound for the axis and its step.
fn scale(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m * 4 >= max {
                let step = step * m;
                return (max.div_ceil(step) * step, step);
            }
        }
        step *= 10;
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart as an `<svg id="{id}">` element; `unit` names what a bar counts.
pub fn stacked_bars(id: &str, title: &str, unit: &str, s: &Series) -> String {
    let mut out = String::new();
    let id = escape(id);
    let _ = write!(
        out,
        r#"<svg id="{id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title" font-family="system-ui, sans-serif" font-size="11"><title id="{id}-title">{}</title>"#,
        escape(title)
    );
    if s.days.is_empty() || s.plans.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">No {} yet (or only groups too small to show).</text></svg>"##,
            WIDTH / 2.0,
            HEIGHT / 2.0,
            escape(unit)
        );
        return out;
    }
    let totals: Vec<u64> = (0..s.days.len())
        .map(|i| s.plans.iter().map(|(_, v)| v[i]).sum())
        .collect();
    let (top, step) = scale(totals.iter().copied().max().unwrap_or(0));
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let y = |v: u64| TOP + plot_h - plot_h * v as f64 / top as f64;
    let mut tick = 0;
    while tick <= top {
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{tick}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(tick) + 4.0,
            y = y(tick)
        );
        tick += step;
    }
    let slot = plot_w / s.days.len() as f64;
    let bar = (slot * 0.7).clamp(1.0, 28.0);
    for (i, day) in s.days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0;
        for (plan, values) in &s.plans {
            let v = values[i];
            if v == 0 {
                continue;
            }
            let colour = PLANS
                .iter()
                .find(|(p, _)| p == plan)
                .map_or("#999", |c| c.1);
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="{colour}"><title>{day} · {plan}: {v} {}</title></rect>"#,
                y(base + v),
                y(base) - y(base + v),
                escape(unit)
            );
            base += v;
        }
        // label every day when they fit, otherwise about eight of them
        let every = s.days.len().div_ceil(8);
        if i % every == 0 || i + 1 == s.days.len() {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
                x + bar / 2.0,
                HEIGHT - BOTTOM + 16.0,
                escape(day.get(5..).unwrap_or(day))
            );
        }
    }
    let mut lx = LEFT;
    for (plan, _) in &s.plans {
        let colour = PLANS
            .iter()
            .find(|(p, _)| p == plan)
            .map_or("#999", |c| c.1);
        let _ = write!(
            out,
            r##"<rect x="{lx}" y="8" width="10" height="10" fill="{colour}"/><text x="{}" y="17" fill="#333">{plan}</text>"##,
            lx + 14.0
        );
        lx += 80.0;
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> serde_json::Value {
        serde_json::json!({"as_of": "2026-12-04T10:00:00Z", "groups": [
            {"plan": "free", "day": "2026-12-01", "members": 5, "jobs": 12, "credits": 30},
            {"plan": "pro", "day": "2026-12-01", "members": 6, "jobs": 8, "credits": 40},
            {"plan": "other", "day": "2026-12-03", "members": 5, "jobs": 3, "credits": 3},
            {"plan": "<evil>", "day": "2026-12-04", "members": 9, "jobs": 99, "credits": 1},
        ]})
    }

    #[test]
    fn series_stack_plans_by_day_and_ignore_unknown_groups() {
        let s = series(&stats(), "jobs");
        assert_eq!(s.days.len(), MAX_DAYS);
        assert_eq!(s.days[0], "2026-11-05");
        assert_eq!(
            &s.days[MAX_DAYS - 4..],
            ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]
        );
        let names: Vec<_> = s.plans.iter().map(|(p, _)| *p).collect();
        assert_eq!(names, ["free", "pro", "other"]);
        assert_eq!(&s.plans[0].1[MAX_DAYS - 4..], [12, 0, 0, 0]);
        assert_eq!(&s.plans[2].1[MAX_DAYS - 4..], [0, 0, 3, 0]);
        assert_eq!(days_up_to("2026-03-01", 2), ["2026-02-28", "2026-03-01"]);
    }

    #[test]
    fn the_chart_is_plain_svg_with_one_rect_per_nonzero_value() {
        let svg = stacked_bars(
            "jobs-chart",
            "Jobs per day",
            "jobs",
            &series(&stats(), "jobs"),
        );
        assert!(svg.starts_with(r#"<svg id="jobs-chart""#) && svg.ends_with("</svg>"));
        // 3 bars' segments + 3 legend swatches
        assert_eq!(svg.matches("<rect").count(), 6);
        assert!(svg.contains("2026-12-01 · free: 12 jobs"));
        assert!(!svg.contains("style=") && !svg.contains("<script") && !svg.contains("evil"));
        let empty = stacked_bars("x", "t", "jobs", &series(&serde_json::json!({}), "jobs"));
        assert!(empty.contains("No jobs yet"));
    }

    #[test]
    fn axes_round_up() {
        assert_eq!(scale(0), (1, 1));
        assert_eq!(scale(7), (8, 2));
        assert_eq!(scale(20), (20, 5));
        assert_eq!(scale(95), (100, 50));
        assert_eq!(scale(1234), (1500, 500));
    }
}
