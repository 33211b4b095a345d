//! From barycentric weights to 8-bit "over" layers that recompose the source exactly.
//!
//! Weights `w` (non-negative, summing to 1) become "over" opacities `α_0 = 1`,
//! `α_i = w_i / (w_0 + … + w_i)` (Tan et al. 2016, §4), quantised to 8 bits. Quantising the
//! alphas, and projecting colours outside the palette's hull, leaves a residual; it is
//! absorbed by the topmost layer with non-zero alpha at that colour, whose colour there is
//! replaced by the one that makes the composite exact. Among the colours that do, the one
//! closest to the flat palette colour is taken; if none fits in 0..=255 at the quantised
//! alpha, the alpha is raised by the fewest levels that admit one (alpha 255 always does).
//!
//! Invariant: for every colour, compositing the encoded layers on black exactly as
//! `LayerStack::composite` does (f32 arithmetic, rounded to 8 bits) gives back the colour.

/// One "over" step, bit-for-bit as `LayerStack::composite` computes it.
pub(super) fn over(acc: f32, c: u8, a8: u8) -> f32 {
    let a = a8 as f32 / 255.0;
    c as f32 / 255.0 * a + acc * (1.0 - a)
}

/// The final 8-bit rounding of `LayerStack::composite`.
pub(super) fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// The layer colours of one pixel: the flat palette colour everywhere except `top`, which
/// gets `top_colour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Encoded {
    pub top: usize,
    pub top_colour: [u8; 3],
}

/// Encodes the colour `x` with palette `pal` and weights `w` (same length): writes the 8-bit
/// alpha of every layer into `alphas` and returns which layer carries the residual.
pub(super) fn encode(x: [u8; 3], pal: &[[u8; 3]], w: &[f64], alphas: &mut [u8]) -> Encoded {
    let k = pal.len();
    let mut sum = 0.0;
    for i in 0..k {
        sum += w[i].max(0.0);
        alphas[i] = if i == 0 {
            255
        } else if w[i] <= 0.0 || sum <= 0.0 {
            0
        } else {
            (255.0 * w[i] / sum).round().clamp(0.0, 255.0) as u8
        };
    }
    let top = (0..k).rev().find(|&i| alphas[i] > 0).unwrap_or(0);
    let mut acc = [0f32; 3];
    for i in 0..top {
        if alphas[i] == 0 {
            continue;
        }
        for c in 0..3 {
            acc[c] = over(acc[c], pal[i][c], alphas[i]);
        }
    }
    // Feasibility only grows with alpha (the reachable range of each channel widens towards
    // [0, 255]), so the closest feasible alpha is the quantised one or the least above it.
    let base = alphas[top].max(1);
    let a8 = if feasible(acc, x, base) {
        base
    } else {
        let mut a = min_alpha_guess(acc, x).clamp(base as usize + 1, 255) as u8;
        while a > base + 1 && feasible(acc, x, a - 1) {
            a -= 1;
        }
        while a < 255 && !feasible(acc, x, a) {
            a += 1;
        }
        a
    };
    let mut top_colour = x;
    let mut exact = true;
    for c in 0..3 {
        let f = |v: usize| to_u8(over(acc[c], v as u8, a8));
        // `f` is non-decreasing in the colour, so the exact colours form an interval.
        let guess = colour_guess(acc[c], x[c], a8);
        let lo = first_where(|v| f(v) >= x[c], guess);
        let hi = first_where(|v| f(v) > x[c], guess);
        if lo < hi {
            top_colour[c] = (pal[top][c] as usize).clamp(lo, hi - 1) as u8;
        } else {
            exact = false;
        }
    }
    if !exact {
        // Not expected (see `feasible`); at alpha 255 the colour itself is always exact.
        alphas[top] = 255;
        return Encoded { top, top_colour: x };
    }
    alphas[top] = a8;
    Encoded { top, top_colour }
}

/// Whether some colour composites over `acc` with alpha `a8` to exactly `x`, per channel.
fn feasible(acc: [f32; 3], x: [u8; 3], a8: u8) -> bool {
    // Each colour step moves the result by at most one level, so every value between the
    // darkest and the brightest result is reachable.
    (0..3).all(|c| to_u8(over(acc[c], 0, a8)) <= x[c] && x[c] <= to_u8(over(acc[c], 255, a8)))
}

/// An estimate (in alpha levels) of the least alpha that can reach `x` over `acc`.
fn min_alpha_guess(acc: [f32; 3], x: [u8; 3]) -> usize {
    let mut a = 0.0f64;
    for c in 0..3 {
        let (b, v) = (acc[c] as f64, x[c] as f64 / 255.0);
        let slack = 0.5 / 255.0;
        if v + slack < b {
            a = a.max(1.0 - (v + slack) / b);
        } else if v - slack > b {
            a = a.max((v - slack - b) / (1.0 - b).max(1e-9));
        }
    }
    (a * 255.0).floor() as usize
}

/// An estimate of the colour that composites over `b` with alpha `a8` to `x`.
fn colour_guess(b: f32, x: u8, a8: u8) -> usize {
    let a = a8 as f64 / 255.0;
    let c = (x as f64 / 255.0 - b as f64 * (1.0 - a)) / a * 255.0;
    c.round().clamp(0.0, 256.0) as usize
}

/// The least colour value in 0..=255 for which the non-decreasing `pred` holds (256 if none),
/// searched from `guess`.
fn first_where(pred: impl Fn(usize) -> bool, guess: usize) -> usize {
    let mut c = guess.min(256);
    while c > 0 && pred(c - 1) {
        c -= 1;
    }
    while c < 256 && !pred(c) {
        c += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composite(pal: &[[u8; 3]], alphas: &[u8], e: Encoded) -> [u8; 3] {
        let mut acc = [0f32; 3];
        for (i, &a) in alphas.iter().enumerate() {
            if a == 0 {
                continue;
            }
            let col = if i == e.top { e.top_colour } else { pal[i] };
            for c in 0..3 {
                acc[c] = over(acc[c], col[c], a);
            }
        }
        acc.map(to_u8)
    }

    #[test]
    fn every_mix_of_three_colours_recomposes_exactly() {
        let pal = [[250u8, 248, 240], [20, 30, 140], [230, 40, 30]];
        let mut alphas = [0u8; 3];
        let mut max_dev = 0i32;
        for i in 0..=40 {
            for j in 0..=(40 - i) {
                let w = [i as f64 / 40.0, j as f64 / 40.0, (40 - i - j) as f64 / 40.0];
                let x = [0, 1, 2]
                    .map(|c| (0..3).map(|l| w[l] * pal[l][c] as f64).sum::<f64>().round() as u8);
                let e = encode(x, &pal, &w, &mut alphas);
                assert_eq!(composite(&pal, &alphas, e), x, "w={w:?}");
                assert_eq!(alphas[0], 255);
                if alphas[e.top] > 64 {
                    for (c, p) in e.top_colour.iter().zip(pal[e.top]) {
                        max_dev = max_dev.max((*c as i32 - p as i32).abs());
                    }
                }
            }
        }
        // Where the residual-carrying layer is reasonably opaque its colour barely moves.
        assert!(max_dev <= 3, "{max_dev}");
    }

    #[test]
    fn colours_off_the_palette_are_still_exact() {
        let pal = [[0u8, 0, 0], [255, 255, 255]];
        let mut alphas = [0u8; 2];
        for x in [[255u8, 0, 0], [3, 250, 7], [128, 128, 128], [0, 0, 0]] {
            let g = (x[0] as f64 + x[1] as f64 + x[2] as f64) / 765.0;
            let e = encode(x, &pal, &[1.0 - g, g], &mut alphas);
            assert_eq!(composite(&pal, &alphas, e), x);
        }
        // Only the background: its colour is the pixel's.
        let e = encode([9, 8, 7], &pal, &[1.0, 0.0], &mut alphas);
        assert_eq!((e.top, e.top_colour, alphas), (0, [9, 8, 7], [255, 0]));
    }
}
