//! Text layers with stroke-level alpha: inside a detected text box, the pixels are unmixed
//! into two colours — the text's and what is behind it (estimated from the box border) — by
//! two-means clustering; each pixel's alpha is its position on the line between them. Before
//! that, the detector's boxes become lines: words it boxed apart on one baseline join, and
//! what it read with too little confidence for its length is dropped.

use image::RgbImage;

/// A text line found by OCR, in source coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    /// `[x, y, w, h]`.
    pub bbox: [u32; 4],
    pub text: String,
    pub score: f32,
}

/// Least recognition confidence for a line to become a layer...
const MIN_SCORE: f32 = 0.6;
/// ...and for one with fewer than [`SHORT_LINE`] letters or digits: one or two characters read
/// out of a photo's texture are the commonest false text.
const MIN_SHORT_SCORE: f32 = 0.9;
const SHORT_LINE: usize = 3;

/// The lines worth lifting: confident enough for their length, and words of one line (boxes
/// that share most of their height, of similar size, less than about half a height apart)
/// joined into one line, left to right.
pub fn lines(found: &[TextLine]) -> Vec<TextLine> {
    let mut kept: Vec<TextLine> = found
        .iter()
        .filter(|l| {
            let chars = l.text.chars().filter(|c| c.is_alphanumeric()).count();
            let least = if chars < SHORT_LINE {
                MIN_SHORT_SCORE
            } else {
                MIN_SCORE
            };
            chars > 0 && l.score >= least
        })
        .cloned()
        .collect();
    kept.sort_by_key(|l| (l.bbox[0], l.bbox[1]));
    let mut out: Vec<TextLine> = Vec::new();
    'next: for line in kept {
        for prev in out.iter_mut() {
            if same_line(prev.bbox, line.bbox) {
                let [x0, y0] = [
                    prev.bbox[0].min(line.bbox[0]),
                    prev.bbox[1].min(line.bbox[1]),
                ];
                let x1 = (prev.bbox[0] + prev.bbox[2]).max(line.bbox[0] + line.bbox[2]);
                let y1 = (prev.bbox[1] + prev.bbox[3]).max(line.bbox[1] + line.bbox[3]);
                prev.bbox = [x0, y0, x1 - x0, y1 - y0];
                prev.text = format!("{} {}", prev.text.trim(), line.text.trim());
                prev.score = prev.score.min(line.score);
                continue 'next;
            }
        }
        out.push(line);
    }
    out
}

/// Whether `b` (starting right of `a`'s start) continues `a`'s line.
fn same_line(a: [u32; 4], b: [u32; 4]) -> bool {
    let (ha, hb) = (a[3] as f32, b[3] as f32);
    let overlap = (a[1] + a[3]).min(b[1] + b[3]) as f32 - a[1].max(b[1]) as f32;
    let gap = b[0] as f32 - (a[0] + a[2]) as f32;
    ha.max(hb) <= 1.5 * ha.min(hb)
        && overlap >= 0.7 * ha.min(hb)
        && gap <= 0.6 * ha.min(hb)
        && gap >= -0.2 * ha.min(hb)
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

    fn line(bbox: [u32; 4], text: &str, score: f32) -> TextLine {
        TextLine {
            bbox,
            text: text.into(),
            score,
        }
    }

    #[test]
    fn words_on_one_baseline_join_and_unsure_short_reads_go() {
        let found = [
            line([380, 447, 147, 61], "Bar", 0.99),
            line([100, 447, 258, 57], "Coffee", 0.99),
            line([100, 600, 200, 60], "Menu", 0.99), // the next line down
            line([698, 388, 238, 223], "O", 0.61),   // a cup read as a letter
            line([10, 10, 40, 40], "8", 0.95),
            line([600, 600, 100, 40], "Sale", 0.5),
        ];
        let got = lines(&found);
        let texts: Vec<&str> = got.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["8", "Coffee Bar", "Menu"]);
        assert_eq!(got[1].bbox, [100, 447, 427, 61]);
    }

    #[test]
    fn a_flat_box_has_no_text() {
        let img = RgbImage::from_pixel(30, 30, image::Rgb([90, 90, 90]));
        assert!(stroke_alpha(&img, [5, 5, 20, 10], 2).is_none());
    }
}
