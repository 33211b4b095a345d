//! The "palette" decomposition for flat graphics: an image becomes one full-canvas layer per
//! palette colour, back to front, for instant recolouring (Tan, Lien, Gingold 2016,
//! "Decomposing Images into Layers via RGB-space Geometry"; Tan, Echevarria, Gingold 2018,
//! "Efficient palette-based decomposition and recoloring of images via RGBXY-space geometry").
//!
//! 1. **Palette.** The exact convex hull of the image's distinct RGB colours (quickhull with
//!    exact integer predicates, on the colours extreme in their (r, g) column) is simplified
//!    progressively (`simplify`): the edge whose collapse adds the least volume is collapsed
//!    to the vertex that keeps the old hull inside the new one, down to a tetrahedron (a
//!    triangle for coplanar colours); fewer colours merge two vertices where the projection
//!    error grows least.
//! 2. **Refinement** (`refine`). Vertices are clamped to the RGB cube and rounded; vertices
//!    no longer on the hull are dropped; each colour snaps to a frequent image colour within
//!    64 levels when that barely changes the projection error (so flat fills get exactly
//!    their own colour despite anti-aliasing jitter); colours within 8 levels merge. A palette
//!    may therefore have fewer colours than asked.
//! 3. **Size.** A given `k` takes the largest simplified palette with at most `k` colours (the
//!    hull's own vertices if it has `k` or fewer; `k = 1` gives one layer, the image). Automatic:
//!    the smallest size in `2..=max_k` whose per-channel RMSE of projecting the image's colours
//!    onto the refined palette's hull is at most 2 levels (2/255 per channel, i.e. 2/255 of the
//!    cube diagonal as a Euclidean distance — Tan's threshold); `max_k` if none is. The RMSE is
//!    measured on the colour histogram (the 4,096 most frequent colours exactly, the rest by a
//!    weighted stride).
//! 4. **Order.** Each distinct colour votes, with its pixel count, for its nearest palette
//!    colour; the palette is ordered by votes, most first (ties: smaller RGB first). The most
//!    covering colour is the background (layer 0); big areas sit behind small details.
//! 5. **Weights and layers** (`weights`, `encode`): barycentric weights in the star of
//!    tetrahedra around the background colour (Tan 2018; exact simplex coordinates when the
//!    palette is a simplex), converted to "over" opacities `α_0 = 1`,
//!    `α_i = w_i / (w_0 + … + w_i)`; layer `i` has the palette colour and alpha `α_i`.
//!
//! Invariants: layers are full-canvas RGBA at the source size, back to front, layer 0 opaque;
//! compositing them with `LayerStack::composite` reproduces the input exactly (0 levels of
//! error). 8-bit quantisation residuals, and the projection error of colours outside the
//! refined hull, are absorbed per pixel by the topmost layer with non-zero alpha there: its
//! colour at that pixel deviates from the flat palette colour — by a few levels where the
//! layer is mostly opaque and the colour inside the hull, by up to the whole projection error
//! (divided by the alpha) for colours outside it (photos, saturated colours cut by clamping);
//! its alpha is raised above the quantised weight only when no colour in 0..=255 can absorb
//! the residual. Everything is computed per distinct colour and is deterministic.

mod encode;
mod geom;
mod hull;
mod refine;
mod simplify;
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
            return Err(PaletteError::InvalidOptions(
                "max_k exceeds the layer limit",
            ))
        }
        _ => {}
    }
    let hist = Histogram::new(img);
    let palette = choose_palette(&hist, opts);
    let palette = order_palette(palette, &hist);
    Ok(PaletteResult {
        stack: build_stack(img, &hist, &palette),
        palette,
    })
}

/// The image's distinct colours (packed `0xRRGGBB`, ascending) and their pixel counts.
struct Histogram {
    keys: Vec<u32>,
    counts: Vec<u32>,
    /// `keys[starts[rg]..starts[rg + 1]]` are the colours with red and green `rg = key >> 8`.
    starts: Vec<u32>,
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
        let mut starts = vec![0u32; (1 << 16) + 1];
        for &k in &keys {
            starts[(k >> 8) as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        Histogram {
            keys,
            counts,
            starts,
        }
    }

    /// The index of a colour present in the image.
    fn index(&self, key: u32) -> usize {
        let rg = (key >> 8) as usize;
        let (a, b) = (self.starts[rg] as usize, self.starts[rg + 1] as usize);
        a + self.keys[a..b].binary_search(&key).unwrap_or(0)
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
    let h = hull_robust(&cand, 0.0);
    let start: Vec<V3> = h.vertices().iter().map(|&i| cand[i]).collect();
    let colours = hist.colours();
    let sample = Sample::new(&colours, &hist.counts, SAMPLE_MAX);
    let records = simplify::simplify(start, opts.k.unwrap_or(2), &sample);
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
        enc.push(encode::encode(
            x,
            pal,
            &wts,
            &mut alphas[i * k..(i + 1) * k],
        ));
    }
    // Every distinct colour's pixel in every layer, then one lookup per source pixel.
    let mut table = vec![[0u8; 4]; n * k];
    for (u, e) in enc.iter().enumerate() {
        for l in 0..k {
            let c = if l == e.top { e.top_colour } else { pal[l] };
            table[u * k + l] = [c[0], c[1], c[2], alphas[u * k + l]];
        }
    }
    let which: Vec<u32> = img
        .as_raw()
        .chunks_exact(3)
        .map(|p| hist.index(pack(p)) as u32)
        .collect();
    let bufs = (0..k).map(|l| {
        let mut buf = Vec::with_capacity(which.len() * 4);
        for &u in &which {
            buf.extend_from_slice(&table[u as usize * k + l]);
        }
        buf
    });
    let layers = bufs
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
            origin: [0, 0],
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
mod tests;
