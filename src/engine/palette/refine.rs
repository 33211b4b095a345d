//! From simplified hull vertices to the final 8-bit palette: clamp to the RGB cube, round,
//! keep distinct hull vertices, snap onto the image's own flat colours, and merge colours that
//! clamping or snapping left nearly identical. Snapping and merging are our additions to
//! Tan et al.
//!
//! An enclosing hull of anti-aliased artwork overshoots the artwork's colours by the rounding
//! jitter of its edge pixels, and hulls merged below a tetrahedron land on arbitrary points;
//! either way a flat fill then decomposes into a near-but-not-quite pure layer. Each palette
//! colour is therefore replaced, where that costs (almost) nothing, by a frequent colour of
//! the image close to it: the replacement must not raise the sample's projection RMSE by more
//! than [`MAX_RMSE_RISE`] levels, nor push any sampled colour further than
//! [`MAX_OUTSIDE`] levels (or the old worst distance, if larger) outside the palette's hull.
//! The few colours that end up slightly outside are projected and absorbed exactly later.
//!
//! Two colours closer than [`MERGE_DIST`] levels become one (the one whose removal costs the
//! sample's projection RMSE less is dropped): such pairs come from vertices outside the cube
//! clamped onto the same corner and would only split one colour over two layers.
//!
//! Invariant: the result is non-empty (for non-empty input), has no duplicates, only hull
//! vertices, at most as many colours as the input, and is deterministic.

use super::geom::{dist2, V3};
use super::hull::hull_robust;
use super::weights::{Geometry, Sample};

/// Palette colours closer than this (Euclidean levels) are merged.
const MERGE_DIST: f64 = 8.0;

/// The final palette (unordered) for simplified vertices `verts`.
pub(super) fn refine(verts: &[V3], frequent: &[[u8; 3]], sample: &Sample) -> Vec<[u8; 3]> {
    let clamped = hull_vertices(
        verts
            .iter()
            .map(|p| p.map(|c| c.round().clamp(0.0, 255.0) as u8))
            .collect(),
    );
    merge_close(hull_vertices(snap(clamped, frequent, sample)), sample)
}

/// The distinct colours of `q` that are vertices of its hull, ascending.
pub(super) fn hull_vertices(mut q: Vec<[u8; 3]>) -> Vec<[u8; 3]> {
    q.sort_unstable();
    q.dedup();
    if q.is_empty() {
        return q;
    }
    let pts: Vec<V3> = q.iter().map(|&c| v3(c)).collect();
    let mut keep = hull_robust(&pts, 0.0).vertices();
    keep.sort_unstable();
    keep.iter().map(|&i| q[i]).collect()
}

/// Merges the closest pair below [`MERGE_DIST`] until none is left.
fn merge_close(mut pal: Vec<[u8; 3]>, sample: &Sample) -> Vec<[u8; 3]> {
    loop {
        let mut close: Option<(f64, usize, usize)> = None;
        for i in 0..pal.len() {
            for j in i + 1..pal.len() {
                let d = dist2(v3(pal[i]), v3(pal[j]));
                if d < MERGE_DIST * MERGE_DIST && close.is_none_or(|c| d < c.0) {
                    close = Some((d, i, j));
                }
            }
        }
        let Some((_, i, j)) = close else {
            return pal;
        };
        let without = |x: usize| -> Vec<[u8; 3]> {
            pal.iter()
                .enumerate()
                .filter(|&(y, _)| y != x)
                .map(|(_, &c)| c)
                .collect()
        };
        let (a, b) = (without(i), without(j));
        pal = if score(&a, sample).0 <= score(&b, sample).0 {
            a
        } else {
            b
        };
        pal = hull_vertices(pal);
    }
}

/// How far (Euclidean levels) a palette colour may move to snap.
const SNAP_RADIUS: f64 = 64.0;
const MAX_RMSE_RISE: f64 = 0.1;
const MAX_OUTSIDE: f64 = 2.5;

fn v3(c: [u8; 3]) -> V3 {
    c.map(|v| v as f64)
}

/// Per-channel RMSE and worst Euclidean distance of `sample` from the hull of `pal`.
fn score(pal: &[[u8; 3]], sample: &Sample) -> (f64, f64) {
    let pts: Vec<V3> = pal.iter().map(|&c| v3(c)).collect();
    let g = Geometry::new(&pts, 0, 0.0);
    let (mut num, mut den, mut worst) = (0.0, 0.0, 0.0f64);
    for (p, w) in sample.pts.iter().zip(&sample.w) {
        let d2 = g.locate(*p).d2;
        num += w * d2;
        den += w;
        worst = worst.max(d2);
    }
    let rmse = if den > 0.0 {
        (num / (3.0 * den)).sqrt()
    } else {
        0.0
    };
    (rmse, worst.sqrt())
}

/// Snaps each colour of `pal` (in order) to the best acceptable colour of `frequent`.
fn snap(mut pal: Vec<[u8; 3]>, frequent: &[[u8; 3]], sample: &Sample) -> Vec<[u8; 3]> {
    if pal.len() < 2 || frequent.is_empty() {
        return pal;
    }
    let (mut rmse, mut worst) = score(&pal, sample);
    for i in 0..pal.len() {
        let mut best: Option<(f64, f64, [u8; 3])> = None;
        for &c in frequent {
            if pal.contains(&c) || dist2(v3(c), v3(pal[i])) > SNAP_RADIUS * SNAP_RADIUS {
                continue;
            }
            let mut cand = pal.clone();
            cand[i] = c;
            let (r, w) = score(&cand, sample);
            if r <= rmse + MAX_RMSE_RISE
                && w <= worst.max(MAX_OUTSIDE)
                && best.is_none_or(|b| r < b.0)
            {
                best = Some((r, w, c));
            }
        }
        if let Some((r, w, c)) = best {
            pal[i] = c;
            rmse = r;
            worst = w;
        }
    }
    pal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicates_merge_and_clamping_rounds() {
        let sample = Sample {
            pts: vec![
                [0.0, 0.0, 0.0],
                [255.0, 255.0, 255.0],
                [255.0, 0.0, 0.0],
                [0.0, 0.0, 255.0],
            ],
            w: vec![1.0; 4],
        };
        let verts = [
            [-30.0, -2.0, 1.0],
            [1.4, -40.0, -9.0],
            [300.0, 280.0, 255.2],
            [255.0, 0.0, 0.0],
            [0.0, 0.0, 255.0],
        ];
        let pal = refine(&verts, &[], &sample);
        // (0,0,1) and (1,0,0) merge; with equal cost the first in order goes.
        assert_eq!(
            pal,
            vec![[0, 0, 255], [1, 0, 0], [255, 0, 0], [255, 255, 255]]
        );
    }

    #[test]
    fn snaps_overshooting_corners_but_not_needed_ones() {
        // Colours: a line from A to B with jitter, plus a third colour C far away.
        let (a, b, c) = ([20u8, 30, 40], [220u8, 200, 180], [200u8, 20, 30]);
        let mut pts = Vec::new();
        let mut w = Vec::new();
        for t in 0..=20 {
            let t = t as f64 / 20.0;
            pts.push([0, 1, 2].map(|i| (a[i] as f64 * (1.0 - t) + b[i] as f64 * t).round()));
            w.push(if t == 0.0 || t == 1.0 { 1000.0 } else { 1.0 });
        }
        pts.push(v3(c));
        w.push(500.0);
        let sample = Sample { pts, w };
        let pal = vec![[10, 22, 33], [228, 206, 186], [200, 20, 30]];
        let frequent = [a, b, c, [120, 115, 110]];
        let out = snap(pal, &frequent, &sample);
        assert_eq!(out, vec![a, b, c]);
        // A colour whose replacement would leave pixels far outside stays put.
        let pal = vec![a, b, [200, 20, 30]];
        let out = snap(pal.clone(), &[[170, 60, 60]], &sample);
        assert_eq!(out, pal);
    }
}
