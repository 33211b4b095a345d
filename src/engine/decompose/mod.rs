//! Decomposition into editable layers. The "peel" pipeline (after LayerD, ICCV 2025):
//! detect text lines and lift each out with a stroke-level alpha; segment the salient objects
//! (ISNet), refine the matte at the image's resolution and split it into objects (specks stay in
//! the background), parting touching objects by their fills ([`flat`]) and lifting a framed
//! photo as its whole frame ([`rect`]); in a natural photo the objects form one subject
//! layer instead. Complete the background under what was lifted and, while the completed
//! image still shows a flat object, look again for objects that were less salient, until the
//! requested count is reached or nothing salient is left; finally solve every layer's
//! colours so the stack recomposes the input exactly. An image over
//! [`PeelOptions::work_side`] is analysed on a working copy of that size and finished at
//! full size ([`scale`]). Models come in through [`PeelModels`],
//! so this stays pure image code and tests can run it on fakes. Deterministic for the same
//! input, models and options.

pub mod colours;
pub mod components;
pub mod flat;
pub mod matting;
pub mod rect;
pub mod scale;
pub mod split;
pub mod text;

use std::time::Instant;

use image::{GrayImage, RgbImage};

use self::colours::AlphaPlane;
use super::layers::{Layer, LayerKind, LayerStack};
pub use split::split_layer;
pub use text::TextLine;

/// What the peel pipeline needs from the models.
pub trait PeelModels {
    /// The salient-object matte at the image's resolution, 0..1, row-major.
    fn matte(&self, img: &RgbImage) -> Result<Vec<f32>, String>;
    /// Recognised text lines.
    fn text_lines(&self, img: &RgbImage) -> Result<Vec<TextLine>, String>;
    /// Fills the pixels where `mask` > 0, leaving every other pixel unchanged.
    fn inpaint(&self, img: &RgbImage, mask: &GrayImage) -> RgbImage;
}

/// Which decomposition pipeline: peel (objects, text and a completed background, with the
/// models) or palette (flat-colour layers, no models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecomposeMode {
    #[default]
    Peel,
    Palette,
}

impl DecomposeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DecomposeMode::Peel => "peel",
            DecomposeMode::Palette => "palette",
        }
    }
}

impl std::str::FromStr for DecomposeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "peel" => Ok(DecomposeMode::Peel),
            "palette" => Ok(DecomposeMode::Palette),
            other => Err(format!(
                "mode must be \"peel\" or \"palette\", not {other:?}"
            )),
        }
    }
}

/// How many layers to produce. Stored and sent as its string form (`"auto"`, `"4"`); read
/// from a string or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerCount {
    /// As many as there are salient objects and text lines.
    #[default]
    Auto,
    /// This many in total, background included (2..=10), when that many can be found.
    Exactly(usize),
}

impl std::str::FromStr for LayerCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(LayerCount::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if (2..=10).contains(&n) => Ok(LayerCount::Exactly(n)),
            _ => Err(format!(
                "layers must be \"auto\" or a number from 2 to 10, not {s:?}"
            )),
        }
    }
}

impl LayerCount {
    /// From a JSON request field: absent or `"auto"`, or a number (or numeric string) 2..=10.
    pub fn from_json(v: Option<&serde_json::Value>) -> Result<Self, String> {
        match v {
            None => Ok(LayerCount::Auto),
            Some(serde_json::Value::String(s)) => s.parse(),
            Some(serde_json::Value::Number(n)) => n.to_string().parse(),
            Some(other) => Err(format!(
                "layers must be \"auto\" or a number from 2 to 10, not {other}"
            )),
        }
    }
}

impl serde::Serialize for LayerCount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for LayerCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        LayerCount::from_json(Some(&v)).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for LayerCount {
    /// The form [`FromStr`](std::str::FromStr) reads back: `auto` or the number.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerCount::Auto => f.write_str("auto"),
            LayerCount::Exactly(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PeelOptions {
    pub layers: LayerCount,
    /// Most segmentation passes (each one looks at the completed background again).
    pub max_passes: usize,
    /// In a natural photo (no text, hardly any flat fill), the salient objects the first pass
    /// finds form one subject layer, as a cutout does; splitting that layer (the editing
    /// `split` op, which turns this off) gives one layer per object.
    pub photo_subject: bool,
    /// An image whose long side exceeds this is analysed on a copy scaled to it, and only
    /// its alphas, background and colours are made at full size (see [`scale`]).
    pub work_side: u32,
}

impl Default for PeelOptions {
    fn default() -> Self {
        Self {
            layers: LayerCount::Auto,
            max_passes: 3,
            photo_subject: true,
            work_side: WORK_SIDE,
        }
    }
}

/// The default working size: ISNet sees 1024² whatever the input, so a larger copy would
/// add time, not detail, to the analysis.
pub const WORK_SIDE: u32 = 1024;

/// Below this share of flat-filled pixels (see [`flat::flat_share`]) an image without text is
/// a natural photo; designs have flat or gradient plates and shapes (the public set's lowest,
/// on texture backgrounds, still carry text or a single object).
const PHOTO_FLAT_SHARE: f32 = 0.1;

#[derive(Debug, thiserror::Error)]
pub enum DecomposeError {
    #[error("the image is {0}×{1}; decomposition needs at least 8×8 pixels")]
    TooSmall(u32, u32),
    #[error("the image is {0}×{1}; the longest side may be at most 16384 pixels")]
    TooLarge(u32, u32),
    #[error("model failure: {0}")]
    Model(String),
}

impl DecomposeError {
    pub fn code(&self) -> &'static str {
        match self {
            DecomposeError::TooSmall(..) => "image_too_small",
            DecomposeError::TooLarge(..) => "image_too_large",
            DecomposeError::Model(_) => "model_failed",
        }
    }
}

/// Per-stage wall time in seconds, in pipeline order.
pub type Timings = Vec<(String, f64)>;

struct Stopwatch(Timings);

impl Stopwatch {
    fn time<T>(&mut self, stage: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        let secs = t.elapsed().as_secs_f64();
        match self.0.iter_mut().find(|(s, _)| s == stage) {
            Some((_, acc)) => *acc += secs,
            None => self.0.push((stage.to_string(), secs)),
        }
        out
    }
}

/// A lifted foreground candidate.
struct Candidate {
    alpha: Vec<f32>,
    mass: f32,
    kind: LayerKind,
    text: Option<String>,
    /// Segmentation pass that found it (0 = on the input); text is -1 (always on top).
    pass: i32,
}

/// The peel pipeline. `progress` gets (fraction done, stage).
pub fn peel(
    img: &RgbImage,
    models: &dyn PeelModels,
    opts: &PeelOptions,
    progress: &mut dyn FnMut(f32, &str),
) -> Result<(LayerStack, Timings), DecomposeError> {
    let (w, h) = img.dimensions();
    if w < 8 || h < 8 {
        return Err(DecomposeError::TooSmall(w, h));
    }
    if w.max(h) > 16384 {
        return Err(DecomposeError::TooLarge(w, h));
    }
    let mut sw = Stopwatch(Vec::new());
    let (ww, wh) = scale::working_size(w, h, opts.work_side.max(8));
    if (ww, wh) == (w, h) {
        let found = analyse(img, models, opts, progress, &mut sw)?;
        // 4. complete the background under everything lifted
        progress(0.75, "inpaint");
        let mask = hole_mask(&found.cands, w, h);
        // The last pass usually completed exactly this hole already; don't fill it twice.
        let background = match found.completed {
            Some((hole, fill)) if hole == mask => fill,
            _ => sw.time("inpaint", || models.inpaint(img, &mask)),
        };
        progress(0.9, "colours");
        let alphas: Vec<AlphaPlane<'_>> = found
            .cands
            .iter()
            .rev()
            .map(|c| AlphaPlane::Full(&c.alpha))
            .collect();
        let solved = sw.time("colours", || colours::solve(img, &background, &alphas));
        progress(1.0, "done");
        return Ok((assemble(w, h, &found.cands, solved), sw.0));
    }

    // Camera size: analyse a working copy, then bring the alphas up and complete the
    // background and the colours at full size.
    let small = sw.time("scale", || scale::downscale(img, ww, wh));
    let found = analyse(&small, models, opts, progress, &mut sw)?;
    let (cands, crops): (Vec<Candidate>, Vec<scale::AlphaCrop>) = sw.time("scale", || {
        found
            .cands
            .into_iter()
            .filter_map(|c| {
                let crop = scale::upsample_alpha(img, &small, &c.alpha)?;
                Some((c, crop))
            })
            .unzip()
    });
    drop(small);
    progress(0.75, "inpaint");
    let grow = (2.0 * f64::from(w) / f64::from(ww)).round() as usize;
    let mask = sw.time("scale", || scale::hole_mask(&crops, w, h, grow));
    let background = sw.time("inpaint", || models.inpaint(img, &mask));
    drop(mask);
    progress(0.9, "colours");
    let alphas: Vec<AlphaPlane<'_>> = crops.iter().rev().map(AlphaPlane::Crop).collect();
    let solved = sw.time("colours", || colours::solve(img, &background, &alphas));
    progress(1.0, "done");
    Ok((assemble(w, h, &cands, solved), sw.0))
}

/// What the analysis found: the lifted candidates, back to front, and the last hole a pass
/// completed with its fill.
struct Analysis {
    cands: Vec<Candidate>,
    completed: Option<(GrayImage, RgbImage)>,
}

/// Steps 1–3 and 5 of the pipeline: text, salient objects pass by pass, the requested count,
/// the order.
fn analyse(
    img: &RgbImage,
    models: &dyn PeelModels,
    opts: &PeelOptions,
    progress: &mut dyn FnMut(f32, &str),
    sw: &mut Stopwatch,
) -> Result<Analysis, DecomposeError> {
    let (w, h) = img.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let n = wu * hu;
    let target_fg = match opts.layers {
        LayerCount::Auto => usize::MAX,
        LayerCount::Exactly(k) => k - 1,
    };
    let mut cands: Vec<Candidate> = Vec::new();

    // 1. text lines
    progress(0.02, "text");
    let lines = sw
        .time("ocr", || models.text_lines(img))
        .map_err(DecomposeError::Model)?;
    let mut text_mask = vec![0f32; n];
    for line in &lines {
        tracing::debug!(bbox = ?line.bbox, text = %line.text, score = line.score, "text line");
    }
    for line in text::lines(&lines) {
        let alpha = sw.time("text_alpha", || {
            let alpha = text::stroke_alpha(img, line.bbox, 3)?;
            let grown = text::extend_line(img, line.bbox, &alpha);
            if grown == line.bbox {
                return Some(alpha);
            }
            text::stroke_alpha(img, grown, 3).or(Some(alpha))
        });
        if let Some(alpha) = alpha {
            for (m, a) in text_mask.iter_mut().zip(&alpha) {
                *m = m.max(*a);
            }
            let mass = alpha.iter().sum();
            cands.push(Candidate {
                alpha,
                mass,
                kind: LayerKind::Text,
                text: Some(line.text.trim().to_string()),
                pass: -1,
            });
        }
    }

    // 2. salient objects, pass by pass on the completed background
    let min_area = (n / 500).max(16);
    let min_object = 0.005 * n as f32;
    // a touching object of its own covers at least 1% of the canvas
    let min_part = n / 100;
    let mut current = img.clone();
    // The hole `current` was completed under, if any.
    let mut completed: Option<GrayImage> = None;
    let passes = if target_fg == usize::MAX {
        opts.max_passes
    } else {
        opts.max_passes.max(4)
    };
    for pass in 0..passes {
        if cands.len() >= target_fg {
            break;
        }
        // a later pass (a full ISNet run) only where the completed image still shows a flat
        // object; the shapes a first pass misses are those
        if pass > 0
            && target_fg == usize::MAX
            && !sw.time("components", || {
                flat::holds_flat_object(&current, min_object as usize)
            })
        {
            break;
        }
        progress(0.1 + 0.6 * pass as f32 / passes as f32, "segment");
        let matte = sw
            .time("segment", || models.matte(&current))
            .map_err(DecomposeError::Model)?;
        if matte.len() != n {
            return Err(DecomposeError::Model(
                "the matte does not match the image size".into(),
            ));
        }
        let mut refined = sw.time("matting", || matting::refine(&current, &matte));
        for (r, t) in refined.iter_mut().zip(&text_mask) {
            *r *= 1.0 - t;
        }
        let comps = sw.time("components", || {
            components::split(&refined, wu, hu, min_area, 0.02)
        });
        let mut found = 0;
        // whether this pass met a design's fills or frames (a photo has neither)
        let mut designed = false;
        for c in comps {
            let area = (c.bbox[2] * c.bbox[3]) as usize;
            let solid = c.mass / area.max(1) as f32;
            // Real objects in designs cover more than ~1.5% of the canvas (text, which can be
            // smaller, comes from OCR); below `min_object` a component is clutter left in the
            // background. The whole frame is background, not an object, told by its borders
            // (a subject filling most of a photo still leaves some of them); later passes
            // must be confident, and must not lift what lies mostly inside the hole they
            // just completed (the fill's own smears).
            if c.mass < min_object
                || is_frame(&c.alpha, wu, hu)
                || (pass > 0 && solid < 0.35)
                || completed
                    .as_ref()
                    .is_some_and(|hole| mostly_inside(&c.alpha, hole))
            {
                continue;
            }
            // touching objects with fills of their own come apart; a framed photo's salient
            // part stands for the whole frame
            let parts = sw.time("split", || {
                let parts = flat::split_by_fill(&current, c, min_area.max(n / 200), min_part);
                designed |= parts.len() > 1;
                parts
                    .into_iter()
                    .map(|p| match rect::snap_to_frame(&current, p, &text_mask) {
                        Ok(frame) => {
                            designed = true;
                            frame
                        }
                        Err(p) => p,
                    })
                    .collect::<Vec<_>>()
            });
            for part in parts {
                cands.push(Candidate {
                    alpha: part.alpha,
                    mass: part.mass,
                    kind: LayerKind::Object,
                    text: None,
                    pass: pass as i32,
                });
                found += 1;
            }
        }
        if found == 0 {
            break;
        }
        // a photo's salient objects are its subject: one layer, as a cutout gives; later
        // passes would only find pieces of its background or of the fill
        let photo = pass == 0
            && found > 1
            && !designed
            && opts.photo_subject
            && target_fg == usize::MAX
            && !cands.iter().any(|c| c.kind == LayerKind::Text)
            && sw.time("components", || flat::flat_share(img)) < PHOTO_FLAT_SHARE;
        if photo {
            let objects = cands.split_off(cands.len() - found);
            let mut alpha = vec![0f32; n];
            for o in &objects {
                for (a, b) in alpha.iter_mut().zip(&o.alpha) {
                    *a = a.max(*b);
                }
            }
            cands.push(Candidate {
                mass: alpha.iter().sum(),
                alpha,
                kind: LayerKind::Object,
                text: None,
                pass: 0,
            });
        }
        let mask = hole_mask(&cands, w, h);
        current = sw.time("inpaint", || models.inpaint(img, &mask));
        completed = Some(mask);
        if photo {
            break;
        }
    }

    // 3. keep the requested number (largest first; the rest stays in the background)
    if cands.len() > target_fg {
        cands.sort_by(|a, b| b.mass.total_cmp(&a.mass));
        cands.truncate(target_fg);
    }
    // 5. order back to front: deeper passes lower, bigger lower within a pass, text on top
    let depth = |c: &Candidate| {
        if c.kind == LayerKind::Text {
            0
        } else {
            c.pass + 1
        }
    };
    cands.sort_by(|a, b| depth(b).cmp(&depth(a)).then(b.mass.total_cmp(&a.mass)));
    Ok(Analysis {
        cands,
        completed: completed.map(|hole| (hole, current)),
    })
}

/// The stack: the solved background and layers (top first, as [`colours::solve`] gives
/// them) named after the candidates (back to front).
fn assemble(
    w: u32,
    h: u32,
    cands: &[Candidate],
    (bg_layer, solved): (image::RgbaImage, Vec<colours::Solved>),
) -> LayerStack {
    let mut layers = vec![Layer {
        name: "Background".into(),
        kind: LayerKind::Background,
        origin: [0, 0],
        rgba: bg_layer,
        text: None,
    }];
    let mut object_no = 0;
    for (cand, (origin, rgba)) in cands.iter().zip(solved.into_iter().rev()) {
        let name = match &cand.text {
            Some(t) => format!("Text: {t}"),
            None => {
                object_no += 1;
                format!("Object {object_no}")
            }
        };
        layers.push(
            Layer {
                name,
                kind: cand.kind,
                origin,
                rgba,
                text: cand.text.clone(),
            }
            .cropped(),
        );
    }
    LayerStack {
        width: w,
        height: h,
        layers,
    }
}

/// Whether a component is the frame rather than an object: it covers at least 60% of the
/// image's border and reaches every side. A subject that fills most of a photo (a portrait,
/// a pet, a product) stays clear of some border; a background plate hugs all of it.
fn is_frame(alpha: &[f32], w: usize, h: usize) -> bool {
    let at = |x: usize, y: usize| alpha[y * w + x] > 0.5;
    let side = |cells: &mut dyn Iterator<Item = (usize, usize)>| {
        let (mut on, mut all) = (0usize, 0usize);
        for (x, y) in cells {
            on += usize::from(at(x, y));
            all += 1;
        }
        (on, all)
    };
    let sides = [
        side(&mut (0..w).map(|x| (x, 0))),
        side(&mut (0..w).map(|x| (x, h - 1))),
        side(&mut (0..h).map(|y| (0, y))),
        side(&mut (0..h).map(|y| (w - 1, y))),
    ];
    let on: usize = sides.iter().map(|s| s.0).sum();
    let all: usize = sides.iter().map(|s| s.1).sum();
    sides.iter().all(|s| s.0 * 10 >= s.1) && on * 10 >= all * 6
}

/// Whether at least half of a component's opaque pixels lie inside `hole`.
fn mostly_inside(alpha: &[f32], hole: &GrayImage) -> bool {
    let (mut opaque, mut inside) = (0usize, 0usize);
    for (a, m) in alpha.iter().zip(hole.as_raw()) {
        if *a > 0.5 {
            opaque += 1;
            inside += usize::from(*m > 0);
        }
    }
    opaque > 0 && inside * 2 >= opaque
}

/// Where anything lifted has alpha, dilated by 2 px (the inpainter's hole).
fn hole_mask(cands: &[Candidate], w: u32, h: u32) -> GrayImage {
    let mut hard = vec![false; (w * h) as usize];
    for c in cands {
        for (m, a) in hard.iter_mut().zip(&c.alpha) {
            *m |= *a > 0.0;
        }
    }
    scale::grown_mask(&hard, w, h, 2)
}

#[cfg(test)]
mod tests;
