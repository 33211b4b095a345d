//! Recolour a layer in OKLab, keeping its shading and texture.
//!
//! Invariants: alpha is untouched, pixels with alpha 0 come back bit for bit, and only colour
//! changes — lightness differences between pixels survive (darker stays darker), so a shaded
//! object keeps its shading under any new colour.

use image::RgbaImage;

use super::oklab::{oklab_to_srgb, srgb_to_oklab};
use super::{check_range, EditError};

/// How to recolour a layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Recolor {
    /// Move the layer's alpha-weighted mean colour onto `rgb`, keeping every pixel's offset
    /// from that mean in lightness and (rotated to the new hue) in chroma.
    Target {
        /// The new mean colour, sRGB.
        rgb: [u8; 3],
    },
    /// Rotate the OKLCh hue by `hue_deg` degrees, multiply chroma by `saturation` (>= 0) and
    /// add `lightness` (-1..=1, in OKLab L units) to every pixel.
    Shift {
        hue_deg: f32,
        saturation: f32,
        lightness: f32,
    },
}

/// Below this mean chroma a layer counts as grey: its hue is noise and is not rotated.
const GREY_CHROMA: f64 = 1e-4;

/// The layer recoloured as `how` says (see [`Recolor`]). Works in OKLab; out-of-gamut results
/// lose chroma at constant lightness and hue. A fully transparent layer comes back unchanged.
pub fn recolor(rgba: &RgbaImage, how: &Recolor) -> Result<RgbaImage, EditError> {
    let map = match *how {
        Recolor::Target { rgb } => target_map(rgba, rgb),
        Recolor::Shift {
            hue_deg,
            saturation,
            lightness,
        } => {
            check_range("hue_shift", hue_deg, f32::MIN..=f32::MAX)?;
            check_range("saturation", saturation, 0.0..=f32::MAX)?;
            check_range("lightness", lightness, -1.0..=1.0)?;
            if hue_deg.rem_euclid(360.0) == 0.0 && saturation == 1.0 && lightness == 0.0 {
                return Ok(rgba.clone());
            }
            let (sin, cos) = f64::from(hue_deg).to_radians().sin_cos();
            ChromaMap {
                centre: [0.0; 2],
                to: [0.0; 2],
                rot: [
                    (cos * f64::from(saturation)) as f32,
                    (sin * f64::from(saturation)) as f32,
                ],
                dl: lightness,
            }
        }
    };
    let mut out = rgba.clone();
    for p in out.pixels_mut().filter(|p| p.0[3] > 0) {
        let rgb = map.apply(srgb_to_oklab([p.0[0], p.0[1], p.0[2]]));
        p.0[..3].copy_from_slice(&oklab_to_srgb(rgb));
    }
    Ok(out)
}

/// `L' = L + dl`; `(a', b') = to + R · ((a, b) - centre)` where `R` is rotation-and-scale
/// `[[cos, -sin], [sin, cos]]` stored as `rot = [cos, sin]` (already scaled).
struct ChromaMap {
    centre: [f32; 2],
    to: [f32; 2],
    rot: [f32; 2],
    dl: f32,
}

impl ChromaMap {
    fn apply(&self, [l, a, b]: [f32; 3]) -> [f32; 3] {
        let (da, db) = (a - self.centre[0], b - self.centre[1]);
        let [c, s] = self.rot;
        [
            l + self.dl,
            self.to[0] + c * da - s * db,
            self.to[1] + s * da + c * db,
        ]
    }
}

/// The map taking the layer's alpha-weighted OKLab mean to `target`: lightness offsets kept as
/// they are; chroma offsets rotated by the change of hue and scaled down (never up) by the
/// change of chroma, so a vivid layer recoloured to a pale colour does not flip hue in its
/// shadows. A grey layer's offsets are kept unrotated, so it still reaches the target hue.
fn target_map(rgba: &RgbaImage, target: [u8; 3]) -> ChromaMap {
    let mut sum = [0f64; 3];
    let mut weight = 0f64;
    for p in rgba.pixels().filter(|p| p.0[3] > 0) {
        let w = f64::from(p.0[3]);
        let lab = srgb_to_oklab([p.0[0], p.0[1], p.0[2]]);
        for (s, v) in sum.iter_mut().zip(lab) {
            *s += w * f64::from(v);
        }
        weight += w;
    }
    let mean = sum.map(|s| s / weight.max(1.0));
    let t = srgb_to_oklab(target).map(f64::from);
    let (c_mean, c_target) = (mean[1].hypot(mean[2]), t[1].hypot(t[2]));
    let rot = if c_mean < GREY_CHROMA {
        [1.0, 0.0]
    } else {
        let scale = (c_target / c_mean).min(1.0);
        let turn = t[2].atan2(t[1]) - mean[2].atan2(mean[1]);
        [(turn.cos() * scale) as f32, (turn.sin() * scale) as f32]
    };
    ChromaMap {
        centre: [mean[1] as f32, mean[2] as f32],
        to: [t[1] as f32, t[2] as f32],
        rot,
        dl: (t[0] - mean[0]) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// A red disc lit from the top left (brightness 0.45..1) with a few transparent pixels
    /// carrying garbage colour.
    fn shaded_disc(base: [f32; 3]) -> RgbaImage {
        RgbaImage::from_fn(64, 64, |x, y| {
            let (dx, dy) = (x as f32 - 31.5, y as f32 - 31.5);
            if dx * dx + dy * dy > 26.0 * 26.0 {
                return Rgba([0, 255, 0, 0]);
            }
            let shade = 0.45 + 0.55 * (1.0 - (dx + dy + 37.0) / 74.0).clamp(0.0, 1.0);
            let a = if dx * dx + dy * dy > 24.0 * 24.0 {
                128
            } else {
                255
            };
            let c = base.map(|v| (v * shade).round() as u8);
            Rgba([c[0], c[1], c[2], a])
        })
    }

    fn mean_lab(img: &RgbaImage) -> [f64; 3] {
        let (mut sum, mut wsum) = ([0f64; 3], 0f64);
        for p in img.pixels().filter(|p| p.0[3] > 0) {
            let w = f64::from(p.0[3]);
            let lab = srgb_to_oklab([p.0[0], p.0[1], p.0[2]]);
            for (s, v) in sum.iter_mut().zip(lab) {
                *s += w * f64::from(v);
            }
            wsum += w;
        }
        sum.map(|s| s / wsum)
    }

    fn delta_e(a: [f64; 3], b: [f64; 3]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn lightness(p: &Rgba<u8>) -> f32 {
        srgb_to_oklab([p.0[0], p.0[1], p.0[2]])[0]
    }

    fn assert_alpha_and_transparent_kept(before: &RgbaImage, after: &RgbaImage) {
        for (p, q) in before.pixels().zip(after.pixels()) {
            assert_eq!(p.0[3], q.0[3]);
            if p.0[3] == 0 {
                assert_eq!(p, q);
            }
        }
    }

    #[test]
    fn target_reaches_the_colour_and_keeps_shading() {
        let src = shaded_disc([220.0, 40.0, 35.0]);
        for target in [
            [40, 110, 190],
            [230, 200, 60],
            [128, 128, 128],
            [20, 60, 30],
        ] {
            let out = recolor(&src, &Recolor::Target { rgb: target }).unwrap();
            let want = srgb_to_oklab(target).map(f64::from);
            let de = delta_e(mean_lab(&out), want);
            assert!(de < 0.02, "{target:?}: ΔE {de}");
            assert_alpha_and_transparent_kept(&src, &out);
            // Darker stays darker: every pair clearly apart in L keeps its order.
            let px: Vec<_> = src.pixels().zip(out.pixels()).step_by(5).collect();
            let px: Vec<_> = px.into_iter().filter(|(p, _)| p.0[3] > 0).collect();
            for (p, q) in &px {
                for (p2, q2) in &px {
                    if lightness(p) - lightness(p2) > 0.02 {
                        assert!(lightness(q) > lightness(q2), "{target:?}: {p:?} {p2:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn target_on_a_grey_layer_reaches_the_hue() {
        let src = shaded_disc([200.0, 200.0, 200.0]);
        let out = recolor(&src, &Recolor::Target { rgb: [200, 60, 40] }).unwrap();
        let de = delta_e(mean_lab(&out), srgb_to_oklab([200, 60, 40]).map(f64::from));
        assert!(de < 0.02, "ΔE {de}");
        let centre = out.get_pixel(32, 32).0;
        assert!(
            centre[0] > centre[1] + 60 && centre[0] > centre[2] + 60,
            "{centre:?}"
        );
    }

    #[test]
    fn neutral_shift_is_identity_and_shifts_rotate_hue() {
        let src = shaded_disc([220.0, 40.0, 35.0]);
        let neutral = Recolor::Shift {
            hue_deg: 360.0,
            saturation: 1.0,
            lightness: 0.0,
        };
        assert_eq!(recolor(&src, &neutral).unwrap(), src);
        // The full conversion path at a neutral setting is within one level too.
        let tiny = Recolor::Shift {
            hue_deg: 1e-6,
            saturation: 1.0,
            lightness: 0.0,
        };
        let out = recolor(&src, &tiny).unwrap();
        for (p, q) in src.pixels().zip(out.pixels()) {
            assert!(
                p.0.iter().zip(q.0).all(|(a, b)| a.abs_diff(b) <= 1),
                "{p:?} {q:?}"
            );
        }
        let half_turn = Recolor::Shift {
            hue_deg: 180.0,
            saturation: 1.0,
            lightness: 0.0,
        };
        let out = recolor(&src, &half_turn).unwrap();
        assert_alpha_and_transparent_kept(&src, &out);
        let c = out.get_pixel(32, 32).0;
        assert!(
            c[1] > c[0] && c[2] > c[0],
            "red turned half way round is cyan: {c:?}"
        );
        let grey = Recolor::Shift {
            hue_deg: 0.0,
            saturation: 0.0,
            lightness: 0.1,
        };
        let out = recolor(&src, &grey).unwrap();
        let c = out.get_pixel(32, 32).0;
        assert!(
            c[0].abs_diff(c[1]) <= 1 && c[1].abs_diff(c[2]) <= 1,
            "{c:?}"
        );
        let l_before = lightness(src.get_pixel(32, 32));
        assert!((lightness(out.get_pixel(32, 32)) - l_before - 0.1).abs() < 0.01);
    }

    #[test]
    fn validates_parameters_and_handles_empty_layers() {
        let src = shaded_disc([220.0, 40.0, 35.0]);
        let bad = [
            (f32::NAN, 1.0, 0.0),
            (0.0, -0.1, 0.0),
            (0.0, f32::INFINITY, 0.0),
        ];
        for (hue_deg, saturation, lightness) in bad.into_iter().chain([(0.0, 1.0, 1.5)]) {
            let how = Recolor::Shift {
                hue_deg,
                saturation,
                lightness,
            };
            assert_eq!(recolor(&src, &how).unwrap_err().code(), "bad_parameter");
        }
        let empty = RgbaImage::from_pixel(4, 4, Rgba([9, 9, 9, 0]));
        let out = recolor(&empty, &Recolor::Target { rgb: [1, 2, 3] }).unwrap();
        assert_eq!(out, empty);
        let none = RgbaImage::new(0, 0);
        assert_eq!(
            recolor(&none, &Recolor::Target { rgb: [1, 2, 3] }).unwrap(),
            none
        );
    }
}
