//! The "palette" decomposition for flat graphics: an image becomes one full-canvas layer per
//! palette colour, back to front, for instant recolouring (Tan, Lien, Gingold 2016,
//! "Decomposing Images into Layers via RGB-space Geometry"; Tan, Echevarria, Gingold 2018,
//! "Efficient palette-based decomposition and recoloring of images via RGBXY-space geometry").
//!
//! 1. **Palette.** The exact convex hull of the image's distinct RGB colours (quickhull with
//!    exact integer predicates, on the colours extreme in their (r, g) column) is simplified
//!    progressively ([`simplify`]): the edge whose collapse adds the least volume is collapsed
//!    to the vertex that keeps the old hull inside the new one, down to a tetrahedron; fewer
//!    colours merge two vertices where the projection error grows least. Vertices are then
//!    clamped to the RGB cube, rounded, deduplicated, and those that are no longer hull
//!    vertices are dropped (so a palette may have fewer colours than asked).
//! 2. **Size.** A given `k` takes the largest simplified palette with at most `k` colours (the
//!    hull's own vertices if it has `k` or fewer). Automatic: the smallest size in
//!    `2..=max_k` whose per-channel RMSE of projecting the image's colours onto the clamped
//!    palette hull is at most 2 levels (2/255, i.e. 2/255 of the cube diagonal as a Euclidean
//!    distance, Tan's threshold); `max_k` if none is. The RMSE is measured on the colour
//!    histogram (the 4,096 most frequent colours exactly, the rest by a weighted stride).
//! 3. **Order.** Each distinct colour votes, with its pixel count, for its nearest palette
//!    colour; the palette is ordered by votes, most first (ties: smaller RGB first). The most
//!    covering colour is the background (layer 0); big areas sit behind small details.
//! 4. **Weights and layers** ([`weights`], [`encode`]): barycentric weights in the star of
//!    tetrahedra around the background colour (Tan 2018), converted to "over" opacities
//!    `α_0 = 1`, `α_i = w_i / (w_0 + … + w_i)`; layer `i` has the palette colour and alpha `α_i`.
//!
//! Invariants: layers are full-canvas RGBA at the source size, back to front, layer 0 opaque;
//! compositing them with `LayerStack::composite` reproduces the input exactly (0 levels of
//! error; 8-bit quantisation residuals and colours outside the clamped hull are absorbed per
//! pixel by the topmost layer with non-zero alpha, whose colour there may deviate from its
//! flat palette colour — by a few levels where that layer is opaque, more where it is faint;
//! its alpha moves off the quantised weight only when no colour in 0..=255 can absorb the
//! residual). Everything is computed per distinct colour and is deterministic.

mod encode;
mod geom;
mod hull;
mod simplify;
mod refine;
mod weights;

use image::{RgbImage, RgbaImage};

use self::geom::V3;
use self::hull::hull_robust;
use self::weights::{Geometry, Sample};
use super::layers::{Layer, LayerKind, LayerStack};

/// The most layers (palette colours) one decomposition may ask for.
pub const MAX_PALETTE_LAYERS: usize = 32;
/// Automatic size: the per-channel RMSE (0..255 levels) a palette must reach.
const AUTO_RMSE: f64 = 2.0;
/// Distinct colours standing for the image when palettes are scored.
const SAMPLE_MAX: usize = 8192;
/// Distinct colours standing for the image when snapping palette colours.
const SNAP_SAMPLE_MAX: usize = 2048;
/// Frequent colours a palette colour may snap to.
const FREQUENT_MAX: usize = 32;

/// How many colours to split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaletteOptions {
    /// Palette size; `None` chooses it automatically in `2..=max_k`.
    pub k: Option<usize>,
    /// The largest automatic palette.
    pub max_k: usize,
}

impl Default for PaletteOptions {
    fn default() -> Self {
        PaletteOptions { k: None, max_k: 10 }
    }
}

/// A palette decomposition.
#[derive(Debug, Clone, PartialEq)]
pub struct PaletteResult {
    /// The layer colours, back to front (`palette[i]` is layer `i`'s flat colour).
    pub palette: Vec<[u8; 3]>,
    pub stack: LayerStack,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaletteError {
    #[error("the image has no pixels")]
    EmptyImage,
    #[error("invalid palette options: {0}")]
    InvalidOptions(&'static str),
}

impl PaletteError {
    pub fn code(&self) -> &'static str {
        match self {
            PaletteError::EmptyImage => "empty_image",
            PaletteError::InvalidOptions(_) => "invalid_palette_options",
        }
    }
}

/// Splits `img` into palette-colour layers; see the module documentation.
pub fn palette_decompose(
    img: &RgbImage,
    opts: &PaletteOptions,
) -> Result<PaletteResult, PaletteError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(PaletteError::EmptyImage);
    }
    match opts.k {
        Some(0) => return Err(PaletteError::InvalidOptions("k must be at least 1")),
        Some(k) if k > MAX_PALETTE_LAYERS => {
            return Err(PaletteError::InvalidOptions("k exceeds the layer limit"))
        }
        None if opts.max_k < 2 => {
            return Err(PaletteError::InvalidOptions("max_k must be at least 2"))
        }
        None if opts.max_k > MAX_PALETTE_LAYERS => {
            return Err(PaletteError::InvalidOptions("max_k exceeds the layer limit"))
        }
        _ => {}
    }
    let t = std::time::Instant::now();
    let hist = Histogram::new(img);
    eprintln!("hist {:?}", t.elapsed());
    let palette = choose_palette(&hist, opts);
    eprintln!("choose {:?}", t.elapsed());
    let palette = order_palette(palette, &hist);
    let stack = build_stack(img, &hist, &palette);
    eprintln!("build {:?}", t.elapsed());
    Ok(PaletteResult {
        stack,
        palette,
    })
}

/// The image's distinct colours (packed `0xRRGGBB`, ascending) and their pixel counts.
struct Histogram {
    keys: Vec<u32>,
    counts: Vec<u32>,
}

fn pack(p: &[u8]) -> u32 {
    (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32
}

fn unpack(k: u32) -> [u8; 3] {
    [(k >> 16) as u8, (k >> 8) as u8, k as u8]
}

fn to_v3(c: [u8; 3]) -> V3 {
    c.map(|v| v as f64)
}

impl Histogram {
    fn new(img: &RgbImage) -> Histogram {
        let mut all: Vec<u32> = img.as_raw().chunks_exact(3).map(pack).collect();
        all.sort_unstable();
        let mut keys = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        for k in all {
            if keys.last() == Some(&k) {
                if let Some(c) = counts.last_mut() {
                    *c += 1;
                }
            } else {
                keys.push(k);
                counts.push(1);
            }
        }
        Histogram { keys, counts }
    }

    fn colours(&self) -> Vec<V3> {
        self.keys.iter().map(|&k| to_v3(unpack(k))).collect()
    }

    /// Up to [`FREQUENT_MAX`] colours covering at least 0.1% of the pixels (and 2), most first.
    fn frequent(&self) -> Vec<[u8; 3]> {
        let total: u64 = self.counts.iter().map(|&c| c as u64).sum();
        let min = (total / 1000).max(2);
        let mut idx: Vec<usize> = (0..self.keys.len())
            .filter(|&i| self.counts[i] as u64 >= min)
            .collect();
        idx.sort_by(|&a, &b| self.counts[b].cmp(&self.counts[a]).then(a.cmp(&b)));
        idx.truncate(FREQUENT_MAX);
        idx.iter().map(|&i| unpack(self.keys[i])).collect()
    }

    fn most_frequent(&self) -> [u8; 3] {
        let i = (0..self.keys.len())
            .max_by(|&a, &b| self.counts[a].cmp(&self.counts[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        unpack(self.keys[i])
    }
}

/// The palette (unordered) for the options; see the module documentation.
fn choose_palette(hist: &Histogram, opts: &PaletteOptions) -> Vec<[u8; 3]> {
    if hist.keys.len() == 1 || opts.k == Some(1) {
        return vec![hist.most_frequent()];
    }
    // Only a colour extreme in its (r, g) column can be a hull vertex.
    let mut cand: Vec<V3> = Vec::new();
    for group in hist.keys.chunk_by(|a, b| a >> 8 == b >> 8) {
        cand.push(to_v3(unpack(group[0])));
        if group.len() > 1 {
            cand.push(to_v3(unpack(group[group.len() - 1])));
        }
    }
    let t = std::time::Instant::now();
    let h = hull_robust(&cand, 0.0);
    eprintln!(" cand {} hull {} {:?}", cand.len(), h.vertices().len(), t.elapsed());
    let start: Vec<V3> = h.vertices().iter().map(|&i| cand[i]).collect();
    let colours = hist.colours();
    let sample = Sample::new(&colours, &hist.counts, SAMPLE_MAX);
    let records = simplify::simplify(start, opts.k.unwrap_or(2), &sample);
    eprintln!(" simplify {:?}", t.elapsed());
    let snap_sample = Sample::new(&colours, &hist.counts, SNAP_SAMPLE_MAX);
    let frequent = hist.frequent();
    let pick = |s: usize| {
        records
            .iter()
            .find(|r| r.len() <= s)
            .or(records.last())
            .map(|r| refine::refine(r, &frequent, &snap_sample))
            .unwrap_or_else(|| vec![hist.most_frequent()])
    };
    if let Some(k) = opts.k {
        return pick(k);
    }
    let mut tried = 0;
    for s in 2..=opts.max_k {
        let pal = pick(s);
        if pal.len() == tried {
            continue;
        }
        tried = pal.len();
        let pts: Vec<V3> = pal.iter().map(|&c| to_v3(c)).collect();
        if sample.rmse(&Geometry::new(&pts, 0, 0.0)) <= AUTO_RMSE {
            return pal;
        }
    }
    pick(opts.max_k)
}

/// Orders the palette back to front by the pixels nearest to each colour, most first.
fn order_palette(pal: Vec<[u8; 3]>, hist: &Histogram) -> Vec<[u8; 3]> {
    let mut votes = vec![0u64; pal.len()];
    for (&key, &count) in hist.keys.iter().zip(&hist.counts) {
        let x = to_v3(unpack(key));
        let mut best = (f64::INFINITY, 0);
        for (i, &c) in pal.iter().enumerate() {
            let d = geom::dist2(x, to_v3(c));
            if d < best.0 {
                best = (d, i);
            }
        }
        votes[best.1] += count as u64;
    }
    let mut idx: Vec<usize> = (0..pal.len()).collect();
    idx.sort_by(|&a, &b| votes[b].cmp(&votes[a]).then(pal[a].cmp(&pal[b])));
    idx.iter().map(|&i| pal[i]).collect()
}

fn build_stack(img: &RgbImage, hist: &Histogram, pal: &[[u8; 3]]) -> LayerStack {
    let (w, h) = img.dimensions();
    let k = pal.len();
    let n = hist.keys.len();
    let geo = Geometry::new(&pal.iter().map(|&c| to_v3(c)).collect::<Vec<_>>(), 0, 0.0);
    let mut alphas = vec![0u8; n * k];
    let mut enc = Vec::with_capacity(n);
    let mut wts = vec![0.0; k];
    for (i, &key) in hist.keys.iter().enumerate() {
        let x = unpack(key);
        let loc = geo.locate(to_v3(x));
        wts.iter_mut().for_each(|v| *v = 0.0);
        for j in 0..loc.m {
            wts[loc.idx[j]] += loc.w[j];
        }
        enc.push(encode::encode(x, pal, &wts, &mut alphas[i * k..(i + 1) * k]));
    }
    let mut bufs: Vec<Vec<u8>> = vec![Vec::with_capacity(img.as_raw().len() / 3 * 4); k];
    for p in img.as_raw().chunks_exact(3) {
        let u = hist.keys.binary_search(&pack(p)).unwrap_or(0);
        let e = enc[u];
        for (l, buf) in bufs.iter_mut().enumerate() {
            let c = if l == e.top { e.top_colour } else { pal[l] };
            buf.extend_from_slice(&[c[0], c[1], c[2], alphas[u * k + l]]);
        }
    }
    let layers = bufs
        .into_iter()
        .enumerate()
        .map(|(l, buf)| Layer {
            name: format!(
                "Colour {} #{:02x}{:02x}{:02x}",
                l + 1,
                pal[l][0],
                pal[l][1],
                pal[l][2]
            ),
            kind: if l == 0 {
                LayerKind::Background
            } else {
                LayerKind::Object
            },
            rgba: RgbaImage::from_raw(w, h, buf).unwrap_or_else(|| RgbaImage::new(w, h)),
            text: None,
        })
        .collect();
    LayerStack {
        width: w,
        height: h,
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f64) / (1u64 << 31) as f64
    }

    fn max_error(res: &PaletteResult, img: &RgbImage) -> u8 {
        let comp = res.stack.composite();
        assert_eq!(comp.dimensions(), img.dimensions());
        comp.as_raw()
            .iter()
            .zip(img.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0)
    }

    fn check_stack(res: &PaletteResult, img: &RgbImage) {
        assert_eq!(res.stack.layers.len(), res.palette.len());
        assert_eq!((res.stack.width, res.stack.height), img.dimensions());
        for (i, l) in res.stack.layers.iter().enumerate() {
            assert_eq!(l.rgba.dimensions(), img.dimensions());
            let kind = if i == 0 {
                LayerKind::Background
            } else {
                LayerKind::Object
            };
            assert_eq!(l.kind, kind);
            let [r, g, b] = res.palette[i];
            assert_eq!(l.name, format!("Colour {} #{r:02x}{g:02x}{b:02x}", i + 1));
        }
        assert!(res.stack.layers[0].rgba.pixels().all(|p| p.0[3] == 255));
        assert!(max_error(res, img) <= 1, "recomposition off by more than 1/255");
    }

    const DESIGN: [[u8; 3]; 4] = [[245, 240, 228], [28, 45, 120], [210, 50, 45], [90, 170, 60]];

    /// A flat design: background, a rectangle, a disc and a triangle, anti-aliased by 4×4
    /// supersampling.
    fn design() -> RgbImage {
        let inside = |s: usize, x: f64, y: f64| match s {
            1 => (12.0..70.0).contains(&x) && (8.0..40.0).contains(&y),
            2 => (x - 70.0).powi(2) + (y - 42.0).powi(2) < 18.0f64.powi(2),
            _ => y > 30.0 && x > 10.0 && x - 10.0 < (y - 30.0) * 1.3 && y < 62.0,
        };
        RgbImage::from_fn(112, 72, |px, py| {
            let mut acc = [0.0f64; 3];
            for sy in 0..4 {
                for sx in 0..4 {
                    let (x, y) = (px as f64 + (sx as f64 + 0.5) / 4.0, py as f64 + (sy as f64 + 0.5) / 4.0);
                    let mut c = DESIGN[0];
                    for s in 1..4 {
                        if inside(s, x, y) {
                            c = DESIGN[s];
                        }
                    }
                    for ch in 0..3 {
                        acc[ch] += c[ch] as f64 / 16.0;
                    }
                }
            }
            Rgb(acc.map(|v| v.round() as u8))
        })
    }

    #[test]
    fn flat_design_recovers_its_four_colours() {
        let img = design();
        let res = palette_decompose(&img, &PaletteOptions::default()).unwrap();
        check_stack(&res, &img);
        assert_eq!(res.palette.len(), 4, "{:?}", res.palette);
        for want in DESIGN {
            let off = res
                .palette
                .iter()
                .map(|c| (0..3).map(|i| c[i].abs_diff(want[i])).max().unwrap_or(0))
                .min()
                .unwrap_or(255);
            assert!(off <= 4, "{want:?} not in {:?}", res.palette);
        }
        // The background is the largest area.
        assert!((0..3).all(|i| res.palette[0][i].abs_diff(DESIGN[0][i]) <= 4));
        // Where a layer is mostly opaque its colour stays within a few levels of the palette.
        for (l, layer) in res.stack.layers.iter().enumerate() {
            for p in layer.rgba.pixels().filter(|p| p.0[3] >= 128) {
                let dev = (0..3).map(|i| p.0[i].abs_diff(res.palette[l][i])).max().unwrap_or(0);
                assert!(dev <= 6, "layer {l} deviates by {dev}");
            }
        }
        // A flat interior pixel of the disc is carried by its layer alone.
        let disc = res.palette.iter().position(|c| c[0] > 150 && c[1] < 100).unwrap();
        assert_eq!(res.stack.layers[disc].rgba.get_pixel(80, 50).0[3], 255);
        // Deterministic.
        assert_eq!(palette_decompose(&img, &PaletteOptions::default()).unwrap(), res);
        // Asking for more colours than the hull has gives the hull's vertices.
        let more = palette_decompose(&img, &PaletteOptions { k: Some(8), max_k: 10 }).unwrap();
        assert!(more.palette.len() <= 8 && more.palette.len() >= 4);
        check_stack(&more, &img);
    }

    #[test]
    fn gradient_recomposes() {
        let img = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, (100 + x + y) as u8]));
        let res = palette_decompose(&img, &PaletteOptions::default()).unwrap();
        check_stack(&res, &img);
        assert!((2..=10).contains(&res.palette.len()));
        let flat = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 77]));
        let res = palette_decompose(&flat, &PaletteOptions::default()).unwrap();
        check_stack(&res, &flat);
        assert_eq!(res.palette.len(), 4, "a planar square has four corners: {:?}", res.palette);
    }

    #[test]
    fn photo_like_noise_with_six_colours_recomposes() {
        let mut s = 3u64;
        let img = RgbImage::from_fn(80, 60, |x, y| {
            let (fx, fy) = (x as f64 / 80.0, y as f64 / 60.0);
            let base = [
                128.0 + 100.0 * (fx * 6.0).sin() * fy,
                90.0 + 120.0 * (fy * 5.0 + fx).cos().abs(),
                60.0 + 150.0 * fx * (1.0 - fy),
            ];
            Rgb(base.map(|v| (v + (lcg(&mut s) - 0.5) * 40.0).round().clamp(0.0, 255.0) as u8))
        });
        let res = palette_decompose(&img, &PaletteOptions { k: Some(6), max_k: 10 }).unwrap();
        check_stack(&res, &img);
        assert!((4..=6).contains(&res.palette.len()), "{:?}", res.palette);
        let auto = palette_decompose(&img, &PaletteOptions::default()).unwrap();
        check_stack(&auto, &img);
    }

    #[test]
    fn tiny_and_single_colour_images() {
        let one = RgbImage::from_pixel(1, 1, Rgb([1, 2, 3]));
        let res = palette_decompose(&one, &PaletteOptions::default()).unwrap();
        assert_eq!(res.palette, vec![[1, 2, 3]]);
        check_stack(&res, &one);
        let flat = RgbImage::from_pixel(9, 7, Rgb([200, 10, 90]));
        let res = palette_decompose(&flat, &PaletteOptions { k: Some(5), max_k: 10 }).unwrap();
        assert_eq!(res.palette, vec![[200, 10, 90]]);
        check_stack(&res, &flat);
        // k = 1 on a busy image: one layer that is the image.
        let res = palette_decompose(&design(), &PaletteOptions { k: Some(1), max_k: 10 }).unwrap();
        assert_eq!(res.stack.layers.len(), 1);
        check_stack(&res, &design());
    }

    #[test]
    fn two_colours_with_k_two() {
        let (a, b) = ([20u8, 30, 40], [220u8, 200, 180]);
        let img = RgbImage::from_fn(40, 30, |x, y| {
            let d = ((x as f64 - 20.0).powi(2) + (y as f64 - 15.0).powi(2)).sqrt();
            let t = (10.0 - d).clamp(0.0, 1.0);
            Rgb([0, 1, 2].map(|i| (a[i] as f64 * (1.0 - t) + b[i] as f64 * t).round() as u8))
        });
        for opts in [PaletteOptions { k: Some(2), max_k: 10 }, PaletteOptions::default()] {
            let res = palette_decompose(&img, &opts).unwrap();
            assert_eq!(res.palette, vec![a, b]);
            check_stack(&res, &img);
        }
        let hard = RgbImage::from_fn(8, 8, |x, _| Rgb(if x < 3 { b } else { a }));
        let res = palette_decompose(&hard, &PaletteOptions { k: Some(2), max_k: 10 }).unwrap();
        assert_eq!(res.palette, vec![a, b]);
        assert_eq!(res.stack.layers[1].rgba.get_pixel(0, 0).0, [b[0], b[1], b[2], 255]);
        assert_eq!(res.stack.layers[1].rgba.get_pixel(5, 0).0[3], 0);
        check_stack(&res, &hard);
    }

    #[test]
    fn errors_have_codes() {
        let e = palette_decompose(&RgbImage::new(0, 5), &PaletteOptions::default()).unwrap_err();
        assert_eq!(e.code(), "empty_image");
        let img = RgbImage::new(2, 2);
        for opts in [
            PaletteOptions { k: Some(0), max_k: 10 },
            PaletteOptions { k: Some(99), max_k: 10 },
            PaletteOptions { k: None, max_k: 1 },
        ] {
            let e = palette_decompose(&img, &opts).unwrap_err();
            assert_eq!(e.code(), "invalid_palette_options");
        }
    }

    #[test]
    fn every_colour_lies_in_the_simplified_hulls() {
        let img = design();
        let hist = Histogram::new(&img);
        let colours = hist.colours();
        let start = match hull::hull(&colours, 0.0) {
            Some(h) => h.vertices().iter().map(|&i| colours[i]).collect(),
            None => panic!("no hull"),
        };
        let sample = Sample::new(&colours, &hist.counts, SAMPLE_MAX);
        for rec in simplify::simplify(start, 4, &sample) {
            let g = Geometry::new(&rec, 0, simplify::FLOAT_EPS);
            for c in &colours {
                assert!(g.locate(*c).d2 <= 1e-12, "{c:?} outside a {}-hull", rec.len());
            }
        }
    }
}
