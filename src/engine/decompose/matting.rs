//! Matte refinement at full resolution: a colour-guided filter (He, Sun, Tang 2010) that snaps
//! the upsampled segmentation matte to the image's own edges, then a gentle contrast stretch so
//! solid objects get solid alpha while true edges stay soft. Pure functions on f32 planes.

use image::RgbImage;

/// Box-filter sums over a (2r+1)² window with edge clamping, via a summed-area table.
fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut sat = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0f64;
        for x in 0..w {
            row += src[y * w + x] as f64;
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let y0 = y.saturating_sub(r);
        let y1 = (y + r + 1).min(h);
        for x in 0..w {
            let x0 = x.saturating_sub(r);
            let x1 = (x + r + 1).min(w);
            let s = sat[y1 * (w + 1) + x1] - sat[y0 * (w + 1) + x1] - sat[y1 * (w + 1) + x0]
                + sat[y0 * (w + 1) + x0];
            out[y * w + x] = (s / ((y1 - y0) * (x1 - x0)) as f64) as f32;
        }
    }
    out
}

/// Colour-guided filter of `p` (0..1) with the image as guide.
pub fn guided_filter(img: &RgbImage, p: &[f32], r: usize, eps: f32) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let n = w * h;
    let mut ch = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            ch[c][i] = px[c] as f32 / 255.0;
        }
    }
    let mean_i: Vec<Vec<f32>> = ch.iter().map(|c| box_mean(c, w, h, r)).collect();
    let mean_p = box_mean(p, w, h, r);
    let mut cov_ip = Vec::with_capacity(3);
    for c in 0..3 {
        let prod: Vec<f32> = ch[c].iter().zip(p).map(|(a, b)| a * b).collect();
        let m = box_mean(&prod, w, h, r);
        cov_ip.push(
            m.iter()
                .zip(&mean_i[c])
                .zip(&mean_p)
                .map(|((m, mi), mp)| m - mi * mp)
                .collect::<Vec<f32>>(),
        );
    }
    // variances: rr, rg, rb, gg, gb, bb
    let pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];
    let var: Vec<Vec<f32>> = pairs
        .iter()
        .map(|&(a, b)| {
            let prod: Vec<f32> = ch[a].iter().zip(&ch[b]).map(|(x, y)| x * y).collect();
            box_mean(&prod, w, h, r)
                .iter()
                .zip(&mean_i[a])
                .zip(&mean_i[b])
                .map(|((m, ma), mb)| m - ma * mb)
                .collect()
        })
        .collect();
    let mut a = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
    let mut b = vec![0f32; n];
    for i in 0..n {
        let (rr, rg, rb, gg, gb, bb) = (
            var[0][i] + eps,
            var[1][i],
            var[2][i],
            var[3][i] + eps,
            var[4][i],
            var[5][i] + eps,
        );
        // inverse of the symmetric 3×3 covariance
        let i00 = gg * bb - gb * gb;
        let i01 = gb * rb - rg * bb;
        let i02 = rg * gb - gg * rb;
        let i11 = rr * bb - rb * rb;
        let i12 = rb * rg - rr * gb;
        let i22 = rr * gg - rg * rg;
        let det = rr * i00 + rg * i01 + rb * i02;
        let (c0, c1, c2) = (cov_ip[0][i], cov_ip[1][i], cov_ip[2][i]);
        if det.abs() < 1e-12 {
            b[i] = mean_p[i];
            continue;
        }
        let a0 = (i00 * c0 + i01 * c1 + i02 * c2) / det;
        let a1 = (i01 * c0 + i11 * c1 + i12 * c2) / det;
        let a2 = (i02 * c0 + i12 * c1 + i22 * c2) / det;
        a[0][i] = a0;
        a[1][i] = a1;
        a[2][i] = a2;
        b[i] = mean_p[i] - a0 * mean_i[0][i] - a1 * mean_i[1][i] - a2 * mean_i[2][i];
    }
    let ma: Vec<Vec<f32>> = a.iter().map(|c| box_mean(c, w, h, r)).collect();
    let mb = box_mean(&b, w, h, r);
    (0..n)
        .map(|i| {
            (ma[0][i] * ch[0][i] + ma[1][i] * ch[1][i] + ma[2][i] * ch[2][i] + mb[i])
                .clamp(0.0, 1.0)
        })
        .collect()
}

/// Refines a source-resolution matte: guided filter, then a contrast stretch around 0.5 that
/// makes the interior solid and the exterior clear while keeping a soft edge band.
pub fn refine(img: &RgbImage, matte: &[f32]) -> Vec<f32> {
    let side = img.width().max(img.height()) as usize;
    let r = (side / 256).clamp(2, 8);
    let filtered = guided_filter(img, matte, r, 1e-4);
    filtered
        .iter()
        .map(|&a| ((a - 0.1) / 0.8).clamp(0.0, 1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guided_filter_snaps_a_blurry_matte_to_the_image_edge() {
        // left half black, right half white; matte is a blurry ramp centred on the edge
        let (w, h) = (40u32, 8u32);
        let img = RgbImage::from_fn(w, h, |x, _| {
            if x < 20 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let matte: Vec<f32> = (0..w * h)
            .map(|i| ((i % w) as f32 - 12.0).clamp(0.0, 16.0) / 16.0)
            .collect();
        let out = refine(&img, &matte);
        let at = |x: u32| out[(4 * w + x) as usize];
        assert!(at(16) < 0.2, "{}", at(16));
        assert!(at(24) > 0.8, "{}", at(24));
        assert!(at(2) == 0.0 && at(38) == 1.0);
    }

    #[test]
    fn box_mean_of_a_constant_is_the_constant() {
        let v = vec![0.25f32; 30];
        assert!(box_mean(&v, 6, 5, 2)
            .iter()
            .all(|x| (x - 0.25).abs() < 1e-6));
    }
}
