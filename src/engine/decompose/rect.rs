//! Framed photos: snapping an object to the rectangle its image's edges draw. A photo placed
//! in a design is an opaque rectangle, but ISNet mattes what is salient *in* the photo (the
//! person, the cup), not the photo's frame. Around each object this looks for four straight
//! edges — rows and columns along which most neighbouring pixels change colour sharply —
//! that enclose it; when it finds all four (a side may be the canvas border where the object
//! already reaches it), the object becomes that rectangle, opaque. Natural photos rarely
//! hold a subject inside four such edges, and when no full set is found nothing changes.

use image::RgbImage;

use super::components::Component;

/// Two pixels across an edge differ by at least this much in some channel...
const CONTRAST: u8 = 20;
/// ...along at least this fraction of the side.
const STRAIGHT: f32 = 0.75;
/// The rectangle may be at most this many times the object's solid area (the salient part
/// of a photo is often a third of it).
const MAX_GROWTH: f32 = 4.0;
/// How far beyond the object's solid box a side is looked for, as a fraction of the box.
const REACH: f32 = 0.6;

/// `Ok`: `comp` as the opaque rectangle enclosing it, when four straight edges draw one,
/// with `cut` (0..1, the text lifted over it) taken out; `Err`: `comp` unchanged.
pub fn snap_to_frame(img: &RgbImage, comp: Component, cut: &[f32]) -> Result<Component, Component> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let Some(solid_box) = solid_bbox(&comp.alpha, w, h) else {
        return Err(comp);
    };
    let solid = comp.alpha.iter().filter(|a| **a >= 0.5).count();
    let Some([x0, y0, x1, y1]) = find_frame(img, solid_box) else {
        return Err(comp);
    };
    let area = (x1 - x0) * (y1 - y0);
    if area as f32 > MAX_GROWTH * solid as f32 {
        return Err(comp);
    }
    // the object must lie inside the frame
    let inside = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| y * w + x))
        .filter(|&i| comp.alpha[i] >= 0.5)
        .count();
    if (inside as f32) < 0.95 * solid as f32 {
        return Err(comp);
    }
    let mut alpha = vec![0f32; w * h];
    let mut mass = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            let a = 1.0 - cut[y * w + x];
            alpha[y * w + x] = a;
            mass += a;
        }
    }
    Ok(Component {
        alpha,
        mass,
        bbox: [x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32],
    })
}

/// `[x0, y0, x1, y1)` of the pixels with alpha ≥ 0.5.
fn solid_bbox(alpha: &[f32], w: usize, h: usize) -> Option<[usize; 4]> {
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (i, a) in alpha.iter().enumerate() {
        if *a >= 0.5 {
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
    }
    (x1 > x0 && y1 > y0).then_some([x0, y0, x1, y1])
}

/// Four straight edges enclosing `[x0, y0, x1, y1)`, refined twice (each side's span comes
/// from the others).
fn find_frame(img: &RgbImage, start: [usize; 4]) -> Option<[usize; 4]> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut r = start;
    for _ in 0..2 {
        let [x0, y0, x1, y1] = r;
        let reach_y = ((y1 - y0) as f32 * REACH) as usize + 2;
        let reach_x = ((x1 - x0) as f32 * REACH) as usize + 2;
        // a side at y is the boundary between rows y - 1 and y
        let top = best(y0.saturating_sub(reach_y)..=(y0 + 2).min(y1), |y| {
            side_strength(img, y, x0, x1, true, y0 == 0)
        });
        let bottom = best(
            y1.saturating_sub(2).max(y0 + 1)..=(y1 + reach_y).min(h),
            |y| side_strength(img, y, x0, x1, true, y1 == h),
        );
        let left = best(x0.saturating_sub(reach_x)..=(x0 + 2).min(x1), |x| {
            side_strength(img, x, y0, y1, false, x0 == 0)
        });
        let right = best(
            x1.saturating_sub(2).max(x0 + 1)..=(x1 + reach_x).min(w),
            |x| side_strength(img, x, y0, y1, false, x1 == w),
        );
        let (top, bottom, left, right) = (top?, bottom?, left?, right?);
        if bottom <= top + 2 || right <= left + 2 {
            return None;
        }
        r = [left, top, right, bottom];
    }
    // the sides must hold along the final rectangle's own extent
    let [x0, y0, x1, y1] = r;
    let holds = |s: f32| s >= STRAIGHT;
    (holds(side_strength(img, y0, x0, x1, true, start[1] == 0))
        && holds(side_strength(img, y1, x0, x1, true, start[3] == h))
        && holds(side_strength(img, x0, y0, y1, false, start[0] == 0))
        && holds(side_strength(img, x1, y0, y1, false, start[2] == w)))
    .then_some(r)
}

/// The position in `range` with the strongest straight edge, if any reaches [`STRAIGHT`];
/// the first of equals.
fn best(range: std::ops::RangeInclusive<usize>, strength: impl Fn(usize) -> f32) -> Option<usize> {
    let mut found: Option<(usize, f32)> = None;
    for p in range {
        let s = strength(p);
        if s >= STRAIGHT && found.is_none_or(|(_, b)| s > b) {
            found = Some((p, s));
        }
    }
    found.map(|(p, _)| p)
}

/// The fraction of a side along which the colour steps sharply across it and only there: the
/// two pixels either side of the line differ by [`CONTRAST`] in some channel and by at least
/// twice as much as each differs from its own outer neighbour (texture changes everywhere; an
/// edge changes at one line). A horizontal side at `at` lies between rows `at - 1` and `at`
/// and spans columns `from..to` (a vertical one likewise with rows and columns swapped). The
/// canvas border is an edge only where `border_ok` (the object already reaches it).
fn side_strength(
    img: &RgbImage,
    at: usize,
    from: usize,
    to: usize,
    horizontal: bool,
    border_ok: bool,
) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let limit = if horizontal { h } else { w };
    if at == 0 || at >= limit {
        return if border_ok { 1.0 } else { 0.0 };
    }
    if to <= from {
        return 0.0;
    }
    let rows = [at.saturating_sub(2), at - 1, at, (at + 1).min(limit - 1)];
    let diff = |a: [u8; 3], b: [u8; 3]| {
        (0..3)
            .map(|c| u32::from(a[c].abs_diff(b[c])))
            .max()
            .unwrap_or(0)
    };
    let mut sharp = 0usize;
    for t in from..to {
        let [outer, a, b, inner] = rows.map(|r| {
            let (x, y) = if horizontal { (t, r) } else { (r, t) };
            img.get_pixel(x as u32, y as u32).0
        });
        let step = diff(a, b);
        sharp += usize::from(
            step >= u32::from(CONTRAST) && step >= 2 * diff(a, outer).max(diff(b, inner)),
        );
    }
    sharp as f32 / (to - from) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::decompose::tests::noise;

    /// A photo (noise, dark) pasted on a light plate, with a salient blob inside it.
    fn framed() -> (RgbImage, Vec<f32>) {
        let (w, h) = (160u32, 120u32);
        let img = RgbImage::from_fn(w, h, |x, y| {
            if (40..120).contains(&x) && (20..100).contains(&y) {
                image::Rgb([noise(x, y) / 3, 60, noise(y, x) / 3])
            } else {
                image::Rgb([235, 230, 220])
            }
        });
        let mut alpha = vec![0f32; (w * h) as usize];
        for y in 40..95 {
            for x in 60..100 {
                alpha[(y * w + x) as usize] = 1.0;
            }
        }
        (img, alpha)
    }

    #[test]
    fn the_salient_part_of_a_framed_photo_becomes_the_whole_frame() {
        let (img, alpha) = framed();
        let cut = vec![0f32; alpha.len()];
        let got = snap_to_frame(&img, Component::from_alpha(alpha, 160), &cut).expect("a frame");
        assert_eq!(got.bbox, [40, 20, 80, 80]);
        assert_eq!(got.mass, 80.0 * 80.0);
    }

    #[test]
    fn without_four_edges_nothing_changes() {
        let (w, h) = (160u32, 120u32);
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([noise(x, y), 90, noise(y, x)]));
        let (_, alpha) = framed();
        let cut = vec![0f32; alpha.len()];
        match snap_to_frame(&img, Component::from_alpha(alpha.clone(), 160), &cut) {
            Ok(frame) => panic!("the object was snapped to {:?}", frame.bbox),
            Err(unchanged) => assert!(unchanged.alpha == alpha),
        }
    }
}
