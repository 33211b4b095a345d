//! The two filters the editing operations share: a separable axis-aligned resampler (scale and
//! translate per axis, Catmull-Rom, widened when shrinking so downscales are anti-aliased) that
//! works in premultiplied alpha so transparent pixels' colours never bleed into edges, and a
//! box blur of one channel used for feathering.
//!
//! Invariants: memory is bounded by the output, not the source (rows are resampled as they are
//! streamed through a window of a few rows); an axis map with scale 1 and an integer offset
//! copies pixels exactly; output outside the written range is left as it was.

use std::collections::VecDeque;

use image::RgbaImage;

/// How samples beyond the readable source range count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Edge {
    /// As transparent pixels: an object's border fades out as it should.
    Transparent,
    /// Not at all (the weights are renormalised): an image's border stays as opaque as it is.
    Clamp,
}

/// One axis of the map. Output coordinate `X` (pixel centres at `i + 0.5`) reads the source at
/// `(X - offset) / scale`; only source indices in `src` are read and only output indices in
/// `dst` are written.
#[derive(Clone, Debug)]
pub(super) struct AxisMap {
    pub src: std::ops::Range<u32>,
    pub dst: std::ops::Range<u32>,
    pub scale: f64,
    pub offset: f64,
    pub edge: Edge,
}

/// Normalised weights of one output sample: source indices `first..first + weights.len()`.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// The Catmull-Rom cubic (B = 0, C = 1/2): interpolating, support 2.
fn catmull_rom(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        (1.5 * x - 2.5) * x * x + 1.0
    } else if x < 2.0 {
        ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    } else {
        0.0
    }
}

/// Taps for every output index in `map.dst` (`None` where nothing readable is in reach).
fn axis_taps(map: &AxisMap) -> Vec<Option<Taps>> {
    // When shrinking, widen the kernel so each output sample averages what it covers.
    let stretch = (1.0 / map.scale).max(1.0);
    let radius = 2.0 * stretch;
    let (lo, hi) = (f64::from(map.src.start), f64::from(map.src.end));
    map.dst
        .clone()
        .map(|i| {
            let u = (f64::from(i) + 0.5 - map.offset) / map.scale;
            if !(u + radius > lo && u - radius < hi) {
                return None;
            }
            let j0 = (u - 0.5 - radius).floor();
            let j1 = (u - 0.5 + radius).ceil();
            let mut total = 0.0;
            let mut kept = Vec::new();
            let mut first = None;
            let mut j = j0;
            while j <= j1 {
                let w = catmull_rom((j + 0.5 - u) / stretch);
                let inside = j >= lo && j < hi;
                if inside || map.edge == Edge::Transparent {
                    total += w;
                }
                if inside {
                    first.get_or_insert(j as usize);
                    kept.push(w);
                }
                j += 1.0;
            }
            let first = first?;
            if total.abs() < 1e-9 {
                return None;
            }
            Some(Taps {
                first,
                weights: kept.iter().map(|w| (w / total) as f32).collect(),
            })
        })
        .collect()
}

/// Resamples `src` through the two axis maps into `out` (straight alpha in and out, filtered in
/// premultiplied alpha). Writes every pixel of `xs.dst × ys.dst`; pixels there that no source
/// sample reaches, or whose alpha rounds to 0, become `[0, 0, 0, 0]`.
pub(super) fn resample_into(src: &RgbaImage, xs: &AxisMap, ys: &AxisMap, out: &mut RgbaImage) {
    let x_taps = axis_taps(xs);
    let y_taps = axis_taps(ys);
    // Rows of `src`, already resampled horizontally: (source row, premultiplied values).
    let mut window: VecDeque<(usize, Vec<[f32; 4]>)> = VecDeque::new();
    let resample_row = |y: usize| -> Vec<[f32; 4]> {
        x_taps
            .iter()
            .map(|taps| {
                let mut acc = [0f32; 4];
                if let Some(t) = taps {
                    for (k, &w) in t.weights.iter().enumerate() {
                        let p = src.get_pixel((t.first + k) as u32, y as u32).0;
                        let a = f32::from(p[3]) / 255.0;
                        for c in 0..3 {
                            acc[c] += w * f32::from(p[c]) / 255.0 * a;
                        }
                        acc[3] += w * a;
                    }
                }
                acc
            })
            .collect()
    };
    for (oy, taps) in ys.dst.clone().zip(&y_taps) {
        let row_out = xs.dst.clone();
        let Some(t) = taps else {
            for ox in row_out {
                out.put_pixel(ox, oy, image::Rgba([0; 4]));
            }
            continue;
        };
        let last = t.first + t.weights.len() - 1;
        if window.front().is_some_and(|(y, _)| *y > t.first) {
            window.clear();
        }
        while window.front().is_some_and(|(y, _)| *y < t.first) {
            window.pop_front();
        }
        let mut next = window.back().map_or(t.first, |(y, _)| y + 1);
        while next <= last {
            window.push_back((next, resample_row(next)));
            next += 1;
        }
        for (col, ox) in row_out.enumerate() {
            let mut acc = [0f32; 4];
            for (&w, (_, row)) in t.weights.iter().zip(&window) {
                for (a, v) in acc.iter_mut().zip(row[col]) {
                    *a += w * v;
                }
            }
            out.put_pixel(ox, oy, image::Rgba(unpremultiply(acc)));
        }
    }
}

/// A premultiplied 0..=1 sample as straight 8-bit RGBA (clamped; alpha 0 → all zero).
fn unpremultiply(p: [f32; 4]) -> [u8; 4] {
    let alpha = (p[3].clamp(0.0, 1.0) * 255.0).round() as u8;
    if alpha == 0 {
        return [0; 4];
    }
    let c = |v: f32| ((v / p[3]).clamp(0.0, 1.0) * 255.0).round() as u8;
    [c(p[0]), c(p[1]), c(p[2]), alpha]
}

/// Blurs a `w × h` plane with three box passes per axis whose radii add up to `radius` (so the
/// kernel reaches exactly `radius` pixels, a close approximation of a Gaussian). Outside the
/// plane, the sides flagged in `clamp` (`[left, right, top, bottom]`) repeat their edge value
/// and the others read 0.
pub(super) fn box_blur(plane: &mut [f32], w: usize, h: usize, radius: usize, clamp: [bool; 4]) {
    if w == 0 || h == 0 || radius == 0 {
        return;
    }
    let radii = [radius.div_ceil(3), (radius + 1) / 3, radius / 3];
    let mut line = Vec::new();
    for r in radii.into_iter().filter(|&r| r > 0) {
        for y in 0..h {
            line.clear();
            line.extend_from_slice(&plane[y * w..(y + 1) * w]);
            blur_line(&line, r, [clamp[0], clamp[1]], |x, v| plane[y * w + x] = v);
        }
        for x in 0..w {
            line.clear();
            line.extend((0..h).map(|y| plane[y * w + x]));
            blur_line(&line, r, [clamp[2], clamp[3]], |y, v| plane[y * w + x] = v);
        }
    }
}

/// Running-sum box filter of radius `r` over `line`, results handed to `put`.
fn blur_line(line: &[f32], r: usize, clamp: [bool; 2], mut put: impl FnMut(usize, f32)) {
    let n = line.len() as isize;
    let get = |i: isize| -> f64 {
        if i < 0 {
            if clamp[0] {
                f64::from(line[0])
            } else {
                0.0
            }
        } else if i >= n {
            if clamp[1] {
                f64::from(line[line.len() - 1])
            } else {
                0.0
            }
        } else {
            f64::from(line[i as usize])
        }
    };
    let r = r as isize;
    let width = (2 * r + 1) as f64;
    let mut sum: f64 = (-r..=r).map(get).sum();
    for i in 0..n {
        put(i as usize, (sum / width) as f32);
        sum += get(i + r + 1) - get(i - r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    fn map(n: u32, scale: f64, offset: f64, edge: Edge) -> AxisMap {
        AxisMap {
            src: 0..n,
            dst: 0..n,
            scale,
            offset,
            edge,
        }
    }

    #[test]
    fn unit_scale_integer_offset_is_exact() {
        let src = RgbaImage::from_fn(9, 7, |x, y| Rgba([x as u8 * 20, y as u8 * 30, 7, 100]));
        let mut out = RgbaImage::new(9, 7);
        let (xs, ys) = (
            map(9, 1.0, 2.0, Edge::Transparent),
            map(7, 1.0, -1.0, Edge::Clamp),
        );
        resample_into(&src, &xs, &ys, &mut out);
        for (x, y, p) in out.enumerate_pixels() {
            let (sx, sy) = (x as i32 - 2, y as i32 + 1);
            if (0..9).contains(&sx) && (0..7).contains(&sy) {
                assert_eq!(p, src.get_pixel(sx as u32, sy as u32), "({x}, {y})");
            } else {
                assert_eq!(p.0, [0; 4]);
            }
        }
    }

    #[test]
    fn downscale_averages() {
        // A one-pixel checkerboard shrunk 4× is flat grey, not aliased stripes.
        let src = RgbaImage::from_fn(64, 64, |x, y| {
            let v = if (x + y) % 2 == 0 { 0 } else { 255 };
            Rgba([v, v, v, 255])
        });
        let mut out = RgbaImage::new(16, 16);
        let m = AxisMap {
            src: 0..64,
            dst: 0..16,
            scale: 0.25,
            offset: 0.0,
            edge: Edge::Clamp,
        };
        resample_into(&src, &m, &m, &mut out);
        for p in out.pixels() {
            assert!(p.0[0].abs_diff(128) <= 6 && p.0[3] == 255, "{p:?}");
        }
    }

    #[test]
    fn blur_keeps_interior_and_softens_edges() {
        let (w, h) = (20, 10);
        let mut plane: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 10 { 255.0 } else { 0.0 })
            .collect();
        box_blur(&mut plane, w, h, 4, [true; 4]);
        assert_eq!(plane[2], 255.0);
        assert_eq!(plane[w - 1], 0.0);
        assert!(plane[9] > 127.0 && plane[9] < 255.0, "{}", plane[9]);
        assert!(plane[10] > 0.0 && plane[10] < 128.0, "{}", plane[10]);
        // Zero padding on the left fades the first column.
        let mut flat = vec![255.0f32; 8];
        box_blur(&mut flat, 8, 1, 2, [false, true, true, true]);
        assert!(flat[0] < 255.0 && flat[7] == 255.0);
    }
}
