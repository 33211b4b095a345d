//! sRGB ↔ OKLab (Björn Ottosson, 2020), the perceptual space recolouring and harmonisation
//! work in: L is lightness in 0..=1, a/b are the green–red and blue–yellow axes (chroma up to
//! about 0.33 inside sRGB). Invariant: `oklab_to_srgb(srgb_to_oklab(c)) == c` within one
//! level per channel, and `oklab_to_srgb` always returns a valid colour — out-of-gamut input is
//! brought in by reducing chroma at constant L and hue, never by clipping channels apart.

use std::sync::OnceLock;

/// sRGB-encoded 8-bit level → linear light, for all 256 levels.
fn linear_lut() -> &'static [f32; 256] {
    static LUT: OnceLock<[f32; 256]> = OnceLock::new();
    LUT.get_or_init(|| {
        std::array::from_fn(|i| {
            let v = i as f64 / 255.0;
            let lin = if v <= 0.040_45 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            };
            lin as f32
        })
    })
}

/// Linear light in 0..=1 → sRGB-encoded 0..=1.
fn encode(lin: f32) -> f32 {
    if lin <= 0.003_130_8 {
        lin * 12.92
    } else {
        1.055 * lin.powf(1.0 / 2.4) - 0.055
    }
}

/// An 8-bit sRGB colour in OKLab `[L, a, b]`.
pub fn srgb_to_oklab(rgb: [u8; 3]) -> [f32; 3] {
    let lut = linear_lut();
    let [r, g, b] = rgb.map(|c| lut[usize::from(c)]);
    let l = 0.412_221_46 * r + 0.536_332_55 * g + 0.051_445_995 * b;
    let m = 0.211_903_5 * r + 0.680_699_5 * g + 0.107_396_96 * b;
    let s = 0.088_302_46 * r + 0.281_718_85 * g + 0.629_978_7 * b;
    let [l, m, s] = [l, m, s].map(f32::cbrt);
    [
        0.210_454_26 * l + 0.793_617_8 * m - 0.004_072_047 * s,
        1.977_998_5 * l - 2.428_592_2 * m + 0.450_593_7 * s,
        0.025_904_037 * l + 0.782_771_77 * m - 0.808_675_77 * s,
    ]
}

/// OKLab → linear sRGB, unclamped (channels outside 0..=1 are out of gamut).
fn oklab_to_linear([ll, a, b]: [f32; 3]) -> [f32; 3] {
    let l = ll + 0.396_337_78 * a + 0.215_803_76 * b;
    let m = ll - 0.105_561_346 * a - 0.063_854_17 * b;
    let s = ll - 0.089_484_18 * a - 1.291_485_5 * b;
    let [l, m, s] = [l, m, s].map(|v| v * v * v);
    [
        4.076_741_7 * l - 3.307_711_6 * m + 0.230_969_94 * s,
        -1.268_438 * l + 2.609_757_4 * m - 0.341_319_38 * s,
        -0.004_196_086_3 * l - 0.703_418_6 * m + 1.707_614_7 * s,
    ]
}

fn in_gamut(lin: [f32; 3]) -> bool {
    const EPS: f32 = 1e-5;
    lin.iter().all(|&c| (-EPS..=1.0 + EPS).contains(&c))
}

/// An OKLab `[L, a, b]` colour as 8-bit sRGB. L is clamped to 0..=1; a colour outside the
/// sRGB gamut keeps its L and hue and loses just enough chroma to fit (binary search), so a
/// too-vivid request gives the most vivid displayable colour of that hue and lightness.
/// Non-finite components are treated as 0.
pub fn oklab_to_srgb(lab: [f32; 3]) -> [u8; 3] {
    let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
    let l = finite(lab[0]).clamp(0.0, 1.0);
    let (a, b) = (finite(lab[1]), finite(lab[2]));
    let mut lin = oklab_to_linear([l, a, b]);
    if !in_gamut(lin) {
        // Grey at lightness `l` is always inside; shrink chroma between 0 and 1 times.
        let (mut lo, mut hi) = (0.0f32, 1.0f32);
        for _ in 0..20 {
            let mid = 0.5 * (lo + hi);
            if in_gamut(oklab_to_linear([l, a * mid, b * mid])) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lin = oklab_to_linear([l, a * lo, b * lo]);
    }
    lin.map(|c| {
        (encode(c.clamp(0.0, 1.0)) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let white = srgb_to_oklab([255, 255, 255]);
        assert!((white[0] - 1.0).abs() < 1e-3 && white[1].abs() < 1e-3 && white[2].abs() < 1e-3);
        let black = srgb_to_oklab([0, 0, 0]);
        assert!(black.iter().all(|v| v.abs() < 1e-6));
        // Reference values for pure red from Ottosson's post: (0.6280, 0.2249, 0.1258).
        let red = srgb_to_oklab([255, 0, 0]);
        for (got, want) in red.iter().zip([0.627_955, 0.224_863, 0.125_846]) {
            assert!((got - want).abs() < 1e-3, "{red:?}");
        }
    }

    #[test]
    fn round_trip_within_one_level() {
        for r in (0..=255).step_by(5) {
            for g in (0..=255).step_by(15) {
                for b in (0..=255).step_by(17) {
                    let c = [r as u8, g as u8, b as u8];
                    let back = oklab_to_srgb(srgb_to_oklab(c));
                    for (x, y) in c.iter().zip(back) {
                        assert!(x.abs_diff(y) <= 1, "{c:?} -> {back:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn out_of_gamut_keeps_lightness_and_hue() {
        // Far too much chroma at a mid lightness, hue of pure red.
        let want = srgb_to_oklab([255, 0, 0]);
        let c = oklab_to_srgb([0.6, want[1] * 3.0, want[2] * 3.0]);
        let got = srgb_to_oklab(c);
        assert!((got[0] - 0.6).abs() < 0.01, "{got:?}");
        let hue = |v: [f32; 3]| v[2].atan2(v[1]);
        assert!((hue(got) - hue(want)).abs() < 0.05, "{got:?}");
        assert_eq!(oklab_to_srgb([2.0, 0.0, 0.0]), [255, 255, 255]);
        assert_eq!(oklab_to_srgb([-1.0, 0.5, 0.5]), [0, 0, 0]);
        assert_eq!(oklab_to_srgb([f32::NAN, f32::INFINITY, 0.0]), [0, 0, 0]);
    }
}
