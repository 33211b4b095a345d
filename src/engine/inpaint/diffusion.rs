//! Harmonic (membrane) fill: every hole pixel becomes the average of its 4-neighbours, the
//! known pixels acting as fixed boundary values and the image border as a mirror (Neumann).
//!
//! Solved by multigrid. A cascade first gives a good start: the half-size problem is solved
//! (recursively), bilinearly upsampled, and smoothed by successive over-relaxation. That
//! start is off by a smooth error, because each coarse level sees the hole's edge up to half
//! its pixel away from where it is; three V-cycles (Gauss–Seidel smoothing, the residual
//! summed onto a half-size correction problem solved the same way, the bilinear correction
//! scaled by its energy-optimal factor) take it to a small fraction of a grey level. The
//! work is `O(hole pixels)`, instead of the `O(side²)` sweeps plain relaxation needs.
//!
//! Invariants: only hole pixels are written; the caller guarantees at least one known pixel
//! (so every hole component touches a boundary value and the system is well posed).

use super::plane::{for_each_hole_upsampled, Plane};

/// Levels at or below this side are solved directly by relaxation.
const DIRECT_SIDE: usize = 16;
/// Sweeps of the direct solve (≤ 16×16, so cheap).
const DIRECT_SWEEPS: usize = 200;
/// SOR sweeps on every finer level of the cascade, after the upsampled guess.
const LEVEL_SWEEPS: usize = 20;
/// Over-relaxation factor of the cascade and the direct solve; < 2 converges.
const OMEGA: f32 = 1.7;
/// V-cycles after the cascade, and Gauss–Seidel sweeps before and after each coarse
/// correction.
const V_CYCLES: usize = 3;
const SMOOTH_SWEEPS: usize = 2;

/// Fills the hole pixels of `plane` with the harmonic interpolant of the known pixels.
pub(super) fn harmonic_fill(plane: &mut Plane) {
    cascade(plane);
    let holes = plane.holes();
    for _ in 0..V_CYCLES {
        v_cycle(plane, &holes, None);
    }
}

/// Solves `n_i·u_i − Σ_{j ∈ N(i)} u_j = rhs_i` over the hole pixels of `plane` (known pixels
/// fixed) by `cycles` V-cycles from its current hole values: the Poisson equation, when
/// `rhs` holds the divergence of a guidance field.
pub(super) fn poisson(plane: &mut Plane, rhs: &[f32], cycles: usize) {
    let holes = plane.holes();
    for _ in 0..cycles {
        v_cycle(plane, &holes, Some(rhs));
    }
}

/// Coarse-to-fine start: solve the half-size problem, upsample, smooth.
fn cascade(plane: &mut Plane) {
    let holes = plane.holes();
    if holes.is_empty() {
        return;
    }
    if plane.w.max(plane.h) <= DIRECT_SIDE {
        let mean = known_mean(plane);
        for &i in &holes {
            plane.rgb[3 * i..3 * i + 3].copy_from_slice(&mean);
        }
        relax(plane, &holes, None, OMEGA, DIRECT_SWEEPS);
    } else {
        let mut coarse = plane.downsample();
        cascade(&mut coarse);
        plane.upsample_holes_from(&coarse);
        relax(plane, &holes, None, OMEGA, LEVEL_SWEEPS);
    }
}

/// One V-cycle on `n_i·u_i − Σ_{j ∈ N(i)} u_j = f_i` over `holes` (`f = 0` when `rhs` is
/// `None`; `n_i` the number of in-image neighbours; known pixels fixed).
fn v_cycle(plane: &mut Plane, holes: &[usize], rhs: Option<&[f32]>) {
    if holes.is_empty() {
        return;
    }
    if plane.w.max(plane.h) <= DIRECT_SIDE {
        relax(plane, holes, rhs, OMEGA, DIRECT_SWEEPS);
        return;
    }
    relax(plane, holes, rhs, 1.0, SMOOTH_SWEEPS);
    let residual = residual(plane, holes, rhs);
    // The error obeys the same equation with the residual as right-hand side and zero at
    // the known pixels; on the half-size grid its right-hand side is the sum over the
    // children (the operator scales with the square of the spacing).
    let (cw, ch) = (plane.w.div_ceil(2), plane.h.div_ceil(2));
    let mut error = Plane {
        w: cw,
        h: ch,
        rgb: vec![0.0; 3 * cw * ch],
        known: vec![true; cw * ch],
    };
    let mut coarse_rhs = vec![0.0f32; 3 * cw * ch];
    for &i in holes {
        let ci = (i / plane.w / 2) * cw + (i % plane.w) / 2;
        error.known[ci] = false;
        for c in 0..3 {
            coarse_rhs[3 * ci + c] += residual[3 * i + c];
        }
    }
    let coarse_holes = error.holes();
    if coarse_holes.len() < cw * ch {
        // (With no known pixel left the correction problem is singular; skip it.)
        v_cycle(&mut error, &coarse_holes, Some(&coarse_rhs));
        let mut correction = Plane {
            w: plane.w,
            h: plane.h,
            rgb: vec![0.0; plane.rgb.len()],
            known: plane.known.clone(),
        };
        let corr = &mut correction.rgb;
        for_each_hole_upsampled(&plane.known, plane.w, plane.h, &error, |i, e| {
            corr[3 * i..3 * i + 3].copy_from_slice(&e);
        });
        // The coarse grid sees the hole's edge up to half a pixel off, so its correction is
        // only right up to a factor; take the factor that minimises the error's energy
        // norm: α = ⟨c, r⟩ / ⟨c, A c⟩ per channel.
        let (mut cr, mut cac) = ([0.0f64; 3], [0.0f64; 3]);
        for &i in holes {
            let (sum, n) = neighbour_sum(&correction, i);
            for c in 0..3 {
                let v = f64::from(correction.rgb[3 * i + c]);
                cr[c] += v * f64::from(residual[3 * i + c]);
                cac[c] += v * f64::from(n * correction.rgb[3 * i + c] - sum[c]);
            }
        }
        for c in 0..3 {
            let alpha = if cac[c] > 0.0 {
                (cr[c] / cac[c]) as f32
            } else {
                0.0
            };
            for &i in holes {
                plane.rgb[3 * i + c] += alpha * correction.rgb[3 * i + c];
            }
        }
    }
    relax(plane, holes, rhs, 1.0, SMOOTH_SWEEPS);
}

/// `f_i − (n_i·u_i − Σ u_j)` at the hole pixels, 0 elsewhere (3 channels).
fn residual(plane: &Plane, holes: &[usize], rhs: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![0.0f32; plane.rgb.len()];
    for &i in holes {
        let (sum, n) = neighbour_sum(plane, i);
        for c in 0..3 {
            let f = rhs.map_or(0.0, |f| f[3 * i + c]);
            out[3 * i + c] = f - (n * plane.rgb[3 * i + c] - sum[c]);
        }
    }
    out
}

/// Smooths the hole of `plane` with the cascade's per-level sweeps (for a level whose
/// upsampled guess needs no more than that).
pub(super) fn smooth(plane: &mut Plane, holes: &[usize]) {
    relax(plane, holes, None, OMEGA, LEVEL_SWEEPS);
}

/// `sweeps` in-place relaxation sweeps (factor `omega`; 1 is Gauss–Seidel) over `holes`
/// (indices of hole pixels, scan order).
fn relax(plane: &mut Plane, holes: &[usize], rhs: Option<&[f32]>, omega: f32, sweeps: usize) {
    for _ in 0..sweeps {
        for &i in holes {
            let (sum, n) = neighbour_sum(plane, i);
            if n == 0.0 {
                continue; // 1×1 image; the caller never gets here with a known-less plane
            }
            for (c, s) in sum.iter().enumerate() {
                let f = rhs.map_or(0.0, |f| f[3 * i + c]);
                let v = &mut plane.rgb[3 * i + c];
                *v += omega * ((s + f) / n - *v);
            }
        }
    }
}

/// Sum of the 4-neighbours' values inside the image, and how many there are.
#[inline]
fn neighbour_sum(plane: &Plane, i: usize) -> ([f32; 3], f32) {
    let (w, h) = (plane.w, plane.h);
    let (x, y) = (i % w, i / w);
    let mut sum = [0.0f32; 3];
    let mut n = 0.0f32;
    let mut add = |j: usize| {
        for (s, v) in sum.iter_mut().zip(&plane.rgb[3 * j..3 * j + 3]) {
            *s += v;
        }
        n += 1.0;
    };
    if x > 0 {
        add(i - 1);
    }
    if x + 1 < w {
        add(i + 1);
    }
    if y > 0 {
        add(i - w);
    }
    if y + 1 < h {
        add(i + w);
    }
    (sum, n)
}

/// Mean colour of the known pixels (0 if there are none).
fn known_mean(plane: &Plane) -> [f32; 3] {
    let mut sum = [0.0f64; 3];
    let mut n = 0u64;
    for (px, _) in plane
        .rgb
        .chunks_exact(3)
        .zip(&plane.known)
        .filter(|(_, &k)| k)
    {
        for (s, v) in sum.iter_mut().zip(px) {
            *s += f64::from(*v);
        }
        n += 1;
    }
    let n = n.max(1) as f64;
    sum.map(|s| (s / n) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RGB = (v, 255 − v, 9) with `v = a·x + b·y`, hole where `hole(x, y)`.
    fn ramp_plane(
        w: usize,
        h: usize,
        (a, b): (f32, f32),
        hole: impl Fn(usize, usize) -> bool,
    ) -> Plane {
        let mut rgb = Vec::with_capacity(w * h * 3);
        let mut known = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let k = !hole(x, y);
                let v = a * x as f32 + b * y as f32;
                rgb.extend(if k { [v, 255.0 - v, 9.0] } else { [0.0; 3] });
                known.push(k);
            }
        }
        Plane { w, h, rgb, known }
    }

    #[test]
    fn reproduces_a_linear_ramp() {
        // A linear function is harmonic, so an interior hole must be filled with the ramp.
        let (w, h) = (80, 60);
        let mut p = ramp_plane(w, h, (2.0, 1.0), |x, y| {
            (20..60).contains(&x) && (15..45).contains(&y)
        });
        harmonic_fill(&mut p);
        for i in p.holes() {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let v = 2.0 * x + y;
            assert!(
                (p.rgb[3 * i] - v).abs() < 0.25,
                "r at {i}: {}",
                p.rgb[3 * i]
            );
            assert!((p.rgb[3 * i + 1] - (255.0 - v)).abs() < 0.25);
            assert!((p.rgb[3 * i + 2] - 9.0).abs() < 0.25);
        }
    }

    #[test]
    fn hole_at_the_border_mirrors_instead_of_fading() {
        // Hole = the whole right half of a horizontal ramp; the border is a mirror, so the
        // fill is the seam column's value everywhere (a zero boundary would pull it down).
        let (w, h) = (80, 40);
        let mut p = ramp_plane(w, h, (2.0, 0.0), |x, _| x >= 40);
        harmonic_fill(&mut p);
        for i in p.holes() {
            assert!((p.rgb[3 * i] - 78.0).abs() < 0.25, "{i}: {}", p.rgb[3 * i]);
        }
    }

    #[test]
    fn large_border_hole_converges() {
        // The worst case for the cascade alone (≈ 2.9/255 off): a whole half of a 512-wide
        // ramp missing. The V-cycles must bring it to a small fraction of a level.
        let (w, h) = (512, 256);
        let mut p = ramp_plane(w, h, (0.25, 0.0), |x, _| x >= 256);
        harmonic_fill(&mut p);
        let err = p
            .holes()
            .iter()
            .map(|&i| (p.rgb[3 * i] - 63.75).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 0.15, "max error {err}");
    }
}
