//! Progressive simplification of the colour hull down to a small palette (Tan, Lien, Gingold
//! 2016, §3, after Sander et al.'s progressive hulls).
//!
//! While the hull has more vertices than its dimension needs, the edge whose collapse adds
//! the least volume (area, for a flat hull) is collapsed. The new vertex solves the small LP
//! "minimise added volume subject to lying on or outside every face plane around the edge",
//! by enumerating the vertices of the feasible region (intersections of three face planes);
//! flat hulls extend the two neighbouring polygon edges to their intersection. The hull is
//! then recomputed, so a collapse may drop more than one vertex. Below that (a simplex, or if
//! no collapse is feasible) two vertices are merged where the projection error of a colour
//! sample grows least: that step gives up enclosure, which later stages absorb exactly.
//!
//! Invariants: every enclosing step keeps the previous hull inside the new one (up to
//! ~1e-7 colour levels of floating-point tolerance); results are deterministic — edge costs
//! are cached by vertex ids and the exact set of faces that determine them, never by
//! iteration order of a hash map.

use std::collections::HashMap;

use super::geom::{add, cross, dot, norm2, scale, solve3, sub, V3};
use super::hull::{hull_robust, Hull};
use super::weights::{Geometry, Sample};

/// Tolerance (colour levels) for hulls of floating-point vertices.
pub(super) const FLOAT_EPS: f64 = 1e-9;
const FEASIBLE_TOL: f64 = 1e-7;
/// Collapse vertices this far outside the RGB cube are not useful palette colours.
const MAX_COORD: f64 = 1e5;

type EdgeKey = (u32, u32);
type CostCache = HashMap<EdgeKey, (Vec<[u32; 3]>, Option<(f64, V3)>)>;

/// Palettes from `start` (the hull vertices) down to `min_k` vertices, in decreasing size;
/// every size reached is recorded once (a recomputed hull may skip sizes).
pub(super) fn simplify(start: Vec<V3>, min_k: usize, sample: &Sample) -> Vec<Vec<V3>> {
    let mut cur = start;
    let mut ids: Vec<u32> = (0..cur.len() as u32).collect();
    let mut next_id = cur.len() as u32;
    let mut cache = CostCache::new();
    let mut out: Vec<Vec<V3>> = Vec::new();
    loop {
        if cur.is_empty() {
            break;
        }
        let h = hull_robust(&cur, FLOAT_EPS);
        let mut keep = h.vertices();
        keep.sort_unstable();
        let mut map = vec![usize::MAX; cur.len()];
        for (new, &old) in keep.iter().enumerate() {
            map[old] = new;
        }
        let h = h.remap(&map);
        cur = keep.iter().map(|&i| cur[i]).collect();
        ids = keep.iter().map(|&i| ids[i]).collect();
        if out.last().is_none_or(|l| l.len() != cur.len()) {
            out.push(cur.clone());
        }
        if cur.len() <= min_k.max(1) {
            break;
        }
        let collapse = match &h {
            Hull::Solid { faces, .. } if cur.len() > 4 => {
                collapse_3d(&cur, &ids, faces, &mut cache)
            }
            Hull::Polygon(ord) if cur.len() > 3 => collapse_2d(&cur, ord),
            _ => None,
        };
        match collapse {
            Some((a, b, p)) => {
                let (a, b) = (a.min(b), a.max(b));
                cur.remove(b);
                cur.remove(a);
                ids.remove(b);
                ids.remove(a);
                cur.push(p);
                ids.push(next_id);
                next_id += 1;
            }
            None => {
                let (a, b, p) = best_merge(&cur, sample);
                let (a, b) = (a.min(b), a.max(b));
                cur.remove(b);
                cur.remove(a);
                ids.remove(b);
                ids.remove(a);
                cur.push(p);
                ids.push(next_id);
                next_id += 1;
            }
        }
    }
    out
}

fn canon(f: [u32; 3]) -> [u32; 3] {
    let r = (0..3).min_by_key(|&i| f[i]).unwrap_or(0);
    [f[r], f[(r + 1) % 3], f[(r + 2) % 3]]
}

/// The edge of a solid hull whose enclosing collapse adds the least volume: `(a, b, new)`.
fn collapse_3d(
    cur: &[V3],
    ids: &[u32],
    faces: &[[usize; 3]],
    cache: &mut CostCache,
) -> Option<(usize, usize, V3)> {
    let mut incident: Vec<Vec<usize>> = vec![Vec::new(); cur.len()];
    for (fi, f) in faces.iter().enumerate() {
        for &v in f {
            incident[v].push(fi);
        }
    }
    let mut edges: Vec<(usize, usize)> = faces
        .iter()
        .flat_map(|f| (0..3).map(move |s| (f[s], f[(s + 1) % 3])))
        .filter(|&(a, b)| ids[a] < ids[b])
        .collect();
    edges.sort_by_key(|&(a, b)| (ids[a], ids[b]));
    edges.dedup();
    let mut best: Option<(f64, usize, usize, V3)> = None;
    for (a, b) in edges {
        let mut around: Vec<usize> = incident[a].iter().chain(&incident[b]).copied().collect();
        around.sort_unstable();
        around.dedup();
        let mut sig: Vec<[u32; 3]> = around
            .iter()
            .map(|&f| canon(faces[f].map(|v| ids[v])))
            .collect();
        sig.sort_unstable();
        let key = (ids[a], ids[b]);
        let cost = match cache.get(&key) {
            Some((s, c)) if *s == sig => *c,
            _ => {
                let c = lp_collapse(cur, faces, &around);
                cache.insert(key, (sig, c));
                c
            }
        };
        if let Some((vol, p)) = cost {
            if best.as_ref().is_none_or(|bst| vol < bst.0) {
                best = Some((vol, a, b, p));
            }
        }
    }
    best.map(|(_, a, b, p)| (a, b, p))
}

/// Minimises the volume added by a vertex `p` above every plane of `around`: `(volume, p)`.
fn lp_collapse(cur: &[V3], faces: &[[usize; 3]], around: &[usize]) -> Option<(f64, V3)> {
    let mut obj = [0.0; 3];
    let mut obj0 = 0.0;
    // Unit planes (n̂, d̂) with n̂·p ≥ d̂ meaning "on or outside"; duplicates removed.
    let mut planes: Vec<(V3, f64)> = Vec::new();
    for &f in around {
        let [a, b, c] = faces[f].map(|v| cur[v]);
        let n = cross(sub(b, a), sub(c, a));
        let d = dot(n, a);
        obj = add(obj, n);
        obj0 += d;
        let len = norm2(n).sqrt();
        if len == 0.0 {
            continue;
        }
        let (u, e) = (scale(n, 1.0 / len), d / len);
        if !planes
            .iter()
            .any(|(q, g)| norm2(sub(*q, u)) < 1e-18 && (g - e).abs() < 1e-9)
        {
            planes.push((u, e));
        }
    }
    let mut best: Option<(f64, V3)> = None;
    let n = planes.len();
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                let rows = [planes[i].0, planes[j].0, planes[k].0];
                let Some(p) = solve3(rows, [planes[i].1, planes[j].1, planes[k].1]) else {
                    continue;
                };
                if p.iter().any(|c| c.abs() > MAX_COORD) {
                    continue;
                }
                if planes.iter().any(|(u, e)| dot(*u, p) - e < -FEASIBLE_TOL) {
                    continue;
                }
                let val = (dot(obj, p) - obj0) / 6.0;
                if best.is_none_or(|b| val < b.0) {
                    best = Some((val, p));
                }
            }
        }
    }
    best
}

/// The edge of a convex polygon (counter-clockwise `ord`) whose collapse — extending its two
/// neighbouring edges to their intersection — adds the least area: `(a, b, new)`.
fn collapse_2d(cur: &[V3], ord: &[usize]) -> Option<(usize, usize, V3)> {
    let m = ord.len();
    let mut best: Option<(f64, usize, usize, V3)> = None;
    for i in 0..m {
        let (z, a, b, c) = (
            cur[ord[(i + m - 1) % m]],
            cur[ord[i]],
            cur[ord[(i + 1) % m]],
            cur[ord[(i + 2) % m]],
        );
        let (d1, d2, ab) = (sub(a, z), sub(b, c), sub(b, a));
        // a + s·d1 = b + t·d2, least squares in the plane.
        let (g11, g12, g22) = (dot(d1, d1), -dot(d1, d2), dot(d2, d2));
        let det = g11 * g22 - g12 * g12;
        if det <= 1e-12 * g11 * g22 || det.is_nan() {
            continue;
        }
        let (r1, r2) = (dot(d1, ab), -dot(d2, ab));
        let s = (r1 * g22 - g12 * r2) / det;
        let t = (g11 * r2 - g12 * r1) / det;
        if s < 0.0 || t < 0.0 {
            continue;
        }
        let p = add(a, scale(d1, s));
        if p.iter().any(|c| c.abs() > MAX_COORD) {
            continue;
        }
        let area = norm2(cross(sub(p, a), ab)).sqrt() / 2.0;
        if best.is_none_or(|bst| area < bst.0) {
            best = Some((area, ord[i], ord[(i + 1) % m], p));
        }
    }
    best.map(|(_, a, b, p)| (a, b, p))
}

/// The merge of two vertices (into either one or their midpoint) that keeps the sample's
/// projection error lowest: `(a, b, new)`. Large sets only consider the closest pair.
fn best_merge(cur: &[V3], sample: &Sample) -> (usize, usize, V3) {
    let n = cur.len();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    if n <= 12 {
        for i in 0..n {
            for j in i + 1..n {
                pairs.push((i, j));
            }
        }
    } else {
        let mut best = (f64::INFINITY, 0, 1);
        for i in 0..n {
            for j in i + 1..n {
                let d = norm2(sub(cur[i], cur[j]));
                if d < best.0 {
                    best = (d, i, j);
                }
            }
        }
        pairs.push((best.1, best.2));
    }
    let mut best: Option<(f64, usize, usize, V3)> = None;
    for (i, j) in pairs {
        let rest: Vec<V3> = (0..n)
            .filter(|&x| x != i && x != j)
            .map(|x| cur[x])
            .collect();
        for p in [cur[i], cur[j], scale(add(cur[i], cur[j]), 0.5)] {
            let mut cand = rest.clone();
            cand.push(p);
            let err = sample.rmse(&Geometry::new(&cand, 0, FLOAT_EPS));
            if best.is_none_or(|b| err < b.0) {
                best = Some((err, i, j, p));
            }
        }
    }
    let (_, i, j, p) = best.unwrap_or((0.0, 0, 1.min(n - 1), cur[0]));
    (i, j, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f64) / (1u64 << 31) as f64
    }

    fn assert_encloses(pal: &[V3], pts: &[V3]) {
        let g = Geometry::new(pal, 0, FLOAT_EPS);
        for p in pts {
            let d2 = g.locate(*p).d2;
            assert!(
                d2 <= 1e-12,
                "{p:?} is {} outside a {}-palette",
                d2.sqrt(),
                pal.len()
            );
        }
    }

    fn uniform(pts: &[V3]) -> Sample {
        Sample {
            pts: pts.to_vec(),
            w: vec![1.0; pts.len()],
        }
    }

    #[test]
    fn solid_simplification_never_excludes_a_colour() {
        let mut s = 11u64;
        // Colours around four "design" colours plus noise: a typical hull of many vertices.
        let centres = [
            [250.0, 250.0, 245.0],
            [20.0, 40.0, 160.0],
            [220.0, 30.0, 40.0],
            [30.0, 180.0, 60.0],
        ];
        let mut pts = Vec::new();
        for i in 0..2000 {
            let c = centres[i % 4];
            let d = centres[(i / 4) % 4];
            let t = lcg(&mut s);
            pts.push([0, 1, 2].map(|j| {
                (c[j] * (1.0 - t) + d[j] * t + (lcg(&mut s) - 0.5) * 12.0)
                    .round()
                    .clamp(0.0, 255.0)
            }));
        }
        let Some(h) = super::super::hull::hull(&pts, 0.0) else {
            panic!()
        };
        let start: Vec<V3> = h.vertices().iter().map(|&i| pts[i]).collect();
        assert!(start.len() > 20, "{}", start.len());
        let recs = simplify(start.clone(), 2, &uniform(&pts));
        assert_eq!(recs[0].len(), start.len());
        assert_eq!(recs.last().map(|r| r.len()), Some(2));
        let mut last = usize::MAX;
        for r in &recs {
            assert!(r.len() < last);
            last = r.len();
            if r.len() >= 4 {
                assert_encloses(r, &pts);
            }
        }
        // The 4-vertex palette, clamped to the cube, sits near the four design colours.
        let four = recs
            .iter()
            .find(|r| r.len() == 4)
            .expect("a 4-colour palette");
        for c in centres {
            let near = four
                .iter()
                .map(|p| norm2(sub(p.map(|v| v.clamp(0.0, 255.0)), c)).sqrt())
                .fold(f64::INFINITY, f64::min);
            assert!(near < 40.0, "{c:?} far from {four:?}");
        }
    }

    #[test]
    fn flat_simplification_encloses_and_stays_flat() {
        let mut s = 5u64;
        let mut pts = Vec::new();
        for _ in 0..500 {
            let (r, g) = ((lcg(&mut s) * 120.0).round(), (lcg(&mut s) * 120.0).round());
            pts.push([r + 20.0, g + 20.0, 300.0 - r - g]);
        }
        let Some(h @ Hull::Polygon(_)) = super::super::hull::hull(&pts, 0.0) else {
            panic!()
        };
        let start: Vec<V3> = h.vertices().iter().map(|&i| pts[i]).collect();
        let recs = simplify(start, 3, &uniform(&pts));
        let tri = recs.last().expect("records");
        assert_eq!(tri.len(), 3);
        for r in &recs {
            assert_encloses(r, &pts);
            for p in r {
                assert!(
                    (p[0] + p[1] + p[2] - 340.0).abs() < 1e-6,
                    "{p:?} left the plane"
                );
            }
        }
    }
}
