//! Photoshop (.psd) import: reads an 8-bit RGB or Grayscale PSD (version 1) into a
//! [`LayerStack`] of full-canvas, straight-alpha RGBA layers (back to front) with each layer's
//! opacity and visibility ([`LayerProps`]).
//!
//! What is read: the layer records and their channel data (raw or PackBits RLE), with colour
//! channels 0, 1, 2 (grey: 0), transparency (-1) and the user mask. Layer bounds may be
//! negative or exceed the canvas: pixels outside it are dropped.
//!
//! User masks multiply the layer's alpha by mask/255 unless the mask flags say disabled. The
//! mask is channel -2, placed by the rectangle (canvas coordinates, whatever the "relative to
//! layer" flag says; it may reach off the canvas) and default colour (the value outside the
//! rectangle) of the record's layer mask data. A layer that also has a -3 channel (the spec's
//! "real user mask", written when a layer has both a pixel and a vector mask) uses that one,
//! with the real rectangle, default colour and flags; disabled in either flags means no mask.
//! The real fields follow the flags only when there is a -3 channel, and the mask parameters
//! come after them: that is how Photoshop files read in psd-tools, GIMP and ag-psd, not the
//! spec's order. Of the parameters the user mask density is applied, feathering is not. An
//! empty rectangle over a channel holding pixels means the layer's rectangle (panotools writes
//! that); mask data too short to hold a rectangle, or with one upside down, means no mask.
//! Vector masks (`vmsk`/`vsms`), masks on groups and other channels are ignored.
//!
//! Names come from the `luni` block (UTF-16) when present, else the Pascal name
//! (UTF-8 if valid, else Mac OS Roman, as psd-tools writes it), cut to 255 characters. Groups
//! (`lsct`/`lsdk` section dividers) are flattened: folder and divider records are skipped,
//! their children kept, a hidden folder hides its children and a folder's opacity multiplies
//! theirs; fill opacity (`iOpa`) multiplies a layer's opacity too. Every blend mode is read
//! as normal and clipping is ignored. A file without layers gives one opaque `Background`
//! layer from the merged image (its extra alpha channels are ignored). Kinds: the bottom layer
//! is `Background` when fully opaque; a layer with a type-tool block (`TySh`/`tySh`) or a name
//! starting with `Text` is `Text`; anything else is `Object`. PSB (version 2), other depths
//! and colour modes and ZIP compression are refused with a message that says how to re-save.
//!
//! Invariants: nothing is trusted before it is checked. Every length and count is checked
//! against the bytes that remain before anything is sliced or allocated; the canvas is
//! 1..=30000 px per side and within [`PsdLimits::max_pixels`]; the number of layers and the
//! bytes of the decoded stack are checked against the limits before any layer is allocated;
//! RLE rows are unpacked into exactly the expected width (a row that runs over is invalid, one
//! that runs short is truncated) and only the part on the canvas is kept, so memory never
//! exceeds the canvas per layer whatever the layer or mask bounds say (a mask is multiplied
//! into its layer row by row, never held whole). Decoding is pure and never panics; truncated
//! data in the merged image of a file whose layers are intact is not needed and not reported.
//!
//! Layout: `cursor` reads big-endian fields within bounds, `header` checks the file header,
//! `records` parses layer records, tagged blocks, names and masks, `pixels` decodes channels
//! into full-canvas RGBA and `rle` unpacks PackBits rows; this file holds the public API and
//! the top-level flow (sections, group flattening, limits, layer kinds).

mod cursor;
mod header;
mod pixels;
mod records;
mod rle;
#[cfg(test)]
mod tests;

use image::RgbaImage;

use self::cursor::Bytes;
use self::header::{read_header, Header};
use self::pixels::{decode_layer, read_merged};
use self::records::{layer_info, read_record, Section, MIN_RECORD_BYTES};
use super::layers::LayerProps;
use super::layers::{Layer, LayerKind, LayerStack};

/// Most channels a PSD may declare.
const MAX_CHANNELS: u16 = 56;

/// Bounds on what one PSD may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsdLimits {
    /// Most canvas pixels (width × height).
    pub max_pixels: u64,
    /// Most layers kept (group folders and dividers are not counted).
    pub max_layers: usize,
    /// Most bytes of decoded layers (layers × width × height × 4).
    pub max_stack_bytes: u64,
}

impl Default for PsdLimits {
    fn default() -> Self {
        Self {
            max_pixels: 100_000_000,
            max_layers: 200,
            max_stack_bytes: 4 << 30,
        }
    }
}

/// Why a PSD could not be read. Every message says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum PsdReadError {
    #[error("the PSD file ends early (in the {0}): upload the complete file")]
    Truncated(&'static str),
    #[error("{0}")]
    Unsupported(String),
    #[error("this is not a valid PSD file ({0}): save it again from the editor or export a PNG")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
}

impl PsdReadError {
    /// Stable snake_case code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            PsdReadError::Truncated(_) => "psd_truncated",
            PsdReadError::Unsupported(_) => "psd_unsupported",
            PsdReadError::Invalid(_) => "psd_invalid",
            PsdReadError::TooLarge(_) => "psd_too_large",
        }
    }
}

type Result<T> = std::result::Result<T, PsdReadError>;

fn invalid(what: impl Into<String>) -> PsdReadError {
    PsdReadError::Invalid(what.into())
}

/// Reads a PSD into a stack (back to front) and each layer's opacity and visibility.
pub fn decode_psd(bytes: &[u8], limits: &PsdLimits) -> Result<(LayerStack, Vec<LayerProps>)> {
    let mut r = Bytes::new(bytes, "header");
    let header = read_header(&mut r, limits)?;
    r.what = "colour mode data";
    r.block()?;
    r.what = "image resources";
    r.block()?;
    r.what = "layer and mask information";
    let mut lmi = r.block()?;
    let merged = r.buf;

    let layers = match layer_info(&mut lmi)? {
        Some(li) => read_layers(li, &header, limits)?,
        None => Vec::new(),
    };
    let (w, h) = (header.width, header.height);
    if layers.is_empty() {
        let rgba = read_merged(merged, &header)?;
        let layer = Layer {
            name: "Background".into(),
            kind: LayerKind::Background,
            origin: [0, 0],
            rgba,
            text: None,
        };
        let stack = LayerStack {
            width: w,
            height: h,
            layers: vec![layer],
        };
        return Ok((stack, vec![LayerProps::default()]));
    }
    let props = layers.iter().map(|l| l.props).collect();
    let layers = layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let opaque = l.rgba.as_raw().chunks_exact(4).all(|p| p[3] == 255);
            let kind = if i == 0 && opaque {
                LayerKind::Background
            } else if l.type_tool || l.name.starts_with("Text") {
                LayerKind::Text
            } else {
                LayerKind::Object
            };
            Layer {
                name: l.name,
                kind,
                origin: [0, 0],
                rgba: l.rgba,
                text: None,
            }
        })
        .collect();
    let stack = LayerStack {
        width: w,
        height: h,
        layers,
    };
    Ok((stack, props))
}

/// A decoded layer with what [`decode_psd`] needs to pick its kind.
struct ReadLayer {
    name: String,
    rgba: RgbaImage,
    props: LayerProps,
    type_tool: bool,
}

fn read_layers(mut li: Bytes, header: &Header, limits: &PsdLimits) -> Result<Vec<ReadLayer>> {
    li.what = "layer records";
    // A negative count only says the merged image's first alpha channel is its transparency.
    let count = li.i16()?.unsigned_abs() as usize;
    if count.saturating_mul(MIN_RECORD_BYTES) > li.buf.len() {
        return Err(PsdReadError::Truncated("layer records"));
    }
    let records = (0..count)
        .map(|_| read_record(&mut li))
        .collect::<Result<Vec<_>>>()?;
    li.what = "layer channel data";
    let mut data = Vec::with_capacity(count);
    for rec in &records {
        let chans = rec
            .channels
            .iter()
            .map(|&(id, len)| Ok((id, li.take(len)?)))
            .collect::<Result<Vec<_>>>()?;
        data.push(chans);
    }

    // Walk top to bottom so each folder is met before its children.
    let mut groups: Vec<(bool, f32)> = Vec::new();
    let mut kept = Vec::new();
    for (i, rec) in records.iter().enumerate().rev() {
        let (parent_visible, parent_opacity) = groups.last().copied().unwrap_or((true, 1.0));
        let visible = parent_visible && !rec.hidden;
        let opacity = parent_opacity * rec.opacity;
        match rec.section {
            Section::Folder => groups.push((visible, opacity)),
            Section::Divider => {
                groups.pop();
            }
            Section::Pixels => kept.push((i, LayerProps { opacity, visible })),
        }
    }
    kept.reverse();

    let (w, h) = (header.width, header.height);
    if kept.len() > limits.max_layers {
        return Err(PsdReadError::TooLarge(format!(
            "the PSD has {} layers, more than the {} we import: merge some layers and save again",
            kept.len(),
            limits.max_layers
        )));
    }
    let stack_bytes = (kept.len() as u64).saturating_mul(w as u64 * h as u64 * 4);
    if stack_bytes > limits.max_stack_bytes {
        return Err(PsdReadError::TooLarge(format!(
            "{} layers of {w}x{h} need more than {} MiB: merge some layers or reduce the image size",
            kept.len(),
            limits.max_stack_bytes >> 20
        )));
    }
    kept.into_iter()
        .map(|(i, props)| {
            let rec = &records[i];
            Ok(ReadLayer {
                name: rec.name.clone(),
                rgba: decode_layer(rec, &data[i], header)?,
                props,
                type_tool: rec.type_tool,
            })
        })
        .collect()
}
