//! Barycentric weights of colours with respect to a palette (Tan et al. 2018, §4): the hull
//! of the palette is cut into a star of simplices around one "centre" vertex (the background
//! colour) — tetrahedra for a solid hull, a triangle fan for a flat one, a segment for a line —
//! and a colour gets the weights of the simplex that contains it, zero elsewhere. A colour
//! outside the hull gets the weights of its projection (closest point) onto the hull.
//!
//! Invariants: weights are non-negative and sum to 1; inside the hull they reproduce the
//! colour exactly (up to `f64` rounding) and the reported squared distance is 0.

use super::geom::{Simplex, V3};
use super::hull::{hull_robust, Hull};

/// The star decomposition of a palette's hull.
#[derive(Debug, Clone)]
pub(super) struct Geometry {
    simplices: Vec<Simplex>,
}

/// Where a colour falls: up to four palette indices with their weights, and the squared
/// distance from the colour to the hull.
#[derive(Debug, Clone, Copy)]
pub(super) struct Loc {
    pub idx: [usize; 4],
    pub w: [f64; 4],
    pub m: usize,
    pub d2: f64,
}

impl Geometry {
    /// Builds the star around palette index `centre` (if it is not a hull vertex, around the
    /// first hull vertex). `pal` must not be empty.
    pub(super) fn new(pal: &[V3], centre: usize, eps: f64) -> Geometry {
        let h = hull_robust(pal, eps);
        let mut simplices = Vec::new();
        match &h {
            Hull::Point(i) => simplices.push(Simplex::new(&[*i], pal)),
            Hull::Segment(a, b) => simplices.push(Simplex::new(&[*a, *b], pal)),
            Hull::Polygon(ord) => {
                let at = ord.iter().position(|&i| i == centre).unwrap_or(0);
                let c = ord[at];
                let m = ord.len();
                for j in 1..m - 1 {
                    let (a, b) = (ord[(at + j) % m], ord[(at + j + 1) % m]);
                    simplices.push(Simplex::new(&[c, a, b], pal));
                }
            }
            Hull::Solid { verts, faces } => {
                let c = if verts.contains(&centre) {
                    centre
                } else {
                    verts[0]
                };
                for f in faces.iter().filter(|f| !f.contains(&c)) {
                    simplices.push(Simplex::new(&[c, f[0], f[1], f[2]], pal));
                }
            }
        }
        Geometry { simplices }
    }

    /// The simplex containing `x` (or, outside the hull, holding its closest point).
    pub(super) fn locate(&self, x: V3) -> Loc {
        let mut best = Loc {
            idx: [0; 4],
            w: [1.0, 0.0, 0.0, 0.0],
            m: 1,
            d2: f64::INFINITY,
        };
        for s in &self.simplices {
            let (w, d2) = s.closest(x);
            if d2 < best.d2 {
                best = Loc {
                    idx: s.idx,
                    w,
                    m: s.m,
                    d2,
                };
                if d2 == 0.0 {
                    break;
                }
            }
        }
        best
    }
}

/// A weighted set of colours standing for the image when scoring palettes.
#[derive(Debug, Clone, Default)]
pub(super) struct Sample {
    pub pts: Vec<V3>,
    pub w: Vec<f64>,
}

impl Sample {
    /// At most `max` colours: the most frequent half exactly, the rest by a deterministic stride
    /// with weights scaled by the stride.
    pub(super) fn new(colours: &[V3], counts: &[u32], max: usize) -> Sample {
        let mut order: Vec<usize> = (0..colours.len()).collect();
        order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let head = order.len().min(max / 2);
        let mut s = Sample::default();
        for &i in &order[..head] {
            s.pts.push(colours[i]);
            s.w.push(counts[i] as f64);
        }
        let rest = &order[head..];
        let step = rest.len().div_ceil(max - head).max(1);
        for chunk in rest.chunks(step) {
            s.pts.push(colours[chunk[0]]);
            s.w.push(chunk.iter().map(|&i| counts[i] as f64).sum());
        }
        s
    }

    /// Per-channel RMSE (in 0..255 levels) of projecting the sample onto `g`'s hull.
    pub(super) fn rmse(&self, g: &Geometry) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (p, w) in self.pts.iter().zip(&self.w) {
            num += w * g.locate(*p).d2;
            den += w;
        }
        if den > 0.0 {
            (num / (3.0 * den)).sqrt()
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_weights_inside_a_bipyramid() {
        // Five vertices: a triangle and two apexes; the star from vertex 0 has 4 tetrahedra.
        let pal = [
            [0.0, 0.0, 0.0],
            [200.0, 0.0, 0.0],
            [0.0, 200.0, 0.0],
            [60.0, 60.0, 200.0],
            [60.0, 60.0, -100.0],
        ];
        let g = Geometry::new(&pal, 0, 0.0);
        let want = [0.2, 0.3, 0.1, 0.4, 0.0];
        let x = (0..5).fold([0.0; 3], |p, j| {
            [
                p[0] + pal[j][0] * want[j],
                p[1] + pal[j][1] * want[j],
                p[2] + pal[j][2] * want[j],
            ]
        });
        let loc = g.locate(x);
        assert_eq!(loc.d2, 0.0);
        let mut w = [0.0; 5];
        for j in 0..loc.m {
            w[loc.idx[j]] += loc.w[j];
        }
        let rec = (0..5).fold([0.0; 3], |p, j| {
            [
                p[0] + pal[j][0] * w[j],
                p[1] + pal[j][1] * w[j],
                p[2] + pal[j][2] * w[j],
            ]
        });
        for c in 0..3 {
            assert!((rec[c] - x[c]).abs() < 1e-9);
        }
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Outside: positive distance.
        assert!(g.locate([300.0, 300.0, 300.0]).d2 > 0.0);
    }

    #[test]
    fn flat_and_linear_palettes_project() {
        let tri = [[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 100.0, 0.0]];
        let g = Geometry::new(&tri, 1, 0.0);
        let loc = g.locate([10.0, 10.0, 5.0]);
        assert!((loc.d2 - 25.0).abs() < 1e-9);
        let seg = [[0.0, 0.0, 0.0], [100.0, 100.0, 100.0]];
        let g = Geometry::new(&seg, 0, 0.0);
        assert_eq!(g.locate([50.0, 50.0, 50.0]).d2, 0.0);
        let s = Sample {
            pts: vec![[50.0, 50.0, 50.0], [0.0, 0.0, 30.0]],
            w: vec![1.0, 1.0],
        };
        // Distance² of the second point to the diagonal is 600; mean over 2 points and 3 channels.
        assert!((s.rmse(&g) - (600.0f64 / 6.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn sample_keeps_frequent_colours_and_total_weight() {
        let colours: Vec<V3> = (0..1000).map(|i| [i as f64, 0.0, 0.0]).collect();
        let mut counts = vec![1u32; 1000];
        counts[777] = 5000;
        let s = Sample::new(&colours, &counts, 100);
        assert!(s.pts.len() <= 100);
        assert_eq!(s.pts[0], [777.0, 0.0, 0.0]);
        assert_eq!(s.w.iter().sum::<f64>(), 5999.0);
    }
}
