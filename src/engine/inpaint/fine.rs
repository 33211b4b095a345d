//! The fine levels of a large fill: above a pixel budget
//! ([`super::PatchMatchOptions::full_search_pixels`]) the pyramid is kept in `u8` and each
//! level is refined from the coarser one instead of solved again. The coarser field is
//! scaled up and the whole hole is rebuilt from it with this level's own pixels (one vote:
//! sharp texture, no search). Then only a band of the hole along its edge, where the fill
//! meets real pixels, gets a few PatchMatch iterations. That search is local: propagation,
//! and random candidates within a few pixels of the match the coarser level chose. A 24 MP
//! photo is thus never searched whole at full resolution, and every array is sized to the
//! hole's bounding box (plus a margin), not to the image.
//!
//! Invariants: known pixels are never written; a source patch lies wholly inside the image
//! and outside the hole, so votes read known pixels only (which is why a large vote can run
//! on every core and still give the same result); all randomness comes from the caller's
//! seeded [`Rng`].

use image::{GrayImage, RgbImage};

use super::patchmatch::{Geometry, Nnf, Rng, NONE};
use super::plane::Plane;

/// Width of the refined band, in patch radii, measured from the hole's edge.
const BAND_RADII: usize = 2;
/// Hole pixels above which a vote is shared out among the cores.
const PARALLEL_VOTE: usize = 1 << 16;
/// First radius of the local random search, in pixels of the level.
const LOCAL_SEARCH: usize = 4;
/// The rebuild from the scaled-up field votes with the patches centred within this many
/// pixels: that field is coherent (neighbours map to neighbours) almost everywhere, so a
/// wider vote would mostly average copies of the same pixel, at twice the cost; 5 × 5
/// still blends the seams where it is not.
const REBUILD_REACH: usize = 2;

/// One fine level: interleaved `u8` RGB and a known flag per pixel.
pub(super) struct Fine {
    pub w: usize,
    pub h: usize,
    pub rgb: Vec<u8>,
    pub known: Vec<bool>,
}

impl Fine {
    /// Known pixels from `img`, hole where `mask > 0` (hole values zeroed, never read).
    pub fn from_image(img: &RgbImage, mask: &GrayImage) -> Self {
        let known: Vec<bool> = mask.as_raw().iter().map(|&m| m == 0).collect();
        let mut rgb = img.as_raw().clone();
        for (px, &k) in rgb.chunks_exact_mut(3).zip(&known) {
            if !k {
                px.fill(0);
            }
        }
        Fine {
            w: img.width() as usize,
            h: img.height() as usize,
            rgb,
            known,
        }
    }

    pub fn pixels(&self) -> usize {
        self.w * self.h
    }

    /// Half-size level, as [`Plane::downsample`]: known when any 2×2 child is, with the
    /// rounded mean of the known children.
    pub fn halve(&self) -> Fine {
        let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut rgb = vec![0u8; cw * ch * 3];
        let mut known = vec![false; cw * ch];
        for cy in 0..ch {
            for cx in 0..cw {
                let (mut sum, mut n) = ([0u32; 3], 0u32);
                for y in (2 * cy)..(2 * cy + 2).min(self.h) {
                    for x in (2 * cx)..(2 * cx + 2).min(self.w) {
                        let i = y * self.w + x;
                        if self.known[i] {
                            for (s, v) in sum.iter_mut().zip(&self.rgb[3 * i..3 * i + 3]) {
                                *s += u32::from(*v);
                            }
                            n += 1;
                        }
                    }
                }
                if let Some(n) = std::num::NonZeroU32::new(n) {
                    let ci = cy * cw + cx;
                    known[ci] = true;
                    for (o, s) in rgb[3 * ci..3 * ci + 3].iter_mut().zip(sum) {
                        *o = ((s + n.get() / 2) / n) as u8;
                    }
                }
            }
        }
        Fine {
            w: cw,
            h: ch,
            rgb,
            known,
        }
    }

    pub fn to_plane(&self) -> Plane {
        Plane {
            w: self.w,
            h: self.h,
            rgb: self.rgb.iter().map(|&v| f32::from(v)).collect(),
            known: self.known.clone(),
        }
    }

    /// The completed working level, back in `u8` (all pixels known from here on).
    pub fn from_plane(plane: &Plane) -> Fine {
        Fine {
            w: plane.w,
            h: plane.h,
            rgb: plane.rgb.iter().map(|&v| super::to_u8(v)).collect(),
            known: vec![true; plane.w * plane.h],
        }
    }

    /// Makes every known pixel within `d` pixels (a square) of a hole a hole too, keeping
    /// at least one known pixel (as [`Plane::widen_holes`]).
    pub fn widen_holes(&mut self, d: usize) {
        if d == 0 {
            return;
        }
        let hole: Vec<bool> = self.known.iter().map(|k| !k).collect();
        let widened = dilate(&hole, self.w, self.h, d);
        if widened.iter().any(|h| !h) {
            self.known = widened.iter().map(|h| !h).collect();
        }
    }
}

/// A nearest-neighbour field over a rectangle of a level: the source centre (an index into
/// the level) of each target, [`NONE`] elsewhere.
pub(super) struct Field {
    /// The level's width.
    lw: usize,
    x0: usize,
    y0: usize,
    rw: usize,
    rh: usize,
    src: Vec<u32>,
}

impl Field {
    pub fn whole(nnf: Nnf) -> Field {
        Field {
            lw: nnf.w,
            x0: 0,
            y0: 0,
            rw: nnf.w,
            rh: nnf.h,
            src: nnf.src,
        }
    }

    pub fn empty(lw: usize) -> Field {
        Field {
            lw,
            x0: 0,
            y0: 0,
            rw: 0,
            rh: 0,
            src: Vec::new(),
        }
    }

    /// The source of target `(x, y)` as `(sx, sy)` in the level, if any.
    fn get(&self, x: usize, y: usize) -> Option<(usize, usize)> {
        if x < self.x0 || y < self.y0 || x >= self.x0 + self.rw || y >= self.y0 + self.rh {
            return None;
        }
        let s = self.src[(y - self.y0) * self.rw + x - self.x0];
        (s != NONE).then(|| (s as usize % self.lw, s as usize / self.lw))
    }
}

/// The rectangle a level's work happens in, and the flags on it.
struct Region {
    x0: usize,
    y0: usize,
    rw: usize,
    rh: usize,
    /// Patch centres whose patch overlaps the hole (the targets; never sources).
    near_hole: Vec<bool>,
}

impl Region {
    fn index(&self, x: usize, y: usize) -> Option<usize> {
        (x >= self.x0 && y >= self.y0 && x < self.x0 + self.rw && y < self.y0 + self.rh)
            .then(|| (y - self.y0) * self.rw + x - self.x0)
    }
}

/// Refines `level` (its hole not yet filled) from `coarse` (the completed level half its
/// size) and that level's `field`; returns this level's field.
pub(super) fn refine(
    level: &mut Fine,
    coarse: &Fine,
    field: &Field,
    r: usize,
    iterations: u32,
    rng: &mut Rng,
) -> Field {
    let (w, h) = (level.w, level.h);
    let band_w = BAND_RADII * r + 1;
    let Some((x0, y0, x1, y1)) = hole_box(&level.known, w, h, r + band_w) else {
        return Field::empty(w);
    };
    let (rw, rh) = (x1 - x0 + 1, y1 - y0 + 1);
    let at = |i: usize| (x0 + i % rw, y0 + i / rw);
    let global = |i: usize| {
        let (x, y) = at(i);
        y * w + x
    };
    let hole: Vec<bool> = (0..rw * rh).map(|i| !level.known[global(i)]).collect();
    let region = Region {
        x0,
        y0,
        rw,
        rh,
        near_hole: dilate(&hole, rw, rh, r),
    };
    let valid = |s: usize| {
        let (sx, sy) = (s % w, s / w);
        sx >= r
            && sy >= r
            && sx + r < w
            && sy + r < h
            && region.index(sx, sy).is_none_or(|j| !region.near_hole[j])
    };

    // Hole pixels start from the coarser level (nearest), then are rebuilt from its field.
    for i in (0..rw * rh).filter(|&i| hole[i]) {
        let (x, y) = at(i);
        let c = 3 * ((y / 2).min(coarse.h - 1) * coarse.w + (x / 2).min(coarse.w - 1));
        let g = global(i);
        level.rgb[3 * g..3 * g + 3].copy_from_slice(&coarse.rgb[c..c + 3]);
    }
    let mut src = vec![NONE; rw * rh];
    for i in (0..rw * rh).filter(|&i| region.near_hole[i]) {
        let (x, y) = at(i);
        if let Some((sx, sy)) = field.get(x / 2, y / 2) {
            let s = (2 * sy + y % 2) * w + 2 * sx + x % 2;
            if 2 * sx + x % 2 < w && 2 * sy + y % 2 < h && valid(s) {
                src[i] = s as u32;
            }
        }
    }
    let geo = Geometry {
        w,
        h,
        r,
        guide: None,
        channels: 3,
    };
    let all_holes: Vec<usize> = (0..rw * rh).filter(|&i| hole[i]).collect();
    let ones = vec![1.0f32; rw * rh];
    vote(
        &geo,
        &region,
        &mut level.rgb,
        &all_holes,
        &src,
        &ones,
        REBUILD_REACH,
    );

    // The band: hole pixels within `band_w` of a known pixel, and the targets over them.
    let known_near = dilate(&hole.iter().map(|h| !h).collect::<Vec<_>>(), rw, rh, band_w);
    let band: Vec<bool> = (0..rw * rh).map(|i| hole[i] && known_near[i]).collect();
    let band_holes: Vec<usize> = (0..rw * rh).filter(|&i| band[i]).collect();
    let over_band = dilate(&band, rw, rh, r);
    let targets: Vec<usize> = (0..rw * rh)
        .filter(|&i| over_band[i] && region.near_hole[i])
        .collect();
    let mut dist = vec![u32::MAX; rw * rh];
    let mut weight = vec![0.0f32; rw * rh];
    for it in 0..iterations {
        for &i in &targets {
            dist[i] = match src[i] {
                NONE => u32::MAX,
                s => geo.distance(&level.rgb, global(i), s as usize, u32::MAX),
            };
        }
        let forward = it % 2 == 0;
        let order: Box<dyn Iterator<Item = &usize>> = if forward {
            Box::new(targets.iter())
        } else {
            Box::new(targets.iter().rev())
        };
        for &i in order {
            improve(
                &geo, &region, &level.rgb, i, forward, &mut src, &mut dist, &valid, rng,
            );
        }
        set_weights(&targets, &dist, &mut weight);
        vote(&geo, &region, &mut level.rgb, &band_holes, &src, &weight, r);
    }
    Field {
        lw: w,
        x0,
        y0,
        rw,
        rh,
        src,
    }
}

/// One PatchMatch step for target `i` (a region index): propagation from the neighbour
/// visited before it, then random candidates around the best at radii halving from
/// [`LOCAL_SEARCH`]; a target with no source yet looks around itself, farther and farther.
#[allow(clippy::too_many_arguments)]
fn improve(
    geo: &Geometry,
    region: &Region,
    rgb: &[u8],
    i: usize,
    forward: bool,
    src: &mut [u32],
    dist: &mut [u32],
    valid: &dyn Fn(usize) -> bool,
    rng: &mut Rng,
) {
    let Geometry { w, h, r, .. } = *geo;
    let rw = region.rw;
    let (tx, ty) = (region.x0 + i % rw, region.y0 + i / rw);
    let t = ty * w + tx;
    let (mut best, mut best_d) = (src[i], dist[i]);
    let consider = |cx: isize, cy: isize, best: &mut u32, best_d: &mut u32| {
        if cx < 0 || cy < 0 || cx >= w as isize || cy >= h as isize {
            return;
        }
        let c = cy as usize * w + cx as usize;
        if c as u32 == *best || !valid(c) {
            return;
        }
        let d = geo.distance(rgb, t, c, *best_d);
        if d < *best_d {
            (*best, *best_d) = (c as u32, d);
        }
    };
    let step: isize = if forward { 1 } else { -1 };
    let (itx, ity) = (tx as isize, ty as isize);
    for (nx, ny) in [(itx - step, ity), (itx, ity - step)] {
        if nx < 0 || ny < 0 {
            continue;
        }
        let Some(j) = region.index(nx as usize, ny as usize) else {
            continue;
        };
        if src[j] != NONE {
            let (sx, sy) = (
                (src[j] as usize % w) as isize,
                (src[j] as usize / w) as isize,
            );
            consider(sx + itx - nx, sy + ity - ny, &mut best, &mut best_d);
        }
    }
    let mut radius = 8usize;
    while best == NONE && radius < 2 * w.max(h) {
        for _ in 0..4 {
            let span = 2 * radius + 1;
            let cx = itx + rng.below(span) as isize - radius as isize;
            let cy = ity + rng.below(span) as isize - radius as isize;
            consider(cx, cy, &mut best, &mut best_d);
        }
        radius *= 2;
    }
    if best != NONE {
        let mut radius = LOCAL_SEARCH;
        while radius >= 1 {
            let (bx, by) = ((best as usize % w) as isize, (best as usize / w) as isize);
            let span = 2 * radius + 1;
            let cx = (bx + rng.below(span) as isize - radius as isize)
                .clamp(r as isize, (w - 1 - r) as isize);
            let cy = (by + rng.below(span) as isize - radius as isize)
                .clamp(r as isize, (h - 1 - r) as isize);
            consider(cx, cy, &mut best, &mut best_d);
            radius /= 2;
        }
    }
    src[i] = best;
    dist[i] = best_d;
}

/// Vote weights `exp(-d / 2σ²)`, σ² the 75th percentile of the distances (as the full
/// search's); targets without a source get none.
fn set_weights(targets: &[usize], dist: &[u32], weight: &mut [f32]) {
    let mut ds: Vec<u32> = targets
        .iter()
        .map(|&i| dist[i])
        .filter(|&d| d != u32::MAX)
        .collect();
    if ds.is_empty() {
        return;
    }
    let k = ds.len() * 3 / 4;
    let (_, p75, _) = ds.select_nth_unstable(k);
    let inv = 1.0 / (2.0 * (*p75).max(1) as f32);
    for &i in targets {
        weight[i] = match dist[i] {
            u32::MAX => 0.0,
            d => (-(d as f32) * inv).exp().max(f32::MIN_POSITIVE),
        };
    }
}

/// Re-estimates the hole pixels `holes` (region indices) as the weighted mean of what the
/// target patches centred within `reach` of each propose; a pixel none of them covers with
/// a source keeps its value.
fn vote(
    geo: &Geometry,
    region: &Region,
    rgb: &mut [u8],
    holes: &[usize],
    src: &[u32],
    weight: &[f32],
    reach: usize,
) {
    let (w, r, rw) = (geo.w, reach.min(geo.r), region.rw);
    let view: &[u8] = rgb;
    let propose = |p: usize| -> Option<[u8; 3]> {
        let (px, py) = (region.x0 + p % rw, region.y0 + p / rw);
        let (mut acc, mut total) = ([0.0f32; 3], 0.0f32);
        for ty in py.saturating_sub(r).max(region.y0)..=(py + r).min(region.y0 + region.rh - 1) {
            for tx in px.saturating_sub(r).max(region.x0)..=(px + r).min(region.x0 + rw - 1) {
                let j = (ty - region.y0) * rw + tx - region.x0;
                let (s, wt) = (src[j], weight[j]);
                if s == NONE || wt <= 0.0 {
                    continue;
                }
                // the source pixel at the same offset from the source centre
                let (sx, sy) = ((s as usize % w) as isize, (s as usize / w) as isize);
                let qx = sx + px as isize - tx as isize;
                let qy = sy + py as isize - ty as isize;
                let q = qy as usize * w + qx as usize;
                for (a, v) in acc.iter_mut().zip(&view[3 * q..3 * q + 3]) {
                    *a += wt * f32::from(*v);
                }
                total += wt;
            }
        }
        (total > 0.0).then(|| acc.map(|a| (a / total).round().clamp(0.0, 255.0) as u8))
    };
    // Votes read known pixels only (sources are wholly known), so the hole pixels can be
    // proposed in parallel and written after: the result is the same for any thread count.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let proposals: Vec<Option<[u8; 3]>> = if threads < 2 || holes.len() < PARALLEL_VOTE {
        holes.iter().map(|&p| propose(p)).collect()
    } else {
        let chunk = holes.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = holes
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|&p| propose(p)).collect::<Vec<_>>())
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().expect("a vote thread panicked"))
                .collect()
        })
    };
    for (&p, v) in holes.iter().zip(proposals) {
        if let Some(v) = v {
            let g = 3 * ((region.y0 + p / rw) * w + region.x0 + p % rw);
            rgb[g..g + 3].copy_from_slice(&v);
        }
    }
}

/// The bounding box `(x0, y0, x1, y1)` (inclusive) of the hole grown by `margin` on every
/// side and clipped to the `w × h` grid, if there is a hole.
pub(super) fn hole_box(
    known: &[bool],
    w: usize,
    h: usize,
    margin: usize,
) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        let row = &known[y * w..(y + 1) * w];
        let Some(first) = row.iter().position(|k| !k) else {
            continue;
        };
        let last = row.iter().rposition(|k| !k).unwrap_or(first);
        (x0, x1, y0, y1) = (x0.min(first), x1.max(last), y0.min(y), y);
    }
    (x0 <= x1 && y0 <= y1).then(|| {
        (
            x0.saturating_sub(margin),
            y0.saturating_sub(margin),
            (x1 + margin).min(w - 1),
            (y1 + margin).min(h - 1),
        )
    })
}

/// `true` wherever a `true` of `mask` lies within `d` pixels (a square, clipped to the
/// `w × h` grid): two passes of running counts, `O(w·h)` whatever `d`.
pub(crate) fn dilate(mask: &[bool], w: usize, h: usize, d: usize) -> Vec<bool> {
    let mut rows = vec![false; w * h];
    for y in 0..h {
        let row = &mask[y * w..(y + 1) * w];
        let mut count = row[..d.min(w)].iter().filter(|&&m| m).count();
        for x in 0..w {
            if x + d < w && row[x + d] {
                count += 1;
            }
            if x > d && row[x - d - 1] {
                count -= 1;
            }
            rows[y * w + x] = count > 0;
        }
    }
    let mut out = vec![false; w * h];
    for x in 0..w {
        let mut count = (0..d.min(h)).filter(|&y| rows[y * w + x]).count();
        for y in 0..h {
            if y + d < h && rows[(y + d) * w + x] {
                count += 1;
            }
            if y > d && rows[(y - d - 1) * w + x] {
                count -= 1;
            }
            out[y * w + x] = count > 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dilate_matches_brute_force() {
        let (w, h) = (13, 9);
        let mask: Vec<bool> = (0..w * h).map(|i| (i * 7919) % 23 == 0).collect();
        for d in 0..5 {
            let fast = dilate(&mask, w, h, d);
            for y in 0..h {
                for x in 0..w {
                    let slow = (y.saturating_sub(d)..=(y + d).min(h - 1)).any(|yy| {
                        (x.saturating_sub(d)..=(x + d).min(w - 1)).any(|xx| mask[yy * w + xx])
                    });
                    assert_eq!(fast[y * w + x], slow, "d={d} ({x},{y})");
                }
            }
        }
    }

    #[test]
    fn halve_matches_the_plane_pyramid() {
        let (w, h) = (9usize, 7usize);
        let img = RgbImage::from_fn(w as u32, h as u32, |x, y| {
            image::Rgb([(x * 25) as u8, (y * 30) as u8, ((x + y) * 9) as u8])
        });
        let mask = GrayImage::from_fn(w as u32, h as u32, |x, y| {
            image::Luma([u8::from((2..6).contains(&x) && (1..4).contains(&y)) * 255])
        });
        let fine = Fine::from_image(&img, &mask).halve();
        let plane = Plane::from_image(&img, &mask).downsample();
        assert_eq!((fine.w, fine.h), (plane.w, plane.h));
        assert_eq!(fine.known, plane.known);
        for (a, b) in fine.rgb.iter().zip(&plane.rgb) {
            assert!((f32::from(*a) - b).abs() <= 0.5, "{a} vs {b}");
        }
    }
}
