//! Summaries and the two outputs of `eval`: a text table shaped like score.py's (one line
//! per design, then a `SUMMARY` line, each with the decomposition seconds added) and JSON
//! shaped like `score.py --json` (`{"summary": {...}, "designs": {id: {...}}}`).
//!
//! Invariants: means are over the scored rows only and are `None`/`null` when none was
//! scored; error rows print and serialise their message as score.py does (`{"error": ...}`).

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::score::mean;
use super::{DesignScore, Summary};

/// The summary of `rows` (see [`Summary`]).
pub fn summarize(rows: &[DesignScore]) -> Summary {
    let ok: Vec<&DesignScore> = rows.iter().filter(|r| r.error.is_none()).collect();
    let avg = |f: fn(&DesignScore) -> f64| {
        (!ok.is_empty()).then(|| mean(&ok.iter().map(|r| f(r)).collect::<Vec<_>>()))
    };
    Summary {
        recon_psnr: avg(|r| r.recon_psnr),
        recon_psnr_min: ok.iter().map(|r| r.recon_psnr).reduce(f64::min),
        fg_iou: avg(|r| r.fg_iou),
        fg_l1: avg(|r| r.fg_l1),
        bg_l1: avg(|r| r.bg_l1),
        count_err: avg(|r| r.count_err),
        scored: ok.len(),
        total: rows.len(),
        seconds_mean: avg(|r| r.seconds),
    }
}

/// One line per design (`id recon_psnr=… fg_iou=… fg_l1=… bg_l1=… count_err=N seconds=…`,
/// or `id <error>`), then `SUMMARY …`.
pub fn render_table(rows: &[DesignScore], summary: &Summary) -> String {
    let mut s = String::new();
    for r in rows {
        let _ = write!(s, "{} ", r.id);
        match &r.error {
            Some(e) => s.push_str(e),
            None => {
                let _ = write!(
                    s,
                    "recon_psnr={:.3} fg_iou={:.3} fg_l1={:.3} bg_l1={:.3} count_err={}",
                    r.recon_psnr, r.fg_iou, r.fg_l1, r.bg_l1, r.count_err as u64
                );
            }
        }
        if r.seconds > 0.0 {
            let _ = write!(s, " seconds={:.3}", r.seconds);
            for (stage, secs) in &r.stages {
                let _ = write!(s, " {stage}={secs:.3}");
            }
        }
        s.push('\n');
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "None".to_owned(), |v| format!("{v:.3}"));
    let _ = writeln!(
        s,
        "SUMMARY recon_psnr={} fg_iou={} fg_l1={} bg_l1={} count_err={} recon_psnr_min={} \
         scored={} total={} seconds_mean={}",
        opt(summary.recon_psnr),
        opt(summary.fg_iou),
        opt(summary.fg_l1),
        opt(summary.bg_l1),
        opt(summary.count_err),
        opt(summary.recon_psnr_min),
        summary.scored,
        summary.total,
        opt(summary.seconds_mean),
    );
    s
}

/// `{"summary": {...}, "designs": {id: {...}}}` with score.py's keys plus `seconds`,
/// `seconds_mean` and `stages` (`[{"name", "seconds"}]` in the decomposer's order).
pub fn to_json(rows: &[DesignScore], summary: &Summary) -> Value {
    let mut designs = Map::new();
    for r in rows {
        let stages: Vec<Value> = r
            .stages
            .iter()
            .map(|(name, secs)| json!({"name": name, "seconds": secs}))
            .collect();
        let row = match &r.error {
            Some(e) => json!({"error": e, "seconds": r.seconds, "stages": stages}),
            None => json!({
                "recon_psnr": r.recon_psnr,
                "fg_iou": r.fg_iou,
                "fg_l1": r.fg_l1,
                "bg_l1": r.bg_l1,
                "count_err": r.count_err as u64,
                "gt_layers": r.gt_layers,
                "pred_layers": r.pred_layers,
                "seconds": r.seconds,
                "stages": stages,
            }),
        };
        designs.insert(r.id.clone(), row);
    }
    json!({
        "summary": {
            "recon_psnr": summary.recon_psnr,
            "fg_iou": summary.fg_iou,
            "fg_l1": summary.fg_l1,
            "bg_l1": summary.bg_l1,
            "count_err": summary.count_err,
            "recon_psnr_min": summary.recon_psnr_min,
            "scored": summary.scored,
            "total": summary.total,
            "seconds_mean": summary.seconds_mean,
        },
        "designs": designs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, psnr: f64, count_err: f64) -> DesignScore {
        DesignScore {
            id: id.into(),
            recon_psnr: psnr,
            fg_iou: 0.5,
            fg_l1: 0.25,
            bg_l1: 0.125,
            count_err,
            gt_layers: 3,
            pred_layers: 1,
            seconds: 2.0,
            stages: vec![("segment".into(), 1.5)],
            error: None,
        }
    }

    #[test]
    fn summary_skips_error_rows() {
        let rows = vec![
            row("a", 40.0, 2.0),
            DesignScore::failed("b", "no prediction"),
            row("c", 50.0, 1.0),
        ];
        let s = summarize(&rows);
        assert_eq!(s.recon_psnr, Some(45.0));
        assert_eq!(s.recon_psnr_min, Some(40.0));
        assert_eq!(s.count_err, Some(1.5));
        assert_eq!(s.seconds_mean, Some(2.0));
        assert_eq!((s.scored, s.total), (2, 3));
        let none = summarize(&rows[1..2]);
        assert_eq!((none.recon_psnr, none.recon_psnr_min), (None, None));
    }

    #[test]
    fn table_and_json_shapes() {
        let rows = vec![
            row("a", 40.0, 2.0),
            DesignScore::failed("b", "no prediction"),
        ];
        let s = summarize(&rows);
        let table = render_table(&rows, &s);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(
            lines[0],
            "a recon_psnr=40.000 fg_iou=0.500 fg_l1=0.250 bg_l1=0.125 count_err=2 \
             seconds=2.000 segment=1.500"
        );
        assert_eq!(lines[1], "b no prediction");
        assert!(
            lines[2].starts_with("SUMMARY recon_psnr=40.000 "),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with("scored=1 total=2 seconds_mean=2.000"));

        let v = to_json(&rows, &s);
        assert_eq!(v["summary"]["scored"], 1);
        assert_eq!(v["summary"]["fg_l1"], 0.25);
        assert_eq!(v["designs"]["a"]["count_err"], 2);
        assert_eq!(v["designs"]["a"]["stages"][0]["name"], "segment");
        assert_eq!(v["designs"]["b"]["error"], "no prediction");
        let empty = to_json(&[], &summarize(&[]));
        assert!(empty["summary"]["recon_psnr"].is_null());
    }
}
