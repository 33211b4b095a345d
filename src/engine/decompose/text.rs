//! Text layers with stroke-level alpha: inside a detected text box, the pixels are unmixed
//! into two colours — the text's and what is behind it (estimated from the box border) — by
//! two-means clustering; each pixel's alpha is its position on the line between them. Before
//! that, the detector's boxes become lines: words it boxed apart on one baseline join, and
//! what it read with too little confidence for its length is dropped. A box the detector cut
//! short (a word it missed on the same line, where other text crosses it or the background
//! is busy) grows along its line while strokes of the line's colour continue.

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

/// Pixels within this colour distance of a line's text colour are its ink.
const INK: f32 = 30.0;
/// A column of the line's band with ink in more than this fraction of its rows is a solid
/// shape of the same colour, not lettering.
const SOLID_COLUMN: f32 = 0.85;
/// Of a lettered column's other pixels, at least this fraction are the line's background
/// colour: lettering continues on the same paper, not over a photo that happens to hold the
/// text's colour.
const PAPER: f32 = 0.6;
/// The widest gap between words, in line heights.
const WORD_GAP: f32 = 0.6;

/// `bbox` grown left and right along its line while columns hold lettering of the line's
/// text colour (the mean colour in the box where `alpha`, the line's stroke alpha, is solid)
/// on its paper (the mean colour where it is clear): ink within the band of rows the line's
/// own strokes occupy, none just above or below it (a photo's dark patch runs on past the
/// band; letters stop), not solid down the band (a shape of the same colour), and the rest of
/// the column paper. Gaps of at most [`WORD_GAP`] heights are crossed; the box grows to at
/// most three times its width.
pub fn extend_line(img: &RgbImage, bbox: [u32; 4], alpha: &[f32]) -> [u32; 4] {
    let (w, h) = img.dimensions();
    let [x0, y0, bw, bh] = bbox;
    let (mut ink, mut n_ink, mut paper, mut n_paper) = ([0f32; 3], 0f32, [0f32; 3], 0f32);
    let (mut top, mut bottom) = (h, 0);
    for y in y0..(y0 + bh).min(h) {
        for x in x0..(x0 + bw).min(w) {
            let (p, a) = (img.get_pixel(x, y).0, alpha[(y * w + x) as usize]);
            if a >= 0.9 {
                (0..3).for_each(|c| ink[c] += p[c] as f32);
                n_ink += 1.0;
                (top, bottom) = (top.min(y), bottom.max(y + 1));
            } else if a <= 0.05 {
                (0..3).for_each(|c| paper[c] += p[c] as f32);
                n_paper += 1.0;
            }
        }
    }
    if n_ink == 0.0 || n_paper == 0.0 {
        return bbox;
    }
    let (ink, paper) = (ink.map(|v| v / n_ink), paper.map(|v| v / n_paper));
    let near = |x: u32, y: u32, colour: [f32; 3]| {
        let p = img.get_pixel(x, y).0;
        (0..3)
            .map(|c| (p[c] as f32 - colour[c]).powi(2))
            .sum::<f32>()
            < INK * INK
    };
    let band = bottom - top;
    let margin = 3;
    // per column: Some(solid) where it is lettering, None where it is not
    let column = |x: u32| {
        let n = (top..bottom).filter(|&y| near(x, y, ink)).count();
        let on_paper = (top..bottom).filter(|&y| near(x, y, paper)).count();
        let spills = (top.saturating_sub(margin)..top)
            .chain(bottom..(bottom + margin).min(h))
            .any(|y| near(x, y, ink));
        let lettering = n > 0 && !spills && on_paper as f32 >= PAPER * (band as usize - n) as f32;
        lettering.then_some(n as f32 > SOLID_COLUMN * band as f32)
    };
    let gap = (WORD_GAP * band as f32).ceil() as u32;
    // a stem is a few solid columns; a shape of the ink's colour is many
    let widest_stem = band / 3;
    let scan = |columns: &mut dyn Iterator<Item = u32>| -> Option<u32> {
        let mut reached: Option<u32> = None;
        // where the current run of solid columns began: the column reached before it
        let mut run_start: Option<Option<u32>> = None;
        let (mut since, mut solid_run) = (0, 0);
        for x in columns {
            match column(x) {
                Some(solid) => {
                    if solid {
                        run_start = run_start.or(Some(reached));
                        solid_run += 1;
                        if solid_run > widest_stem {
                            return run_start.flatten();
                        }
                    } else {
                        (solid_run, run_start) = (0, None);
                    }
                    reached = Some(x);
                    since = 0;
                }
                None => {
                    (solid_run, run_start) = (0, None);
                    since += 1;
                    if since > gap {
                        break;
                    }
                }
            }
        }
        reached
    };
    let budget = 2 * bw;
    let right = scan(&mut ((x0 + bw)..w.min(x0 + bw + budget))).map_or(x0 + bw, |x| x + 1);
    let left = scan(&mut (x0.saturating_sub(budget)..x0).rev()).unwrap_or(x0);
    [left, y0, right - left, bh]
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
    fn a_box_cut_short_grows_over_the_rest_of_its_line_but_not_over_a_shape() {
        let mut img = RgbImage::from_pixel(200, 40, image::Rgb([240, 240, 230]));
        // three "words" of vertical strokes, 10 px tall, 6 px apart inside a word
        for start in [10u32, 40, 70] {
            for x in (start..start + 30).step_by(6) {
                for y in 15..25 {
                    img.put_pixel(x, y, image::Rgb([20, 20, 60]));
                    img.put_pixel(x + 1, y, image::Rgb([20, 20, 60]));
                }
            }
        }
        // a solid block of the same colour just after
        for x in 101..130 {
            for y in 10..30 {
                img.put_pixel(x, y, image::Rgb([20, 20, 60]));
            }
        }
        let bbox = [38, 13, 30, 14];
        let alpha = stroke_alpha(&img, bbox, 0).unwrap();
        let grown = extend_line(&img, bbox, &alpha);
        assert_eq!(grown, [10, 13, 86, 14], "all three words, not the block");
    }

    #[test]
    fn a_flat_box_has_no_text() {
        let img = RgbImage::from_pixel(30, 30, image::Rgb([90, 90, 90]));
        assert!(stroke_alpha(&img, [5, 5, 20, 10], 2).is_none());
    }
}
