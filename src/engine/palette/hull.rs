//! Convex hulls in RGB space: quickhull in 3D, with the lower-dimensional cases (one colour,
//! collinear colours, coplanar colours) reported as such rather than as a broken polyhedron.
//!
//! Invariants: with `eps = 0` and integer coordinates up to a few thousand every predicate is
//! evaluated exactly in `f64` (products stay below 2^53), so the hull of an image's colours
//! encloses every colour exactly. With `eps > 0` (floating-point vertices), points within
//! `eps` of a face plane count as inside. Faces are triangles oriented outward
//! (counter-clockwise seen from outside); results depend only on the input order.

use std::collections::HashMap;

use super::geom::{cross, dist2, dot, norm2, sub, V3};

/// The convex hull of a point set, by affine dimension. Indices refer to the input slice.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Hull {
    Point(usize),
    Segment(usize, usize),
    /// Vertices in counter-clockwise order around the plane's normal.
    Polygon(Vec<usize>),
    /// Outward-oriented triangles and the sorted list of the vertices they use.
    Solid {
        verts: Vec<usize>,
        faces: Vec<[usize; 3]>,
    },
}

impl Hull {
    /// The extreme points (hull vertices).
    pub(super) fn vertices(&self) -> Vec<usize> {
        match self {
            Hull::Point(i) => vec![*i],
            Hull::Segment(a, b) => vec![*a, *b],
            Hull::Polygon(v) => v.clone(),
            Hull::Solid { verts, .. } => verts.clone(),
        }
    }

    /// The same hull with every index `i` replaced by `map[i]`.
    pub(super) fn remap(&self, map: &[usize]) -> Hull {
        match self {
            Hull::Point(i) => Hull::Point(map[*i]),
            Hull::Segment(a, b) => Hull::Segment(map[*a], map[*b]),
            Hull::Polygon(v) => Hull::Polygon(v.iter().map(|&i| map[i]).collect()),
            Hull::Solid { verts, faces } => Hull::Solid {
                verts: verts.iter().map(|&i| map[i]).collect(),
                faces: faces.iter().map(|f| f.map(|i| map[i])).collect(),
            },
        }
    }
}

/// [`hull`] for floating-point input that cannot fail: retries with a coarser tolerance and,
/// as a last resort, reports the first point alone. `pts` must not be empty.
pub(super) fn hull_robust(pts: &[V3], eps: f64) -> Hull {
    let mut e = eps;
    for _ in 0..4 {
        if let Some(h) = hull(pts, e) {
            return h;
        }
        e = if e == 0.0 { 1e-9 } else { e * 1e3 };
    }
    Hull::Point(0)
}

fn argmax(n: usize, f: impl Fn(usize) -> f64) -> usize {
    let mut best = 0;
    let mut bv = f64::NEG_INFINITY;
    for i in 0..n {
        let v = f(i);
        if v > bv {
            bv = v;
            best = i;
        }
    }
    best
}

/// The convex hull of `pts`; `None` for an empty set or when floating-point noise broke the
/// horizon of the 3D construction (only possible with `eps > 0`).
pub(super) fn hull(pts: &[V3], eps: f64) -> Option<Hull> {
    if pts.is_empty() {
        return None;
    }
    let n = pts.len();
    let i0 = (0..n).min_by(|&a, &b| {
        pts[a]
            .partial_cmp(&pts[b])
            .unwrap_or(std::cmp::Ordering::Equal)
    })?;
    let p0 = pts[i0];
    let i1 = argmax(n, |i| dist2(pts[i], p0));
    let d01 = dist2(pts[i1], p0);
    if d01 == 0.0 || d01.sqrt() <= eps {
        return Some(Hull::Point(i0));
    }
    let e1 = sub(pts[i1], p0);
    let i2 = argmax(n, |i| norm2(cross(e1, sub(pts[i], p0))));
    let c2 = norm2(cross(e1, sub(pts[i2], p0)));
    if c2 == 0.0 || (c2 / d01).sqrt() <= eps {
        let t = |i: usize| dot(sub(pts[i], p0), e1);
        let lo = argmax(n, |i| -t(i));
        let hi = argmax(n, t);
        return Some(Hull::Segment(lo, hi));
    }
    let nrm = cross(e1, sub(pts[i2], p0));
    let i3 = argmax(n, |i| dot(nrm, sub(pts[i], p0)).abs());
    let h3 = dot(nrm, sub(pts[i3], p0));
    if h3 == 0.0 || h3.abs() / c2.sqrt() <= eps {
        return Some(Hull::Polygon(polygon(pts, p0, nrm, e1, eps)));
    }
    solid(pts, [i0, i1, i2, i3], eps)
}

/// Andrew's monotone chain in the plane through `p0` with normal `nrm`; orientation tests are
/// done in 3D (`nrm · (b-a)×(c-a)`) so they stay exact for integer input.
fn polygon(pts: &[V3], p0: V3, nrm: V3, e1: V3, eps: f64) -> Vec<usize> {
    let e2 = cross(nrm, e1);
    let key = |i: usize| {
        let r = sub(pts[i], p0);
        (dot(r, e1), dot(r, e2))
    };
    let mut order: Vec<usize> = (0..pts.len()).collect();
    order.sort_by(|&a, &b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    order.dedup_by(|a, b| pts[*a] == pts[*b]);
    let nn = norm2(nrm).sqrt();
    let left = |a: usize, b: usize, c: usize| {
        let o = dot(nrm, cross(sub(pts[b], pts[a]), sub(pts[c], pts[a])));
        o > eps * nn * dist2(pts[b], pts[a]).sqrt()
    };
    let mut chain: Vec<usize> = Vec::with_capacity(order.len() + 1);
    for pass in 0..2 {
        let start = chain.len();
        let seq: Box<dyn Iterator<Item = &usize>> = if pass == 0 {
            Box::new(order.iter())
        } else {
            Box::new(order.iter().rev())
        };
        for &i in seq {
            while chain.len() >= start + 2
                && !left(chain[chain.len() - 2], chain[chain.len() - 1], i)
            {
                chain.pop();
            }
            chain.push(i);
        }
        chain.pop();
    }
    chain
}

struct Face {
    v: [usize; 3],
    n: V3,
    d: f64,
    tol: f64,
    nb: [usize; 3],
    out: Vec<usize>,
    alive: bool,
}

impl Face {
    fn new(pts: &[V3], v: [usize; 3], eps: f64) -> Face {
        let n = cross(sub(pts[v[1]], pts[v[0]]), sub(pts[v[2]], pts[v[0]]));
        Face {
            v,
            n,
            d: dot(n, pts[v[0]]),
            tol: eps * norm2(n).sqrt(),
            nb: [usize::MAX; 3],
            out: Vec::new(),
            alive: true,
        }
    }

    /// Signed height of `p` above the face plane, scaled by twice the face area.
    fn height(&self, p: V3) -> f64 {
        dot(self.n, p) - self.d
    }

    fn slot_of_edge(&self, a: usize, b: usize) -> Option<usize> {
        (0..3).find(|&s| self.v[s] == a && self.v[(s + 1) % 3] == b)
    }
}

fn solid(pts: &[V3], init: [usize; 4], eps: f64) -> Option<Hull> {
    let [a, b, c, apex] = init;
    let base = Face::new(pts, [a, b, c], eps);
    let (a, b, c) = if base.height(pts[apex]) > 0.0 {
        (a, c, b)
    } else {
        (a, b, c)
    };
    let mut faces = vec![
        Face::new(pts, [a, b, c], eps),
        Face::new(pts, [b, a, apex], eps),
        Face::new(pts, [c, b, apex], eps),
        Face::new(pts, [a, c, apex], eps),
    ];
    let mut edges: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
    for (fi, f) in faces.iter().enumerate() {
        for s in 0..3 {
            edges.insert((f.v[s], f.v[(s + 1) % 3]), (fi, s));
        }
    }
    for f in faces.iter_mut() {
        for s in 0..3 {
            let (x, y) = (f.v[s], f.v[(s + 1) % 3]);
            f.nb[s] = edges.get(&(y, x))?.0;
        }
    }
    for (i, &p) in pts.iter().enumerate() {
        if init.contains(&i) {
            continue;
        }
        if let Some(f) = faces.iter_mut().find(|f| f.height(p) > f.tol) {
            f.out.push(i);
        }
    }
    let mut stack: Vec<usize> = (0..4).filter(|&f| !faces[f].out.is_empty()).collect();
    // Per face: (iteration, visible?) marks of the current visibility search.
    let mut mark: Vec<(u32, bool)> = vec![(0, false); faces.len()];
    let mut iter = 0u32;
    while let Some(fi) = stack.pop() {
        if !faces[fi].alive || faces[fi].out.is_empty() {
            continue;
        }
        iter += 1;
        let f = &faces[fi];
        let p = *f.out.iter().max_by(|&&x, &&y| {
            f.height(pts[x])
                .partial_cmp(&f.height(pts[y]))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(y.cmp(&x))
        })?;
        let pp = pts[p];
        mark.resize(faces.len(), (0, false));
        mark[fi] = (iter, true);
        let mut visible = vec![fi];
        let mut horizon: Vec<(usize, usize)> = Vec::new();
        let mut q = 0;
        while q < visible.len() {
            let vf = visible[q];
            q += 1;
            for s in 0..3 {
                let g = faces[vf].nb[s];
                let seen = mark[g].0 == iter;
                let vis = if seen {
                    mark[g].1
                } else {
                    let v = faces[g].height(pp) > faces[g].tol;
                    mark[g] = (iter, v);
                    if v {
                        visible.push(g);
                    }
                    v
                };
                if !vis {
                    horizon.push((vf, s));
                }
            }
        }
        if horizon.is_empty() {
            return None;
        }
        let first_new = faces.len();
        let mut start: HashMap<usize, usize> = HashMap::new();
        let mut end: HashMap<usize, usize> = HashMap::new();
        for &(vf, s) in &horizon {
            let (a, b) = (faces[vf].v[s], faces[vf].v[(s + 1) % 3]);
            let g = faces[vf].nb[s];
            let nf = faces.len();
            let mut face = Face::new(pts, [a, b, p], eps);
            face.nb[0] = g;
            let gs = faces[g].slot_of_edge(b, a)?;
            faces[g].nb[gs] = nf;
            faces.push(face);
            if start.insert(a, nf).is_some() || end.insert(b, nf).is_some() {
                return None;
            }
        }
        for f in &mut faces[first_new..] {
            let [a, b, _] = f.v;
            f.nb[1] = *start.get(&b)?;
            f.nb[2] = *end.get(&a)?;
        }
        let mut orphans = Vec::new();
        for &vf in &visible {
            faces[vf].alive = false;
            orphans.append(&mut faces[vf].out);
        }
        for i in orphans {
            if i == p {
                continue;
            }
            if let Some(f) = faces[first_new..]
                .iter_mut()
                .find(|f| f.height(pts[i]) > f.tol)
            {
                f.out.push(i);
            }
        }
        stack.extend((first_new..faces.len()).filter(|&f| !faces[f].out.is_empty()));
    }
    let faces: Vec<[usize; 3]> = faces.iter().filter(|f| f.alive).map(|f| f.v).collect();
    let mut verts: Vec<usize> = faces.iter().flatten().copied().collect();
    verts.sort_unstable();
    verts.dedup();
    Some(Hull::Solid { verts, faces })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f64) / (1u64 << 31) as f64
    }

    fn check_encloses(pts: &[V3], faces: &[[usize; 3]]) {
        for f in faces {
            let face = Face::new(pts, *f, 0.0);
            for p in pts {
                assert!(face.height(*p) <= 0.0, "point {p:?} above face {f:?}");
            }
        }
    }

    #[test]
    fn random_integer_cloud_is_enclosed_exactly() {
        let mut s = 7u64;
        let pts: Vec<V3> = (0..3000)
            .map(|_| {
                // A ball-ish cloud so that many points are on or near the hull.
                [lcg(&mut s), lcg(&mut s), lcg(&mut s)].map(|c| (c * 255.0).round())
            })
            .collect();
        let Some(Hull::Solid { verts, faces }) = hull(&pts, 0.0) else {
            panic!("expected a solid hull");
        };
        check_encloses(&pts, &faces);
        // Euler: V - E + F = 2 for a closed triangulated sphere with E = 3F/2.
        assert_eq!(
            verts.len() as i64 - (faces.len() as i64 * 3 / 2) + faces.len() as i64,
            2
        );
        // Every hull vertex is a corner-ish point; the cube corners present must be among them.
        assert!(verts.len() >= 8);
    }

    #[test]
    fn cube_with_coplanar_points() {
        let mut pts = Vec::new();
        for r in [0.0, 128.0, 255.0] {
            for g in [0.0, 128.0, 255.0] {
                for b in [0.0, 128.0, 255.0] {
                    pts.push([r, g, b]);
                }
            }
        }
        let Some(Hull::Solid { verts, faces }) = hull(&pts, 0.0) else {
            panic!("expected a solid hull");
        };
        check_encloses(&pts, &faces);
        let corners: Vec<V3> = verts.iter().map(|&i| pts[i]).collect();
        assert_eq!(corners.len(), 8, "{corners:?}");
        assert!(corners
            .iter()
            .all(|c| c.iter().all(|&x| x == 0.0 || x == 255.0)));
    }

    #[test]
    fn lower_dimensional_sets() {
        assert_eq!(hull(&[[3.0, 4.0, 5.0]; 3], 0.0), Some(Hull::Point(0)));
        let line: Vec<V3> = (0..10)
            .map(|i| [i as f64 * 10.0, i as f64 * 5.0, 7.0])
            .rev()
            .collect();
        assert_eq!(hull(&line, 0.0), Some(Hull::Segment(9, 0)));
        // Coplanar: a square with interior and edge points in the plane r + g + b = 300.
        let mut plane = Vec::new();
        for i in 0..=10 {
            for j in 0..=10 {
                let (r, g) = (i as f64 * 10.0, j as f64 * 10.0);
                plane.push([r, g, 300.0 - r - g]);
            }
        }
        let Some(Hull::Polygon(ord)) = hull(&plane, 0.0) else {
            panic!("expected a polygon");
        };
        let mut got: Vec<V3> = ord.iter().map(|&i| plane[i]).collect();
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(
            got,
            vec![
                [0.0, 0.0, 300.0],
                [0.0, 100.0, 200.0],
                [100.0, 0.0, 200.0],
                [100.0, 100.0, 100.0]
            ]
        );
        assert_eq!(hull(&[], 0.0), None);
    }
}
