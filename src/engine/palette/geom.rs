//! Small fixed-size geometry for the palette decomposition: 3-vectors, a 3×3 solve, and the
//! closest point of a simplex (point, segment, triangle or tetrahedron) to a query point,
//! returned as barycentric weights. Everything is `f64` and allocation-free.
//!
//! Invariant: weights returned by [`Simplex::closest`] are non-negative, sum to 1 and
//! reproduce the returned closest point; degenerate simplices (coincident, collinear or
//! coplanar vertices) fall back to their faces instead of dividing by zero.

pub(super) type V3 = [f64; 3];

pub(super) fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(super) fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub(super) fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub(super) fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(super) fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(super) fn norm2(a: V3) -> f64 {
    dot(a, a)
}

pub(super) fn dist2(a: V3, b: V3) -> f64 {
    norm2(sub(a, b))
}

/// Solves `rows · p = rhs` by Cramer's rule; `None` when the rows are (nearly) dependent.
pub(super) fn solve3(rows: [V3; 3], rhs: V3) -> Option<V3> {
    let c12 = cross(rows[1], rows[2]);
    let det = dot(rows[0], c12);
    let scale = (norm2(rows[0]) * norm2(rows[1]) * norm2(rows[2])).sqrt();
    if det.abs() <= 1e-12 * scale || det.is_nan() {
        return None;
    }
    let c20 = cross(rows[2], rows[0]);
    let c01 = cross(rows[0], rows[1]);
    // The inverse of a matrix with rows r0, r1, r2 has columns (r1×r2, r2×r0, r0×r1) / det.
    let p = [
        (c12[0] * rhs[0] + c20[0] * rhs[1] + c01[0] * rhs[2]) / det,
        (c12[1] * rhs[0] + c20[1] * rhs[1] + c01[1] * rhs[2]) / det,
        (c12[2] * rhs[0] + c20[2] * rhs[1] + c01[2] * rhs[2]) / det,
    ];
    p.iter().all(|v| v.is_finite()).then_some(p)
}

fn ratio(num: f64, den: f64) -> f64 {
    if den.abs() > 0.0 {
        (num / den).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Closest point of segment `ab` to `x`: `(t, d2)` with the point `a + t (b - a)`.
pub(super) fn closest_on_segment(x: V3, a: V3, b: V3) -> (f64, f64) {
    let ab = sub(b, a);
    let t = ratio(dot(sub(x, a), ab), norm2(ab));
    (t, dist2(x, add(a, scale(ab, t))))
}

/// Closest point of triangle `abc` to `x` (Ericson, Real-Time Collision Detection §5.1.5):
/// barycentric weights and squared distance.
pub(super) fn closest_on_triangle(x: V3, a: V3, b: V3, c: V3) -> ([f64; 3], f64) {
    let ab = sub(b, a);
    let ac = sub(c, a);
    let ap = sub(x, a);
    let d1 = dot(ab, ap);
    let d2 = dot(ac, ap);
    let w = if d1 <= 0.0 && d2 <= 0.0 {
        [1.0, 0.0, 0.0]
    } else {
        let bp = sub(x, b);
        let d3 = dot(ab, bp);
        let d4 = dot(ac, bp);
        let cp = sub(x, c);
        let d5 = dot(ab, cp);
        let d6 = dot(ac, cp);
        let vc = d1 * d4 - d3 * d2;
        let vb = d5 * d2 - d1 * d6;
        let va = d3 * d6 - d5 * d4;
        if d3 >= 0.0 && d4 <= d3 {
            [0.0, 1.0, 0.0]
        } else if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
            let v = ratio(d1, d1 - d3);
            [1.0 - v, v, 0.0]
        } else if d6 >= 0.0 && d5 <= d6 {
            [0.0, 0.0, 1.0]
        } else if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
            let t = ratio(d2, d2 - d6);
            [1.0 - t, 0.0, t]
        } else if va <= 0.0 && d4 - d3 >= 0.0 && d5 - d6 >= 0.0 {
            let t = ratio(d4 - d3, (d4 - d3) + (d5 - d6));
            [0.0, 1.0 - t, t]
        } else {
            let den = va + vb + vc;
            if den > 1e-12 * norm2(ab) * norm2(ac) && den.is_finite() {
                let v = vb / den;
                let t = vc / den;
                [1.0 - v - t, v, t]
            } else {
                // Degenerate (collinear) triangle: the best of its three edges.
                return best_edge(x, [a, b, c]);
            }
        }
    };
    let p = add(add(scale(a, w[0]), scale(b, w[1])), scale(c, w[2]));
    (w, dist2(x, p))
}

fn best_edge(x: V3, v: [V3; 3]) -> ([f64; 3], f64) {
    let mut best = ([1.0, 0.0, 0.0], dist2(x, v[0]));
    for (i, j) in [(0, 1), (1, 2), (2, 0)] {
        let (t, d2) = closest_on_segment(x, v[i], v[j]);
        if d2 < best.1 {
            let mut w = [0.0; 3];
            w[i] = 1.0 - t;
            w[j] = t;
            best = (w, d2);
        }
    }
    best
}

/// A simplex of 1 to 4 vertices with what [`Simplex::closest`] needs precomputed.
#[derive(Debug, Clone)]
pub(super) struct Simplex {
    /// Palette indices of the vertices (first `m` used).
    pub idx: [usize; 4],
    pub m: usize,
    v: [V3; 4],
    /// Rows of the inverse of the edge matrix `[b-a, c-a, d-a]` (tetrahedra only).
    inv: Option<[V3; 3]>,
}

impl Simplex {
    pub(super) fn new(idx: &[usize], pts: &[V3]) -> Simplex {
        let m = idx.len().clamp(1, 4);
        let mut ids = [0usize; 4];
        let mut v = [[0.0; 3]; 4];
        for j in 0..m {
            ids[j] = idx[j];
            v[j] = pts[idx[j]];
        }
        let inv = if m == 4 {
            let (e1, e2, e3) = (sub(v[1], v[0]), sub(v[2], v[0]), sub(v[3], v[0]));
            let det = dot(e1, cross(e2, e3));
            let mag = (norm2(e1) * norm2(e2) * norm2(e3)).sqrt();
            (det.abs() > 1e-10 * mag).then(|| {
                // Rows of the inverse of the matrix with columns e1, e2, e3.
                let r = [cross(e2, e3), cross(e3, e1), cross(e1, e2)];
                r.map(|row| scale(row, 1.0 / det))
            })
        } else {
            None
        };
        Simplex {
            idx: ids,
            m,
            v,
            inv,
        }
    }

    /// Barycentric weights (first `m` entries) of the closest point to `x`, and the squared
    /// distance to it (0 inside).
    pub(super) fn closest(&self, x: V3) -> ([f64; 4], f64) {
        let v = &self.v;
        match self.m {
            1 => ([1.0, 0.0, 0.0, 0.0], dist2(x, v[0])),
            2 => {
                let (t, d2) = closest_on_segment(x, v[0], v[1]);
                ([1.0 - t, t, 0.0, 0.0], d2)
            }
            3 => {
                let (w, d2) = closest_on_triangle(x, v[0], v[1], v[2]);
                ([w[0], w[1], w[2], 0.0], d2)
            }
            _ => self.closest_tet(x),
        }
    }

    fn closest_tet(&self, x: V3) -> ([f64; 4], f64) {
        let v = &self.v;
        let mut neg = [true; 4];
        if let Some(inv) = &self.inv {
            let r = sub(x, v[0]);
            let l = [dot(inv[0], r), dot(inv[1], r), dot(inv[2], r)];
            let l0 = 1.0 - l[0] - l[1] - l[2];
            let w = [l0, l[0], l[1], l[2]];
            if w.iter().all(|&c| c >= -1e-12) {
                let w = w.map(|c| c.max(0.0));
                let s: f64 = w.iter().sum();
                return (w.map(|c| c / s), 0.0);
            }
            neg = w.map(|c| c < 0.0);
        }
        // Outside (or flat): the closest point lies on a face opposite a negative weight.
        let mut best = ([1.0, 0.0, 0.0, 0.0], f64::INFINITY);
        for skip in 0..4 {
            if !neg[skip] {
                continue;
            }
            let f = [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]][skip];
            let (w3, d2) = closest_on_triangle(x, v[f[0]], v[f[1]], v[f[2]]);
            if d2 < best.1 {
                let mut w = [0.0; 4];
                for (j, &fj) in f.iter().enumerate() {
                    w[fj] = w3[j];
                }
                best = (w, d2);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recon(s: &Simplex, w: &[f64; 4]) -> V3 {
        let mut p = [0.0; 3];
        for (v, wj) in s.v.iter().zip(w).take(s.m) {
            p = add(p, scale(*v, *wj));
        }
        p
    }

    #[test]
    fn tetrahedron_barycentric_is_exact_inside() {
        let pts = [
            [10.0, 20.0, 30.0],
            [200.0, 10.0, 40.0],
            [30.0, 220.0, 10.0],
            [40.0, 50.0, 250.0],
        ];
        let s = Simplex::new(&[0, 1, 2, 3], &pts);
        let want = [0.1, 0.2, 0.3, 0.4];
        let x = (0..4).fold([0.0; 3], |p, j| add(p, scale(pts[j], want[j])));
        let (w, d2) = s.closest(x);
        assert_eq!(d2, 0.0);
        for j in 0..4 {
            assert!((w[j] - want[j]).abs() < 1e-12, "{w:?}");
        }
        // Outside: the closest point lies on the surface and reconstructs within distance.
        let out = [300.0, 300.0, 300.0];
        let (w, d2) = s.closest(out);
        assert!(d2 > 0.0 && w.iter().all(|&c| c >= 0.0));
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((dist2(out, recon(&s, &w)) - d2).abs() < 1e-6);
    }

    #[test]
    fn triangle_and_degenerate_cases() {
        let pts = [
            [0.0, 0.0, 0.0],
            [10.0, 0.0, 0.0],
            [0.0, 10.0, 0.0],
            [5.0, 0.0, 0.0],
        ];
        let t = Simplex::new(&[0, 1, 2], &pts);
        let (w, d2) = t.closest([2.0, 3.0, 4.0]);
        assert!((d2 - 16.0).abs() < 1e-12);
        assert!((w[1] - 0.2).abs() < 1e-12 && (w[2] - 0.3).abs() < 1e-12);
        // Collinear triangle and flat tetrahedron do not divide by zero.
        let flat = Simplex::new(&[0, 1, 3], &pts);
        let (w, d2) = flat.closest([7.0, 1.0, 0.0]);
        assert!((d2 - 1.0).abs() < 1e-12 && (w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let flat4 = Simplex::new(&[0, 1, 2, 3], &pts);
        let (w, d2) = flat4.closest([1.0, 1.0, 2.0]);
        assert!((d2 - 4.0).abs() < 1e-12, "{d2}");
        assert!((dist2([1.0, 1.0, 2.0], recon(&flat4, &w)) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn solve3_solves_and_rejects_singular() {
        let rows = [[2.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0]];
        let p = solve3(rows, [5.0, 6.0, 6.0]).unwrap();
        assert!(dist2(p, [1.0, 2.0, 3.0]) < 1e-20);
        assert!(solve3(
            [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
            [1.0; 3]
        )
        .is_none());
    }
}
