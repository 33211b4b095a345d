//! Telling touching objects apart by their fills. ISNet gives one matte for everything
//! salient, so shapes that touch or overlap come out as one component. Design elements are
//! filled with a flat colour or a linear gradient, which a natural photo almost never is
//! over thousands of pixels: inside a component, a smooth region (neighbours within a few
//! levels) whose colours fit a plane in (x, y) to within 2 levels is a part of its own when
//! it is large enough, not a thin ring (a photo's frame), not black or white (a photo's
//! clipped shadows and highlights are flat too) and set off from the rest of the
//! component by a clear colour edge (a flat patch of a sticker's artwork is not). Flat
//! regions of one fill cut in two by another part are one part. What is left of the
//! component falls into connected pieces, and the large ones are parts too. A flat part is
//! opaque (a fill is, however unsure the matte was of it). Every other pixel of the
//! component (anti-aliased seams, small bits) joins the part it is nearest to, so the parts
//! cover the component exactly. A component with fewer than two parts is left whole.
//! [`holds_flat_object`] and [`flat_share`] look at a whole image the same way: whether a flat
//! object is left for another segmentation pass, and whether the image is a photo.

use std::collections::VecDeque;

use image::RgbImage;

use super::components::Component;

/// Largest difference of any channel between 4-neighbours inside one smooth region.
const SMOOTH_STEP: u8 = 4;
/// Largest RMS distance (levels) of a flat part's colours from their best plane.
const MAX_RESIDUAL: f64 = 2.0;
/// Pixels of a part that count as its interior are at least this far inside it.
const THICKNESS: usize = 3;
/// A flat part's edge against the rest of its component: the pixel this far out differs by
/// at least [`EDGE_CONTRAST`] levels in some channel...
const EDGE_REACH: usize = 3;
const EDGE_CONTRAST: u8 = 24;
/// ...along at least this fraction of that edge.
const EDGE_SHARE: f64 = 0.7;
/// Two flat regions are one fill when each one's plane predicts the other's mean colour to
/// within this many levels.
const SAME_FILL: f64 = 6.0;

/// Splits `comp` (alpha over the image's canvas) into parts: flat ones of at least
/// `min_flat` pixels, other pieces of at least `min_part`; returns it unchanged (one
/// element) when it holds fewer than two.
pub fn split_by_fill(
    img: &RgbImage,
    comp: Component,
    min_flat: usize,
    min_part: usize,
) -> Vec<Component> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let [bx, by, bw, bh] = comp.bbox.map(|v| v as usize);
    let at = |x: usize, y: usize| (by + y) * w + bx + x;
    let in_comp: Vec<bool> = (0..bw * bh)
        .map(|i| comp.alpha[at(i % bw, i / bw)] >= 0.5)
        .collect();
    let px = |i: usize| img.get_pixel((bx + i % bw) as u32, (by + i / bw) as u32).0;

    // smooth regions of the solid part
    let (region, regions) = smooth_regions(&in_comp, bw, bh, &px);

    // flat parts, then the large pieces of what is left
    let mut flats: Vec<(&Vec<usize>, Plane)> = Vec::new();
    for (id, members) in regions.iter().enumerate() {
        if members.len() < min_flat || interior(members, bw, bh) * 2 < members.len() {
            continue;
        }
        let plane = Plane::fit(members, bw, &px);
        if plane.residual <= MAX_RESIDUAL
            && !plane.clipped()
            && set_off(members, id as u32, &region, &in_comp, bw, bh, &px)
        {
            flats.push((members, plane));
        }
    }
    if flats.is_empty() {
        return vec![comp];
    }
    // a flat fill is opaque, however unsure the matte was of it
    let mut comp = comp;
    for (members, _) in &flats {
        for &i in *members {
            let j = at(i % bw, i / bw);
            comp.mass += 1.0 - comp.alpha[j];
            comp.alpha[j] = 1.0;
        }
    }
    // regions of one fill are one part
    let mut part_of: Vec<u32> = (0..flats.len() as u32).collect();
    for a in 0..flats.len() {
        for b in 0..a {
            if part_of[b] == b as u32 && flats[a].1.same_fill(&flats[b].1) {
                part_of[a] = b as u32;
                break;
            }
        }
    }
    let mut owner = vec![u32::MAX; bw * bh];
    let mut parts = 0u32;
    let mut number = vec![u32::MAX; flats.len()];
    for (k, (members, _)) in flats.iter().enumerate() {
        let root = part_of[k] as usize;
        if number[root] == u32::MAX {
            number[root] = parts;
            parts += 1;
        }
        for &i in *members {
            owner[i] = number[root];
        }
    }
    let flat = owner.clone();
    let near_flat = |i: usize| {
        let (x, y) = (i % bw, i / bw);
        (y.saturating_sub(2)..(y + 3).min(bh)).any(|yy| {
            (x.saturating_sub(2)..(x + 3).min(bw)).any(|xx| flat[yy * bw + xx] != u32::MAX)
        })
    };
    let rest: Vec<bool> = (0..bw * bh).map(|i| in_comp[i] && !near_flat(i)).collect();
    let mut seen = vec![false; bw * bh];
    for start in 0..bw * bh {
        if !rest[start] || seen[start] {
            continue;
        }
        let mut members = vec![start];
        seen[start] = true;
        let mut k = 0;
        while k < members.len() {
            let i = members[k];
            k += 1;
            for j in neighbours(i, bw, bh) {
                if rest[j] && !seen[j] {
                    seen[j] = true;
                    members.push(j);
                }
            }
        }
        if members.len() >= min_part {
            for &i in &members {
                owner[i] = parts;
            }
            parts += 1;
        }
    }
    if parts < 2 {
        return vec![comp];
    }

    // everything else in the component joins the nearest part
    let mut queue: VecDeque<usize> = (0..bw * bh).filter(|&i| owner[i] != u32::MAX).collect();
    while let Some(i) = queue.pop_front() {
        for j in neighbours(i, bw, bh) {
            if owner[j] == u32::MAX && comp.alpha[at(j % bw, j / bw)] > 0.0 {
                owner[j] = owner[i];
                queue.push_back(j);
            }
        }
    }
    let mut alphas = vec![vec![0f32; w * h]; parts as usize];
    for (i, &o) in owner.iter().enumerate() {
        // unreachable soft pixels (islands of the matte) go with the first part
        let part = if o == u32::MAX { 0 } else { o as usize };
        let (x, y) = (bx + i % bw, by + i / bw);
        alphas[part][y * w + x] = comp.alpha[at(i % bw, i / bw)];
    }
    let mut out: Vec<Component> = alphas
        .into_iter()
        .map(|a| Component::from_alpha(a, w))
        .collect();
    out.sort_by(|a, b| b.mass.total_cmp(&a.mass).then(a.bbox.cmp(&b.bbox)));
    out
}

/// Whether `img` still shows a flat object: a smooth region of at least `min_size` pixels
/// whose colours fit a plane, thick, and clear of the image border (the background plate
/// reaches the border; a shape on it does not). The cheap look that decides whether another
/// segmentation pass is worth its time.
pub fn holds_flat_object(img: &RgbImage, min_size: usize) -> bool {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let px = |i: usize| img.get_pixel((i % w) as u32, (i / w) as u32).0;
    let (_, regions) = smooth_regions(&vec![true; w * h], w, h, &px);
    regions.iter().any(|members| {
        members.len() >= min_size
            && !members.iter().any(|&i| {
                let (x, y) = (i % w, i / w);
                x == 0 || y == 0 || x + 1 == w || y + 1 == h
            })
            && interior(members, w, h) * 2 >= members.len()
            && Plane::fit(members, w, &px).residual <= MAX_RESIDUAL
    })
}

/// The share of `img`'s pixels in flat fills: smooth regions of at least 0.5% of the image
/// whose colours fit a plane (design plates, shapes, gradients; a photo has next to none).
pub fn flat_share(img: &RgbImage) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let px = |i: usize| img.get_pixel((i % w) as u32, (i / w) as u32).0;
    let (_, regions) = smooth_regions(&vec![true; w * h], w, h, &px);
    let flat: usize = regions
        .iter()
        .filter(|m| m.len() * 200 >= w * h && Plane::fit(m, w, &px).residual <= MAX_RESIDUAL)
        .map(|m| m.len())
        .sum();
    flat as f32 / (w * h) as f32
}

/// 4-connected regions of the `on` pixels in which neighbours differ by at most
/// [`SMOOTH_STEP`] levels: each pixel's region id, and each region's pixels.
fn smooth_regions(
    on: &[bool],
    w: usize,
    h: usize,
    px: &dyn Fn(usize) -> [u8; 3],
) -> (Vec<u32>, Vec<Vec<usize>>) {
    let mut region = vec![u32::MAX; w * h];
    let mut regions: Vec<Vec<usize>> = Vec::new();
    let mut queue = VecDeque::new();
    for start in 0..w * h {
        if !on[start] || region[start] != u32::MAX {
            continue;
        }
        let id = regions.len() as u32;
        let mut members = Vec::new();
        region[start] = id;
        queue.push_back(start);
        while let Some(i) = queue.pop_front() {
            members.push(i);
            let p = px(i);
            for j in neighbours(i, w, h) {
                if on[j] && region[j] == u32::MAX && close(p, px(j)) {
                    region[j] = id;
                    queue.push_back(j);
                }
            }
        }
        regions.push(members);
    }
    (region, regions)
}

fn neighbours(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (i % w, i / w);
    [
        (x > 0).then(|| i - 1),
        (x + 1 < w).then(|| i + 1),
        (y > 0).then(|| i - w),
        (y + 1 < h).then(|| i + w),
    ]
    .into_iter()
    .flatten()
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    (0..3).all(|c| a[c].abs_diff(b[c]) <= SMOOTH_STEP)
}

/// A least-squares plane per channel, c = a·(x − cx) + b·(y − cy) + mean, and the RMS
/// distance of the fitted colours from it over all three channels.
struct Plane {
    centre: (f64, f64),
    mean: [f64; 3],
    slope: [(f64, f64); 3],
    residual: f64,
}

impl Plane {
    fn fit(members: &[usize], w: usize, px: &dyn Fn(usize) -> [u8; 3]) -> Plane {
        // centred coordinates keep the normal matrix well conditioned
        let n = members.len() as f64;
        let (cx, cy) = members.iter().fold((0.0, 0.0), |(sx, sy), &i| {
            (sx + (i % w) as f64, sy + (i / w) as f64)
        });
        let (cx, cy) = (cx / n, cy / n);
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        let mut sc = [[0.0f64; 3]; 3]; // per channel: Σc, Σxc, Σyc
        let mut scc = [0.0f64; 3];
        for &i in members {
            let (x, y) = ((i % w) as f64 - cx, (i / w) as f64 - cy);
            sxx += x * x;
            sxy += x * y;
            syy += y * y;
            for (c, v) in px(i).iter().enumerate() {
                let v = *v as f64;
                sc[c][0] += v;
                sc[c][1] += x * v;
                sc[c][2] += y * v;
                scc[c] += v * v;
            }
        }
        let det = sxx * syy - sxy * sxy;
        let mut plane = Plane {
            centre: (cx, cy),
            mean: [0.0; 3],
            slope: [(0.0, 0.0); 3],
            residual: 0.0,
        };
        let mut sse = 0.0;
        for c in 0..3 {
            let mean = sc[c][0] / n;
            let (a, b) = if det.abs() > 1e-9 {
                (
                    (syy * sc[c][1] - sxy * sc[c][2]) / det,
                    (sxx * sc[c][2] - sxy * sc[c][1]) / det,
                )
            } else {
                (0.0, 0.0)
            };
            // what is left of the variance once the slope terms explain theirs
            sse += (scc[c] - n * mean * mean - a * sc[c][1] - b * sc[c][2]).max(0.0);
            plane.mean[c] = mean;
            plane.slope[c] = (a, b);
        }
        plane.residual = (sse / (3.0 * n)).sqrt();
        plane
    }

    /// Black or white to within a few levels: where a photo ran out of range, not a fill.
    fn clipped(&self) -> bool {
        self.mean.iter().all(|&m| m <= 4.0) || self.mean.iter().all(|&m| m >= 251.0)
    }

    fn at(&self, c: usize, (x, y): (f64, f64)) -> f64 {
        let (a, b) = self.slope[c];
        self.mean[c] + a * (x - self.centre.0) + b * (y - self.centre.1)
    }

    fn same_fill(&self, other: &Plane) -> bool {
        (0..3).all(|c| {
            (self.at(c, other.centre) - other.mean[c]).abs() <= SAME_FILL
                && (other.at(c, self.centre) - self.mean[c]).abs() <= SAME_FILL
        })
    }
}

/// Whether region `id` meets the rest of its component (`in_comp`) along a clear colour
/// edge: looking [`EDGE_REACH`] pixels out from each of its edge pixels that face the
/// component, the colour differs by [`EDGE_CONTRAST`] along [`EDGE_SHARE`] of them. Edges
/// facing outside the component (the transparent surroundings) do not count.
fn set_off(
    members: &[usize],
    id: u32,
    region: &[u32],
    in_comp: &[bool],
    w: usize,
    h: usize,
    px: &dyn Fn(usize) -> [u8; 3],
) -> bool {
    let (mut facing, mut sharp) = (0usize, 0usize);
    for &i in members {
        let (x, y) = ((i % w) as i64, (i / w) as i64);
        for (dx, dy) in [(1i64, 0i64), (-1, 0), (0, 1), (0, -1)] {
            let (nx, ny) = (x + dx, y + dy);
            if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                continue;
            }
            let j = ny as usize * w + nx as usize;
            if region[j] == id || !in_comp[j] {
                continue;
            }
            let r = EDGE_REACH as i64;
            let (fx, fy) = (x + dx * r, y + dy * r);
            if fx < 0 || fy < 0 || fx >= w as i64 || fy >= h as i64 {
                continue;
            }
            let far = fy as usize * w + fx as usize;
            if !in_comp[far] {
                continue;
            }
            facing += 1;
            let (a, b) = (px(i), px(far));
            sharp += usize::from((0..3).any(|c| a[c].abs_diff(b[c]) >= EDGE_CONTRAST));
        }
    }
    // a region that only meets the outside is set off by the matte itself
    facing == 0 || sharp as f64 >= EDGE_SHARE * facing as f64
}

/// How many members lie at least [`THICKNESS`] pixels inside the region along both axes.
fn interior(members: &[usize], w: usize, h: usize) -> usize {
    let mut inside = vec![false; w * h];
    for &i in members {
        inside[i] = true;
    }
    let t = THICKNESS;
    members
        .iter()
        .filter(|&&i| {
            let (x, y) = (i % w, i / w);
            x >= t
                && y >= t
                && x + t < w
                && y + t < h
                && inside[i - t]
                && inside[i + t]
                && inside[i - t * w]
                && inside[i + t * w]
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::decompose::tests::noise;

    #[test]
    fn a_flat_disc_on_a_gradient_square_comes_apart() {
        let (w, h) = (120u32, 100u32);
        let mut img = RgbImage::from_pixel(w, h, image::Rgb([250, 250, 250]));
        let mut alpha = vec![0f32; (w * h) as usize];
        for y in 10..90 {
            for x in 10..70 {
                // a vertical gradient: one level per row
                img.put_pixel(x, y, image::Rgb([40, (y * 2) as u8, 200]));
                alpha[(y * w + x) as usize] = 1.0;
            }
        }
        for y in 20..80 {
            for x in 50..110 {
                if (x as i32 - 80).pow(2) + (y as i32 - 50).pow(2) <= 900 {
                    img.put_pixel(x, y, image::Rgb([230, 40, 40]));
                    alpha[(y * w + x) as usize] = 1.0;
                }
            }
        }
        let comp = Component::from_alpha(alpha, w as usize);
        let mass = comp.mass;
        let parts = split_by_fill(&img, comp, 300, 300);
        assert_eq!(parts.len(), 2);
        let disc = parts
            .iter()
            .find(|p| p.alpha[(50 * w + 95) as usize] > 0.0)
            .unwrap();
        assert_eq!(disc.alpha[(50 * w + 30) as usize], 0.0);
        assert_eq!(disc.alpha[(50 * w + 60) as usize], 1.0, "the disc is whole");
        let total: f32 = parts.iter().map(|p| p.mass).sum();
        assert_eq!(total, mass, "the parts cover the component exactly");
    }

    #[test]
    fn a_photo_in_a_thin_flat_frame_stays_whole() {
        let (w, h) = (100u32, 100u32);
        let mut img = RgbImage::from_pixel(w, h, image::Rgb([0, 0, 0]));
        let mut alpha = vec![0f32; (w * h) as usize];
        for y in 10..90 {
            for x in 10..90 {
                let frame = !(14..86).contains(&x) || !(14..86).contains(&y);
                let v = if frame { 255 } else { noise(x, y) };
                img.put_pixel(x, y, image::Rgb([v, v / 2, v / 3]));
                alpha[(y * w + x) as usize] = 1.0;
            }
        }
        let parts = split_by_fill(&img, Component::from_alpha(alpha, w as usize), 200, 200);
        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn a_flat_shape_left_on_a_plate_or_on_texture_is_seen_and_a_bare_plate_is_not() {
        let (w, h) = (120u32, 100u32);
        let plate = RgbImage::from_pixel(w, h, image::Rgb([30, 120, 200]));
        assert!(
            !holds_flat_object(&plate, 200),
            "the plate reaches the border"
        );
        let texture = RgbImage::from_fn(w, h, |x, y| image::Rgb([noise(x, y), 90, 40]));
        assert!(!holds_flat_object(&texture, 200));
        for base in [plate, texture] {
            let mut img = base.clone();
            for y in 30..70 {
                for x in 40..90 {
                    img.put_pixel(x, y, image::Rgb([240, (100 + y) as u8, 20]));
                }
            }
            assert!(holds_flat_object(&img, 200));
            assert!(!holds_flat_object(&img, 40 * 50 + 1), "smaller than asked");
        }
    }

    #[test]
    fn a_photo_alone_stays_whole() {
        let (w, h) = (80u32, 80u32);
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([noise(x, y), 90, noise(y, x)]));
        let alpha = vec![1f32; (w * h) as usize];
        let parts = split_by_fill(&img, Component::from_alpha(alpha, w as usize), 200, 200);
        assert_eq!(parts.len(), 1);
    }
}
