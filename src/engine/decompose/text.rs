//! Text layers with stroke-level alpha: inside a detected text box, the pixels are unmixed
//! into two colours — the text's and what is behind it (estimated from the box border) — by
//! two-means clustering; each pixel's alpha is its position on the line between them.

use image::RgbImage;

/// A text line found by OCR, in source coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    /// `[x, y, w, h]`.
    pub bbox: [u32; 4],
    pub text: String,
    pub score: f32,
}

/// The stroke alpha of one text line over the whole canvas, or `None` when the box does not
/// hold two clearly different colours (no legible text to lift out).
pub fn stroke_alpha(img: &RgbImage, bbox: [u32; 4], pad: u32) -> Option<Vec<f32>> {
    let (w, h) = img.dimensions();
    let x0 = bbox[0].saturating_sub(pad);
    let y0 = bbox[1].saturating_sub(pad);
    let x1 = (bbox[0] + bbox[2] + pad).min(w);
    let y1 = (bbox[1] + bbox[3] + pad).min(h);
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return None;
    }
    let px = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        [p[0] as f32, p[1] as f32, p[2] as f32]
    };
    // background estimate: per-channel median of the box border
    let mut border: Vec<[f32; 3]> = Vec::new();
    for x in x0..x1 {
        border.push(px(x, y0));
        border.push(px(x, y1 - 1));
    }
    for y in y0..y1 {
        border.push(px(x0, y));
        border.push(px(x1 - 1, y));
    }
    let mut bg = [0f32; 3];
    for (c, v) in bg.iter_mut().enumerate() {
        let mut vals: Vec<f32> = border.iter().map(|p| p[c]).collect();
        vals.sort_by(f32::total_cmp);
        *v = vals[vals.len() / 2];
    }
    let dist =
        |a: [f32; 3], b: [f32; 3]| (0..3).map(|c| (a[c] - b[c]) * (a[c] - b[c])).sum::<f32>();
    let inside: Vec<[f32; 3]> = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| px(x, y))
        .collect();
    // two-means, started from the border colour and the pixel farthest from it
    let mut fg = *inside
        .iter()
        .max_by(|a, b| dist(**a, bg).total_cmp(&dist(**b, bg)))?;
    let mut centre_bg = bg;
    for _ in 0..8 {
        let (mut sf, mut nf, mut sb, mut nb) = ([0f32; 3], 0f32, [0f32; 3], 0f32);
        for p in &inside {
            if dist(*p, fg) < dist(*p, centre_bg) {
                (0..3).for_each(|c| sf[c] += p[c]);
                nf += 1.0;
            } else {
                (0..3).for_each(|c| sb[c] += p[c]);
                nb += 1.0;
            }
        }
        if nf == 0.0 || nb == 0.0 {
            return None;
        }
        fg = [sf[0] / nf, sf[1] / nf, sf[2] / nf];
        centre_bg = [sb[0] / nb, sb[1] / nb, sb[2] / nb];
    }
    // text is the minority colour inside a text box
    let diff = [
        fg[0] - centre_bg[0],
        fg[1] - centre_bg[1],
        fg[2] - centre_bg[2],
    ];
    let len2 = diff.iter().map(|d| d * d).sum::<f32>();
    if len2 < 40.0 * 40.0 {
        return None;
    }
    let mut alpha = vec![0f32; (w * h) as usize];
    let mut covered = 0f32;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = px(x, y);
            let t = (0..3).map(|c| (p[c] - centre_bg[c]) * diff[c]).sum::<f32>() / len2;
            let a = ((t - 0.15) / 0.7).clamp(0.0, 1.0);
            alpha[(y * w + x) as usize] = a;
            covered += a;
        }
    }
    let frac = covered / ((x1 - x0) * (y1 - y0)) as f32;
    if !(0.03..=0.75).contains(&frac) {
        return None;
    }
    Some(alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_strokes_on_light_paper_get_full_alpha_and_paper_none() {
        let mut img = RgbImage::from_pixel(40, 20, image::Rgb([240, 240, 230]));
        for x in 10..30 {
            for y in 8..11 {
                img.put_pixel(x, y, image::Rgb([20, 20, 60]));
            }
        }
        for y in 5..15 {
            img.put_pixel(15, y, image::Rgb([20, 20, 60]));
        }
        let a = stroke_alpha(&img, [8, 4, 24, 12], 2).unwrap();
        assert_eq!(a[(9 * 40 + 20) as usize], 1.0);
        assert_eq!(a[(5 * 40 + 25) as usize], 0.0);
        assert_eq!(a[(18 * 40 + 2) as usize], 0.0, "outside the box");
    }

    #[test]
    fn a_flat_box_has_no_text() {
        let img = RgbImage::from_pixel(30, 30, image::Rgb([90, 90, 90]));
        assert!(stroke_alpha(&img, [5, 5, 20, 10], 2).is_none());
    }
}
