//! The peel pipeline on fake models: exact recomposition, recovery of a synthetic design's
//! known layers, text lifted as its own layer, requested counts, and bad inputs.

use image::{GrayImage, RgbImage};

use super::*;

/// A perfect-ish segmenter for a known design: returns the union of the given object masks
/// that are still visible (not yet inpainted to the background colour).
struct Fake {
    objects: Vec<Vec<f32>>,
    bg: [u8; 3],
    lines: Vec<TextLine>,
}

impl PeelModels for Fake {
    fn matte(&self, img: &RgbImage) -> Result<Vec<f32>, String> {
        let mut m = vec![0f32; (img.width() * img.height()) as usize];
        for o in &self.objects {
            for (i, (mv, ov)) in m.iter_mut().zip(o).enumerate() {
                let p = img.as_raw()[i * 3..i * 3 + 3].to_vec();
                if *ov > 0.0 && p != self.bg {
                    *mv = mv.max(*ov);
                }
            }
        }
        Ok(m)
    }
    fn text_lines(&self, _img: &RgbImage) -> Result<Vec<TextLine>, String> {
        Ok(self.lines.clone())
    }
    fn inpaint(&self, img: &RgbImage, mask: &GrayImage) -> RgbImage {
        fill_flat(img, mask, self.bg)
    }
}

/// The fakes' fill: the hole painted the design's flat background colour.
fn fill_flat(img: &RgbImage, mask: &GrayImage, bg: [u8; 3]) -> RgbImage {
    let mut out = img.clone();
    for (x, y, m) in mask.enumerate_pixels() {
        if m.0[0] > 0 {
            out.put_pixel(x, y, image::Rgb(bg));
        }
    }
    out
}

fn rect(w: u32, h: u32, r: [u32; 4]) -> Vec<f32> {
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if x >= r[0] && x < r[0] + r[2] && y >= r[1] && y < r[1] + r[3] {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn iou(a: &[f32], b: &[f32]) -> f32 {
    let (mut mn, mut mx) = (0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        mn += x.min(*y);
        mx += x.max(*y);
    }
    if mx == 0.0 {
        1.0
    } else {
        mn / mx
    }
}

/// Every true object is some layer's alpha to within IoU 0.85.
fn assert_recovers(stack: &LayerStack, truth: &[Vec<f32>]) {
    for t in truth {
        let best = stack.layers[1..]
            .iter()
            .map(|l| iou(&alpha_of(stack, l), t))
            .fold(0f32, f32::max);
        assert!(best > 0.85, "IoU {best}");
    }
}

/// A layer's alpha over its stack's canvas.
fn alpha_of(stack: &LayerStack, l: &Layer) -> Vec<f32> {
    l.to_canvas(stack.width, stack.height)
        .pixels()
        .map(|p| p.0[3] as f32 / 255.0)
        .collect()
}

fn design() -> (RgbImage, Fake, Vec<Vec<f32>>) {
    let (w, h) = (120u32, 80u32);
    let bg = [30u8, 60, 90];
    let r1 = rect(w, h, [10, 10, 30, 20]);
    let r2 = rect(w, h, [60, 30, 40, 40]);
    let img = RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        if r2[i] > 0.0 {
            image::Rgb([250, 200, (x * 2) as u8])
        } else if r1[i] > 0.0 {
            image::Rgb([200, 20, 20])
        } else {
            image::Rgb(bg)
        }
    });
    let fake = Fake {
        objects: vec![r1.clone(), r2.clone()],
        bg,
        lines: vec![],
    };
    (img, fake, vec![r1, r2])
}

#[test]
fn a_synthetic_design_is_recovered_and_recomposes_exactly() {
    let (img, fake, truth) = design();
    let (stack, timings) = peel(&img, &fake, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(stack.layers.len(), 3);
    assert_eq!(stack.layers[0].kind, LayerKind::Background);
    assert!(stack.recon_psnr(&img) >= 45.0, "{}", stack.recon_psnr(&img));
    assert_recovers(&stack, &truth);
    // the background is complete: the design's background colour where objects were
    assert_eq!(stack.layers[0].pixel(70, 50).0, [30, 60, 90, 255]);
    assert!(timings.iter().any(|(s, _)| s == "segment"));
    // deterministic
    let (again, _) = peel(&img, &fake, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(again, stack);
}

#[test]
fn text_gets_its_own_named_layer_on_top() {
    let (mut img, mut fake, _) = design();
    for x in 20..50 {
        for y in 60..66 {
            if (x / 3) % 2 == 0 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
    }
    fake.lines = vec![TextLine {
        bbox: [18, 58, 34, 10],
        text: "SALE".into(),
        score: 0.95,
    }];
    let (stack, _) = peel(&img, &fake, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    let top = stack.layers.last().unwrap();
    assert_eq!(top.kind, LayerKind::Text);
    assert_eq!(top.name, "Text: SALE");
    assert_eq!(top.text.as_deref(), Some("SALE"));
    assert_eq!(top.pixel(24, 62).0[3], 255);
    assert_eq!(top.pixel(21, 62).0[3], 0);
    assert!(stack.recon_psnr(&img) >= 45.0);
}

#[test]
fn a_requested_count_keeps_the_biggest_objects() {
    let (img, fake, _) = design();
    let opts = PeelOptions {
        layers: LayerCount::Exactly(2),
        ..Default::default()
    };
    let (stack, _) = peel(&img, &fake, &opts, &mut |_, _| {}).unwrap();
    assert_eq!(stack.layers.len(), 2);
    assert_eq!(stack.layers[1].bbox(), [60, 30, 40, 40]);
    assert!(stack.recon_psnr(&img) >= 45.0);
}

#[test]
fn bad_inputs_are_clear_errors_or_sane_results() {
    let (_, fake, _) = design();
    let tiny = RgbImage::new(1, 1);
    assert_eq!(
        peel(&tiny, &fake, &PeelOptions::default(), &mut |_, _| {})
            .unwrap_err()
            .code(),
        "image_too_small"
    );
    let flat = RgbImage::from_pixel(64, 64, image::Rgb([0, 0, 0]));
    let none = Fake {
        objects: vec![],
        bg: [0, 0, 0],
        lines: vec![],
    };
    let (stack, _) = peel(&flat, &none, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(
        stack.layers.len(),
        1,
        "nothing salient: one background layer"
    );
    assert_eq!(stack.recon_psnr(&flat), 99.0);
    assert!("11".parse::<LayerCount>().is_err());
    assert!("1".parse::<LayerCount>().is_err());
    assert_eq!("auto".parse::<LayerCount>().unwrap(), LayerCount::Auto);
}

#[test]
fn a_subject_filling_most_of_the_frame_is_an_object_and_a_plate_is_not() {
    let (w, h) = (100u32, 80u32);
    // a "pet" over 70% of the frame, clear of the top border
    let subject = rect(w, h, [5, 20, 90, 60]);
    let img = RgbImage::from_fn(w, h, |x, y| {
        if subject[(y * w + x) as usize] > 0.0 {
            image::Rgb([180, 120, (x * 2) as u8])
        } else {
            image::Rgb([20, 20, 20])
        }
    });
    let fake = Fake {
        objects: vec![subject.clone()],
        bg: [20, 20, 20],
        lines: vec![],
    };
    let (stack, _) = peel(&img, &fake, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(stack.layers.len(), 2, "the subject is kept");
    assert!(iou(&alpha_of(&stack, &stack.layers[1]), &subject) > 0.95);

    // a plate hugging every border is the background, however salient
    let plate = rect(w, h, [0, 0, w, h]);
    assert!(is_frame(&plate, w as usize, h as usize));
    assert!(!is_frame(&subject, w as usize, h as usize));
}

/// Segments like ISNet after a fill: whatever it was given, plus a dark smear the fill left
/// inside the hole under the first object.
struct Smearing(Fake, Vec<f32>);

impl PeelModels for Smearing {
    fn matte(&self, img: &RgbImage) -> Result<Vec<f32>, String> {
        let mut m = self.0.matte(img)?;
        if img.get_pixel(70, 50).0 == self.0.bg {
            // the object has been filled: the fill's smear looks salient
            for (mv, s) in m.iter_mut().zip(&self.1) {
                *mv = mv.max(*s);
            }
        }
        Ok(m)
    }
    fn text_lines(&self, img: &RgbImage) -> Result<Vec<TextLine>, String> {
        self.0.text_lines(img)
    }
    fn inpaint(&self, img: &RgbImage, mask: &GrayImage) -> RgbImage {
        self.0.inpaint(img, mask)
    }
}

#[test]
fn a_later_pass_does_not_lift_the_fill_under_an_earlier_object() {
    let (img, fake, truth) = design();
    // a smear inside the second object's hole, big enough to pass as an object
    let models = Smearing(fake, rect(120, 80, [65, 40, 25, 25]));
    let (stack, _) = peel(&img, &models, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(stack.layers.len(), 3, "no phantom layer");
    assert_recovers(&stack, &truth);
}

/// A deterministic "photo" value for a pixel: a hash, so no plane fits any region of it.
pub(super) fn noise(x: u32, y: u32) -> u8 {
    let v = x.wrapping_mul(374761393) ^ y.wrapping_mul(668265263);
    (v.wrapping_mul(2246822519) >> 24) as u8
}

/// A "photo": noise everywhere (no flat fill, no text), with two salient things in it.
fn photo() -> (RgbImage, Fake) {
    let (w, h) = (120u32, 80u32);
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([noise(x, y), noise(y, x), noise(x + 7, y + 3)])
    });
    let fake = Fake {
        objects: vec![rect(w, h, [10, 10, 30, 20]), rect(w, h, [60, 30, 40, 40])],
        bg: [0, 0, 0],
        lines: vec![],
    };
    (img, fake)
}

#[test]
fn a_photos_salient_objects_form_one_subject_layer_that_splits_into_them() {
    let (img, fake) = photo();
    let (stack, _) = peel(&img, &fake, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(stack.layers.len(), 2, "background and the subject");
    assert!(stack.recon_psnr(&img) >= 45.0);
    // split apart (the `split` op's setting), the objects come back one by one, and together
    // they are the subject
    let opts = PeelOptions {
        photo_subject: false,
        ..PeelOptions::default()
    };
    let (apart, _) = peel(&img, &fake, &opts, &mut |_, _| {}).unwrap();
    assert_eq!(apart.layers.len(), 3);
    let mut union = vec![0f32; (img.width() * img.height()) as usize];
    for l in &apart.layers[1..] {
        for (u, a) in union.iter_mut().zip(alpha_of(&apart, l)) {
            *u = u.max(a);
        }
    }
    let got = iou(&alpha_of(&stack, &stack.layers[1]), &union);
    assert!(got > 0.98, "IoU {got}");
    // a design keeps its objects apart whatever the option
    let (img, fake, _) = design();
    let (stack, _) = peel(&img, &fake, &PeelOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(stack.layers.len(), 3);
}

/// A segmenter that sees whatever differs from a flat background colour, at any size.
struct ByColour {
    bg: [u8; 3],
}

impl PeelModels for ByColour {
    fn matte(&self, img: &RgbImage) -> Result<Vec<f32>, String> {
        Ok(img
            .pixels()
            .map(|p| {
                let d: i32 = (0..3)
                    .map(|c| (i32::from(p[c]) - i32::from(self.bg[c])).abs())
                    .sum();
                (d as f32 / 120.0).min(1.0)
            })
            .collect())
    }
    fn text_lines(&self, _img: &RgbImage) -> Result<Vec<TextLine>, String> {
        Ok(vec![])
    }
    fn inpaint(&self, img: &RgbImage, mask: &GrayImage) -> RgbImage {
        fill_flat(img, mask, self.bg)
    }
}

#[test]
fn a_large_image_is_analysed_small_and_finished_at_full_size() {
    let (w, h) = (480u32, 360u32);
    let bg = [40, 120, 70];
    let disc = |x: u32, y: u32| {
        let (dx, dy) = (x as f32 - 150.5, y as f32 - 170.5);
        dx * dx + dy * dy < 80.0 * 80.0
    };
    let bar = |x: u32, y: u32| (300..420).contains(&x) && (101..283).contains(&y);
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb(if disc(x, y) {
            [220, 60, 40]
        } else if bar(x, y) {
            [30, 40, 200]
        } else {
            bg
        })
    });
    let opts = PeelOptions {
        work_side: 120,
        ..Default::default()
    };
    let models = ByColour { bg };
    let (stack, timings) = peel(&img, &models, &opts, &mut |_, _| {}).unwrap();
    assert!(timings.iter().any(|(s, _)| s == "scale"), "{timings:?}");
    assert_eq!((stack.width, stack.height), (w, h));
    assert_eq!(stack.layers.len(), 3, "background, disc, bar");
    assert!(stack.recon_psnr(&img) >= 45.0, "{}", stack.recon_psnr(&img));
    assert_eq!(stack.layers[0].pixel(150, 170).0, [40, 120, 70, 255]);
    // each object's alpha is its shape at full size, edges on the pixel: working pixels are
    // 4 full pixels, and a misplaced edge would miss whole rows
    for (shape, inside) in [
        (&disc as &dyn Fn(u32, u32) -> bool, (150, 170)),
        (&bar, (360, 190)),
    ] {
        let layer = stack.layers[1..]
            .iter()
            .find(|l| l.pixel(inside.0, inside.1)[3] == 255)
            .expect("a layer for each shape");
        let (mut wrong, mut soft) = (0, 0);
        for (x, y, p) in layer
            .to_canvas(stack.width, stack.height)
            .enumerate_pixels()
        {
            let a = p[3];
            wrong += usize::from((a > 127) != shape(x, y));
            soft += usize::from(a > 0 && a < 255);
        }
        assert!(wrong < 40, "{wrong} pixels on the wrong side of the edge");
        assert!(soft < 40, "{soft} soft pixels on a hard edge");
    }
}
