//! Perspective crops for text recognition: [`warp_quad_rgb8`] samples a quadrilateral into
//! an upright rectangle the way PP-OCR's `get_rotate_crop_image` does with OpenCV
//! (`getPerspectiveTransform` + `warpPerspective(…, INTER_CUBIC, BORDER_REPLICATE)`): source
//! positions quantised to 1/32 px, Keys cubic weights with a = −0.75, borders replicated.
//!
//! Images are packed RGB rows. Nothing here panics on any input; degenerate quads give
//! `None`.

/// The homography taking `from[i]` to `to[i]` (row-major 3×3, `h[8] = 1`), or `None` when
/// the points are degenerate.
pub(crate) fn homography(from: [[f64; 2]; 4], to: [[f64; 2]; 4]) -> Option<[f64; 9]> {
    // Solve the 8×8 system of OpenCV's getPerspectiveTransform by Gaussian elimination.
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let [x, y] = from[i];
        let [u, v] = to[i];
        a[i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[i + 4] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = a[row][col] / a[col][col];
                if f != 0.0 {
                    let pivot_row = a[col];
                    for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                        *x -= f * p;
                    }
                }
            }
        }
    }
    let mut h = [0.0f64; 9];
    for i in 0..8 {
        h[i] = a[i][8] / a[i][i];
    }
    h[8] = 1.0;
    Some(h)
}

/// OpenCV's `interpolateCubic` weights for taps at −1, 0, 1, 2 around fraction `x`.
fn cubic_weights(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let w0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let w2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// Samples the quadrilateral `quad` (corners top-left, top-right, bottom-right,
/// bottom-left, in source pixels) into an upright `ow × oh` RGB image: destination corner
/// `(0,0)`, `(ow,0)`, `(ow,oh)`, `(0,oh)` map to the quad's corners; bicubic, borders
/// replicated. `None` when the quad is degenerate.
pub(crate) fn warp_quad_rgb8(
    src: &[u8],
    sw: usize,
    sh: usize,
    quad: [[f32; 2]; 4],
    ow: usize,
    oh: usize,
) -> Option<Vec<u8>> {
    if sw == 0 || sh == 0 || ow == 0 || oh == 0 || src.len() < sw * sh * 3 {
        return None;
    }
    let rect = [
        [0.0, 0.0],
        [ow as f64, 0.0],
        [ow as f64, oh as f64],
        [0.0, oh as f64],
    ];
    let q = quad.map(|[x, y]| [x as f64, y as f64]);
    let h = homography(rect, q)?;
    let weights: Vec<[f32; 4]> = (0..32).map(|i| cubic_weights(i as f32 / 32.0)).collect();
    let clamp_x = |x: i64| x.clamp(0, sw as i64 - 1) as usize;
    let clamp_y = |y: i64| y.clamp(0, sh as i64 - 1) as usize;
    let mut out = vec![0u8; ow * oh * 3];
    for v in 0..oh {
        for u in 0..ow {
            let (uf, vf) = (u as f64, v as f64);
            let w = h[6] * uf + h[7] * vf + h[8];
            let w = if w.abs() < 1e-12 { 1e-12 } else { 1.0 / w };
            // Fixed point with 5 fractional bits, as OpenCV's INTER_TAB_SIZE = 32.
            let x = (((h[0] * uf + h[1] * vf + h[2]) * w * 32.0).round() as i64)
                .clamp(i32::MIN as i64, i32::MAX as i64);
            let y = (((h[3] * uf + h[4] * vf + h[5]) * w * 32.0).round() as i64)
                .clamp(i32::MIN as i64, i32::MAX as i64);
            let (x0, y0) = (x >> 5, y >> 5);
            let (wx, wy) = (weights[(x & 31) as usize], weights[(y & 31) as usize]);
            let mut acc = [0.0f32; 3];
            for (j, wyj) in wy.iter().enumerate() {
                let row = clamp_y(y0 - 1 + j as i64) * sw;
                for (i, wxi) in wx.iter().enumerate() {
                    let at = (row + clamp_x(x0 - 1 + i as i64)) * 3;
                    let k = wyj * wxi;
                    acc[0] += src[at] as f32 * k;
                    acc[1] += src[at + 1] as f32 * k;
                    acc[2] += src[at + 2] as f32 * k;
                }
            }
            let o = (v * ow + u) * 3;
            for c in 0..3 {
                out[o + c] = acc[c].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homography_maps_corners() {
        let from = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]];
        let to = [[3.0, 4.0], [23.0, 6.0], [21.0, 16.0], [2.0, 14.0]];
        let h = homography(from, to).expect("non-degenerate");
        for (f, t) in from.iter().zip(to) {
            let w = h[6] * f[0] + h[7] * f[1] + h[8];
            let x = (h[0] * f[0] + h[1] * f[1] + h[2]) / w;
            let y = (h[3] * f[0] + h[4] * f[1] + h[5]) / w;
            assert!((x - t[0]).abs() < 1e-9 && (y - t[1]).abs() < 1e-9);
        }
        assert!(homography(from, [[1.0, 1.0]; 4]).is_none());
    }

    #[test]
    fn cubic_weights_sum_to_one_and_interpolate() {
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
        for i in 0..32 {
            let w = cubic_weights(i as f32 / 32.0);
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let w = cubic_weights(0.5);
        assert!((w[1] - 0.59375).abs() < 1e-6 && (w[0] + 0.09375).abs() < 1e-6);
    }

    #[test]
    fn warp_of_an_axis_aligned_quad_is_a_crop() {
        let (sw, sh) = (8usize, 6usize);
        let src: Vec<u8> = (0..sw * sh)
            .flat_map(|i| [i as u8, (i * 2) as u8, 7])
            .collect();
        let quad = [[2.0, 1.0], [6.0, 1.0], [6.0, 4.0], [2.0, 4.0]];
        let out = warp_quad_rgb8(&src, sw, sh, quad, 4, 3).expect("warp");
        for v in 0..3 {
            for u in 0..4 {
                let s = ((1 + v) * sw + 2 + u) * 3;
                assert_eq!(&out[(v * 4 + u) * 3..(v * 4 + u) * 3 + 3], &src[s..s + 3]);
            }
        }
    }
}
