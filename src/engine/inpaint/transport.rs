//! Coherence transport (Bornemann & März 2007): a fast fill that carries colour into the
//! hole along the isophotes (lines of equal colour) that enter it, so an edge, a pole or a
//! rim crossing the hole is continued as a line instead of being smoothed away as diffusion
//! does. The hole is filled from its edge inward (in order of distance to the known pixels);
//! each hole pixel becomes a weighted mean of the known or already filled pixels within
//! [`EPSILON`] of it, weighted `1/|p−q| · exp(−μ² ⟨g, p−q⟩² / 2ε²)` where `g` is the unit
//! gradient direction of the structure tensor at `p` and μ grows with its coherence (an
//! isotropic mean where the surroundings have no dominant direction). The structure tensor
//! is measured on the known pixels near the hole and carried inward with the colour.
//!
//! The result is the *guide* of the exemplar fill ([`super::patchmatch`]): patches are
//! chosen to agree with its low frequencies, so texture comes from the image and large
//! structure from here. On its own it is smooth along lines and streaky across them.
//!
//! Invariants: only hole pixels are written; hole values of the input are never read; work
//! and memory are bounded by the hole's bounding box plus a margin, not the image.

use super::fine::hole_box;
use super::plane::{chamfer, Plane};

/// Radius of the neighbourhood a hole pixel draws from, in pixels.
const EPSILON: isize = 5;
/// Sharpness of the transport along the isophote at full coherence.
const MU: f32 = 25.0;
/// Width (σ) of the window the structure tensor is averaged over.
const RHO: f32 = 3.0;
/// Coherence at which the transport becomes fully directional.
const FULL_COHERENCE: f32 = 0.5;

/// Fills the hole pixels of `plane` by coherence transport; known pixels are untouched. A
/// plane without known pixels is left as it is.
pub(super) fn coherence_transport(plane: &mut Plane) {
    coherence_transport_carrying(plane, None);
}

/// [`coherence_transport`] of `plane`, filling the hole of `carry` (a plane of the same size
/// and hole, other values: the texture features) with the same weights.
pub(super) fn coherence_transport_carrying(plane: &mut Plane, mut carry: Option<&mut Plane>) {
    let (w, h) = (plane.w, plane.h);
    let margin = (3.0 * RHO) as usize + EPSILON as usize + 2;
    let Some((x0, y0, x1, y1)) = hole_box(&plane.known, w, h, margin) else {
        return;
    };
    if !plane.known.iter().any(|&k| k) {
        return;
    }
    let (rw, rh) = (x1 - x0 + 1, y1 - y0 + 1);
    let g = |i: usize| (y0 + i / rw) * w + x0 + i % rw;
    let mut avail: Vec<bool> = (0..rw * rh).map(|i| plane.known[g(i)]).collect();
    let mut tensor = known_tensor(plane, &avail, x0, y0, rw, rh);

    let order = fill_order(&avail, rw, rh);
    for i in order {
        let (px, py) = ((i % rw) as isize, (i / rw) as isize);
        // The tensor at p: its own (measured) or the mean of its available neighbours'.
        let mut t = tensor[i];
        if t[3] == 0.0 {
            let mut acc = [0.0f32; 4];
            for_neighbours(px, py, rw, rh, |q, _, _| {
                if avail[q] && tensor[q][3] > 0.0 {
                    (0..3).for_each(|k| acc[k] += tensor[q][k]);
                    acc[3] += 1.0;
                }
            });
            if acc[3] > 0.0 {
                t = [acc[0] / acc[3], acc[1] / acc[3], acc[2] / acc[3], 1.0];
            }
        }
        let (gx, gy, mu) = direction(t);
        let k = mu * mu / (2.0 * (EPSILON * EPSILON) as f32);
        let mut acc = [0.0f32; 4];
        let mut iso = [0.0f32; 4];
        let (mut cacc, mut ciso) = ([0.0f32; 3], [0.0f32; 3]);
        for_neighbours(px, py, rw, rh, |q, dx, dy| {
            if !avail[q] {
                return;
            }
            let d = ((dx * dx + dy * dy) as f32).sqrt();
            let across = gx * dx as f32 + gy * dy as f32;
            let wt = (-k * across * across).exp() / d;
            let v = &plane.rgb[3 * g(q)..3 * g(q) + 3];
            for c in 0..3 {
                acc[c] += wt * v[c];
                iso[c] += v[c] / d;
            }
            if let Some(cp) = carry.as_deref() {
                let v = &cp.rgb[3 * g(q)..3 * g(q) + 3];
                for c in 0..3 {
                    cacc[c] += wt * v[c];
                    ciso[c] += v[c] / d;
                }
            }
            acc[3] += wt;
            iso[3] += 1.0 / d;
        });
        let (sum, csum, n) = if acc[3] > 1e-6 {
            (acc, cacc, acc[3])
        } else {
            (iso, ciso, iso[3])
        };
        if n > 0.0 {
            let gi = g(i);
            if let Some(cp) = carry.as_deref_mut() {
                for (o, v) in cp.rgb[3 * gi..3 * gi + 3].iter_mut().zip(csum) {
                    *o = v / n;
                }
            }
            for (o, v) in plane.rgb[3 * gi..3 * gi + 3].iter_mut().zip(sum) {
                *o = v / n;
            }
        }
        tensor[i] = t;
        avail[i] = true;
    }
}

/// The guide's pixels at one level: `plane` (completed) smoothed by `passes` of a
/// `[1 2 1]/4` filter in each direction (σ ≈ 0.7 px per pass), rounded to `u8`.
pub(super) fn guide_pixels(plane: &Plane, passes: usize) -> Vec<u8> {
    let (w, h) = (plane.w, plane.h);
    let mut v = plane.rgb.clone();
    let mut tmp = vec![0.0f32; v.len()];
    for _ in 0..passes {
        for (stride, len, lines, step) in [(3, w, h, 3 * w), (3 * w, h, w, 3)] {
            for line in 0..lines {
                for c in 0..3 {
                    let base = line * step + c;
                    for k in 0..len {
                        let at = |j: usize| v[base + j * stride];
                        let (l, r) = (at(k.saturating_sub(1)), at((k + 1).min(len - 1)));
                        tmp[base + k * stride] = (l + 2.0 * at(k) + r) / 4.0;
                    }
                }
            }
            std::mem::swap(&mut v, &mut tmp);
        }
    }
    v.iter().map(|&x| super::to_u8(x)).collect()
}

/// Visits the pixels within [`EPSILON`] of `(px, py)` (a disc, clipped to the region), but
/// not `(px, py)` itself: `f(index, dx, dy)` with `(dx, dy)` from the pixel to `p`.
fn for_neighbours(
    px: isize,
    py: isize,
    rw: usize,
    rh: usize,
    mut f: impl FnMut(usize, isize, isize),
) {
    for qy in (py - EPSILON).max(0)..=(py + EPSILON).min(rh as isize - 1) {
        for qx in (px - EPSILON).max(0)..=(px + EPSILON).min(rw as isize - 1) {
            let (dx, dy) = (px - qx, py - qy);
            if (dx == 0 && dy == 0) || dx * dx + dy * dy > EPSILON * EPSILON {
                continue;
            }
            f(qy as usize * rw + qx as usize, dx, dy);
        }
    }
}

/// The unit gradient direction of the tensor `[jxx, jxy, jyy, valid]` and the transport's
/// μ: [`MU`] scaled by how coherent (one-directional) the tensor is, 0 for none.
fn direction(t: [f32; 4]) -> (f32, f32, f32) {
    let [a, b, c, valid] = t;
    if valid == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let half = (a - c) / 2.0;
    let root = (half * half + b * b).sqrt();
    let (l1, l2) = ((a + c) / 2.0 + root, (a + c) / 2.0 - root);
    if l1 <= 1e-3 {
        return (0.0, 0.0, 0.0);
    }
    let coherence = (l1 - l2) / (l1 + l2);
    // eigenvector of the larger eigenvalue
    let (vx, vy) = if a >= c { (l1 - c, b) } else { (b, l1 - a) };
    let n = (vx * vx + vy * vy).sqrt();
    if n <= 1e-6 {
        return (0.0, 0.0, 0.0);
    }
    let mu = MU * (coherence / FULL_COHERENCE).min(1.0);
    (vx / n, vy / n, mu)
}

/// The structure tensor `[jxx, jxy, jyy, valid]` of each known pixel of the region whose
/// 3×3 neighbourhood is known, summed over the colour channels and averaged (normalised
/// Gaussian of σ = [`RHO`]) over the known neighbourhood; `valid` is 0 where nothing was
/// measured.
fn known_tensor(
    plane: &Plane,
    avail: &[bool],
    x0: usize,
    y0: usize,
    rw: usize,
    rh: usize,
) -> Vec<[f32; 4]> {
    let w = plane.w;
    let px = |x: usize, y: usize, c: usize| plane.rgb[3 * ((y0 + y) * w + x0 + x) + c];
    let mut raw = vec![[0.0f32; 4]; rw * rh];
    for y in 1..rh.saturating_sub(1) {
        for x in 1..rw.saturating_sub(1) {
            let all_known = (y - 1..=y + 1).all(|yy| (x - 1..=x + 1).all(|xx| avail[yy * rw + xx]));
            if !all_known {
                continue;
            }
            let mut t = [0.0f32, 0.0, 0.0, 1.0];
            for c in 0..3 {
                let gx = (px(x + 1, y, c) - px(x - 1, y, c)) / 2.0;
                let gy = (px(x, y + 1, c) - px(x, y - 1, c)) / 2.0;
                t[0] += gx * gx;
                t[1] += gx * gy;
                t[2] += gy * gy;
            }
            raw[y * rw + x] = t;
        }
    }
    let smoothed = gaussian4(&raw, rw, rh, RHO);
    smoothed
        .into_iter()
        .zip(avail)
        .map(|(t, &k)| {
            if k && t[3] > 0.05 {
                [t[0] / t[3], t[1] / t[3], t[2] / t[3], 1.0]
            } else {
                [0.0; 4]
            }
        })
        .collect()
}

/// Separable Gaussian blur (σ = `sigma`, clipped at the region's border) of four channels.
fn gaussian4(v: &[[f32; 4]], w: usize, h: usize, sigma: f32) -> Vec<[f32; 4]> {
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|d| (-((d * d) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let pass = |src: &[[f32; 4]], horizontal: bool| {
        let mut out = vec![[0.0f32; 4]; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0.0f32; 4];
                for (k, d) in kernel.iter().zip(-r..=r) {
                    let (sx, sy) = if horizontal {
                        (x as isize + d, y as isize)
                    } else {
                        (x as isize, y as isize + d)
                    };
                    if sx < 0 || sy < 0 || sx >= w as isize || sy >= h as isize {
                        continue;
                    }
                    let s = src[sy as usize * w + sx as usize];
                    (0..4).for_each(|c| acc[c] += k * s[c]);
                }
                out[y * w + x] = acc;
            }
        }
        out
    };
    pass(&pass(v, true), false)
}

/// The hole pixels of the region in fill order: by chamfer (3-4) distance to the nearest
/// available pixel, ties in scan order.
fn fill_order(avail: &[bool], w: usize, h: usize) -> Vec<usize> {
    let dist = chamfer(avail, w, h);
    let mut order: Vec<usize> = (0..w * h).filter(|&i| !avail[i]).collect();
    order.sort_by_key(|&i| dist[i]);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> (f32, bool)) -> Plane {
        let mut rgb = Vec::new();
        let mut known = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (v, k) = f(x, y);
                rgb.extend([if k { v } else { 0.0 }; 3]);
                known.push(k);
            }
        }
        Plane { w, h, rgb, known }
    }

    #[test]
    fn a_diagonal_line_is_carried_across_the_hole() {
        // A dark 3-px line along y = x on white; the square hole cuts it in the middle.
        let hole = |x: usize, y: usize| (20..40).contains(&x) && (20..40).contains(&y);
        let mut p = plane(60, 60, |x, y| {
            let v = if (x as isize - y as isize).abs() <= 1 {
                0.0
            } else {
                255.0
            };
            (v, !hole(x, y))
        });
        coherence_transport(&mut p);
        let at = |x: usize, y: usize| p.rgb[3 * (y * 60 + x)];
        for d in 22..38 {
            assert!(at(d, d) < 90.0, "line broken at {d}: {}", at(d, d));
            assert!(
                at(d, (d + 8).min(39)) > 170.0 || d + 8 > 39,
                "off-line dark at {d}"
            );
        }
    }

    #[test]
    fn known_pixels_are_untouched() {
        let mut p = plane(30, 20, |x, y| {
            ((x * 7 + y * 3) as f32, !(10..15).contains(&x))
        });
        let before = p.clone();
        coherence_transport(&mut p);
        for (i, &k) in p.known.iter().enumerate() {
            if k {
                assert_eq!(p.rgb[3 * i], before.rgb[3 * i]);
            } else {
                assert!(p.rgb[3 * i] > 0.0);
            }
        }
    }
}
