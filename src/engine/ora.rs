//! OpenRaster (`.ora`) export and import of a [`LayerStack`] with per-layer opacity and
//! visibility ([`LayerProps`]).
//!
//! Writing follows the OpenRaster spec: a ZIP whose first entry is `mimetype`, stored
//! (uncompressed, no extra field) and holding exactly `image/openraster`, so the bytes
//! `mimetypeimage/openraster` sit at offset 30 as a magic number; then `stack.xml`
//! (`<image version="0.0.3" w h><stack>` with one `<layer>` per layer, **top first** as the
//! spec orders stacks, names XML-escaped), `data/NN.png` (one RGBA PNG per layer holding its
//! box, placed by `x`/`y`; `NN` = index from the bottom, zero-padded to at least two digits),
//! `mergedimage.png` (the
//! visible layers composited with `svg:src-over`: RGB when opaque, RGBA otherwise) and
//! `Thumbnails/thumbnail.png` (the merged image shrunk to at most 256 px on its long side,
//! aspect kept). Our layer kind and text ride along as `il:kind` / `il:text` attributes in
//! our own namespace, which other readers ignore.
//!
//! Reading takes back what we write and the common subset other producers write: every
//! `<layer>` element (nested stacks are flattened in document order), with `name`, `src`,
//! `x`/`y` offsets (the layer is clipped to the canvas and kept as its box), `opacity` and
//! `visibility`. Invariants: `decode_ora(encode_ora(s, p))` gives back the same pixels, names,
//! kinds, texts, opacities and visibilities; reading never trusts sizes from the archive —
//! the canvas, every PNG and every entry read are bounded before memory is committed (no entry
//! inflates past the size its ZIP header declares), and before any layer is read whole every
//! layer's PNG is sized from its entry and IHDR, so that the PNGs the `<layer>`s name (one PNG
//! may be named by thousands) together stay within the stack budget, read and decoded.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};

use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::export::encode_layer_png;
use super::layers::{Layer, LayerKind, LayerProps, LayerStack};
use super::thumbnail::thumbnail_png;

/// The exact content of the `mimetype` entry.
const MIMETYPE: &str = "image/openraster";
/// Long side of `Thumbnails/thumbnail.png`, as the spec requires.
const THUMBNAIL_SIDE: u32 = 256;
/// Namespace of our extra layer attributes (`il:kind`, `il:text`).
const IL_NS: &str = "urn:image-layered:ora:1";
/// Most pixels of a canvas or a layer PNG we accept when reading.
const MAX_PIXELS: u64 = 64_000_000;
/// Longest canvas or layer side we accept when reading.
const MAX_SIDE: u32 = 30_000;
/// Largest `stack.xml` / `mimetype` we read.
const MAX_XML_BYTES: u64 = 16 << 20;
/// Most bytes of decoded layers (full-canvas RGBA) one file may expand to.
const MAX_STACK_BYTES: u64 = 4 << 30;
/// Largest layer PNG entry we read (compressed size as stored in the ZIP).
const MAX_PNG_BYTES: u64 = 512 << 20;

/// Why an OpenRaster file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum OraError {
    #[error("cannot write OpenRaster: {0}")]
    Encode(String),
    #[error("cannot read OpenRaster: {0}")]
    Decode(String),
}

impl OraError {
    /// Stable snake_case code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            OraError::Encode(_) => "ora_encode",
            OraError::Decode(_) => "ora_decode",
        }
    }
}

fn enc(e: impl std::fmt::Display) -> OraError {
    OraError::Encode(e.to_string())
}

fn dec(e: impl std::fmt::Display) -> OraError {
    OraError::Decode(e.to_string())
}

/// `stack` as an OpenRaster file; `props[i]` belongs to `stack.layers[i]` (back to front).
pub fn encode_ora(stack: &LayerStack, props: &[LayerProps]) -> Result<Vec<u8>, OraError> {
    let (w, h) = (stack.width, stack.height);
    if w == 0 || h == 0 {
        return Err(enc(format!("the canvas is empty ({w}x{h})")));
    }
    if props.len() != stack.layers.len() {
        return Err(enc(format!(
            "{} layer props for {} layers",
            props.len(),
            stack.layers.len()
        )));
    }
    for (i, (layer, p)) in stack.layers.iter().zip(props).enumerate() {
        if !layer.fits(w, h) {
            let [x, y, lw, lh] = layer.rect();
            return Err(enc(format!(
                "layer {i} ({lw}x{lh} at {x},{y}) does not fit the {w}x{h} canvas"
            )));
        }
        if !p.opacity.is_finite() {
            return Err(enc(format!("layer {i} has opacity {}", p.opacity)));
        }
    }
    let digits = stack
        .layers
        .len()
        .saturating_sub(1)
        .to_string()
        .len()
        .max(2);
    let src = |i: usize| format!("data/{i:0digits$}.png");

    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <image version=\"0.0.3\" w=\"{w}\" h=\"{h}\" xmlns:il=\"{IL_NS}\">\n<stack>\n"
    );
    for (i, (layer, p)) in stack.layers.iter().zip(props).enumerate().rev() {
        xml.push_str(&format!(
            "<layer name=\"{}\" src=\"{}\" x=\"{}\" y=\"{}\" opacity=\"{}\" visibility=\"{}\" \
             composite-op=\"svg:src-over\" il:kind=\"{}\"",
            xml_escape(&layer.name),
            src(i),
            layer.origin[0],
            layer.origin[1],
            p.opacity.clamp(0.0, 1.0),
            if p.visible { "visible" } else { "hidden" },
            layer.kind.as_str(),
        ));
        if let Some(text) = &layer.text {
            xml.push_str(&format!(" il:text=\"{}\"", xml_escape(text)));
        }
        xml.push_str("/>\n");
    }
    xml.push_str("</stack>\n</image>\n");

    let merged = merged_image(stack, props);
    let merged_png = super::decode::encode_png(&merged).map_err(enc)?;
    let thumb_png = thumbnail_png(&merged, THUMBNAIL_SIDE).map_err(enc)?;

    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(DateTime::default());
    let deflated = stored.compression_method(CompressionMethod::Deflated);
    let mut put = |name: &str, opts: SimpleFileOptions, bytes: &[u8]| -> Result<(), OraError> {
        let opts = opts.large_file(bytes.len() as u64 >= u32::MAX as u64);
        zip.start_file(name, opts).map_err(enc)?;
        zip.write_all(bytes).map_err(enc)
    };
    put("mimetype", stored, MIMETYPE.as_bytes())?;
    put("stack.xml", deflated, xml.as_bytes())?;
    for (i, layer) in stack.layers.iter().enumerate() {
        put(&src(i), stored, &encode_layer_png(layer).map_err(enc)?)?;
    }
    put("mergedimage.png", stored, &merged_png)?;
    put("Thumbnails/thumbnail.png", stored, &thumb_png)?;
    Ok(zip.finish().map_err(enc)?.into_inner())
}

/// What reading an OpenRaster file may cost: checked from `stack.xml` before any layer
/// is decoded or any canvas allocated.
#[derive(Debug, Clone, Copy)]
pub struct OraLimits {
    /// Most canvas pixels (width × height).
    pub max_pixels: u64,
    /// Longest canvas side.
    pub max_side: u32,
    /// Most bytes of decoded layers (layers × width × height × 4).
    pub max_stack_bytes: u64,
}

impl Default for OraLimits {
    fn default() -> Self {
        Self {
            max_pixels: MAX_PIXELS,
            max_side: MAX_SIDE,
            max_stack_bytes: MAX_STACK_BYTES,
        }
    }
}

/// Reads an OpenRaster file back into a stack (back to front) and each layer's props,
/// within the default limits.
pub fn decode_ora(bytes: &[u8]) -> Result<(LayerStack, Vec<LayerProps>), OraError> {
    decode_ora_within(bytes, &OraLimits::default())
}

/// [`decode_ora`] within `limits`: a canvas or a stack over them is refused, naming the
/// limit, before anything is allocated for it.
pub fn decode_ora_within(
    bytes: &[u8],
    limits: &OraLimits,
) -> Result<(LayerStack, Vec<LayerProps>), OraError> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(dec)?;
    let mime = read_entry(&mut zip, "mimetype", MAX_XML_BYTES)?;
    if mime.trim_ascii() != MIMETYPE.as_bytes() {
        return Err(dec("the mimetype entry is not image/openraster"));
    }
    let xml = read_entry(&mut zip, "stack.xml", MAX_XML_BYTES)?;
    let xml = std::str::from_utf8(&xml).map_err(|_| dec("stack.xml is not UTF-8"))?;

    let (mut width, mut height) = (None, None);
    let mut entries = Vec::new();
    for (tag, attrs) in start_tags(xml)? {
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match tag.as_str() {
            "image" => {
                width = get("w").map(parse_num::<u32>).transpose()?;
                height = get("h").map(parse_num::<u32>).transpose()?;
            }
            "layer" => {
                let src = get("src").ok_or_else(|| dec("a layer has no src"))?;
                let opacity = match get("opacity") {
                    Some(v) => parse_num::<f32>(v)?,
                    None => 1.0,
                };
                if !opacity.is_finite() {
                    return Err(dec(format!("a layer has opacity {opacity}")));
                }
                let kind = match get("il:kind") {
                    Some("background") => LayerKind::Background,
                    Some("text") => LayerKind::Text,
                    Some(_) => LayerKind::Object,
                    None => LayerKind::Object,
                };
                entries.push((
                    src.to_owned(),
                    get("name").unwrap_or_default().to_owned(),
                    kind,
                    get("il:text").map(str::to_owned),
                    get("x").map(parse_num::<i64>).transpose()?.unwrap_or(0),
                    get("y").map(parse_num::<i64>).transpose()?.unwrap_or(0),
                    LayerProps {
                        opacity: opacity.clamp(0.0, 1.0),
                        visible: get("visibility") != Some("hidden"),
                    },
                ));
            }
            _ => {}
        }
    }
    let (Some(w), Some(h)) = (width, height) else {
        return Err(dec("stack.xml has no <image w h>"));
    };
    check_size(w, h)?;
    if w as u64 * h as u64 > limits.max_pixels || w.max(h) > limits.max_side {
        return Err(dec(format!(
            "its canvas is {w}x{h}, over this studio's limits ({} pixels, {} per side)",
            limits.max_pixels, limits.max_side
        )));
    }
    let stack_bytes = (entries.len() as u64).saturating_mul(w as u64 * h as u64 * 4);
    if stack_bytes > limits.max_stack_bytes {
        return Err(dec(format!(
            "{} layers of {w}x{h} would take {} MiB decoded, over the {} MiB allowed \
             (uploads.max_stack_bytes): merge some layers or reduce the image size",
            entries.len(),
            stack_bytes >> 20,
            limits.max_stack_bytes >> 20
        )));
    }
    check_layer_pngs(&mut zip, entries.iter().map(|e| e.0.as_str()), limits)?;
    let imported_kinds = entries.iter().all(|e| e.2 == LayerKind::Object);

    // stack.xml lists layers top first; the stack is back to front.
    let mut layers = Vec::with_capacity(entries.len());
    let mut props = Vec::with_capacity(entries.len());
    for (src, name, kind, text, x, y, p) in entries.into_iter().rev() {
        let png = read_entry(&mut zip, &src, MAX_PNG_BYTES)?;
        // The decoder allocates the whole image before reading any pixel data.
        if !super::decode::png_data_suffices(&png) {
            return Err(dec(format!("{src}: the PNG ends before its pixels do")));
        }
        let img = decode_png(&png).map_err(|e| dec(format!("{src}: {e}")))?;
        let (origin, rgba) = clip_to_canvas(img, x, y, w, h);
        layers.push(Layer {
            name,
            kind,
            origin,
            rgba,
            text,
        });
        props.push(p);
    }
    // A file from another producer carries no kinds: call its bottom layer the background.
    if imported_kinds {
        if let Some(bottom) = layers.first_mut() {
            bottom.kind = LayerKind::Background;
        }
    }
    let stack = LayerStack {
        width: w,
        height: h,
        layers,
    };
    Ok((stack, props))
}

/// The part of `img`, placed at `(x, y)`, that lies on a `w × h` canvas, with its position
/// (an empty image at the origin when none does).
fn clip_to_canvas(img: RgbaImage, x: i64, y: i64, w: u32, h: u32) -> ([u32; 2], RgbaImage) {
    let (iw, ih) = img.dimensions();
    let x0 = x.clamp(0, i64::from(w));
    let y0 = y.clamp(0, i64::from(h));
    let x1 = (x + i64::from(iw)).clamp(0, i64::from(w));
    let y1 = (y + i64::from(ih)).clamp(0, i64::from(h));
    if x1 <= x0 || y1 <= y0 {
        return ([0, 0], RgbaImage::new(0, 0));
    }
    if (x0, y0, x1 - x0, y1 - y0) == (x, y, i64::from(iw), i64::from(ih)) {
        return ([x0 as u32, y0 as u32], img);
    }
    let crop = image::imageops::crop_imm(
        &img,
        (x0 - x) as u32,
        (y0 - y) as u32,
        (x1 - x0) as u32,
        (y1 - y0) as u32,
    )
    .to_image();
    ([x0 as u32, y0 as u32], crop)
}

/// The visible layers composited with src-over on transparency, each layer's alpha scaled
/// by its opacity: RGB when every pixel ends opaque, RGBA otherwise.
fn merged_image(stack: &LayerStack, props: &[LayerProps]) -> DynamicImage {
    let n = stack.width as usize * stack.height as usize;
    // Premultiplied RGB + alpha, in 0..=1.
    let mut acc = vec![0f32; n * 4];
    for (layer, p) in stack.layers.iter().zip(props) {
        let opacity = p.opacity.clamp(0.0, 1.0);
        if !p.visible || opacity == 0.0 {
            continue;
        }
        for (i, px) in layer.canvas_pixels(stack.width) {
            let out = &mut acc[i * 4..i * 4 + 4];
            let a = px[3] as f32 / 255.0 * opacity;
            if a == 0.0 {
                continue;
            }
            for c in 0..3 {
                out[c] = px[c] as f32 / 255.0 * a + out[c] * (1.0 - a);
            }
            out[3] = a + out[3] * (1.0 - a);
        }
    }
    let byte = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    let (w, h) = (stack.width, stack.height);
    if acc.chunks_exact(4).all(|p| byte(p[3]) == 255) {
        let rgb = acc
            .chunks_exact(4)
            .flat_map(|p| [0, 1, 2].map(|c| byte(p[c])));
        DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, rgb.collect()).expect("sizes match"))
    } else {
        let rgba = acc.chunks_exact(4).flat_map(|p| {
            let a = p[3];
            let un = |v: f32| if a > 0.0 { byte(v / a) } else { 0 };
            [un(p[0]), un(p[1]), un(p[2]), byte(a)]
        });
        DynamicImage::ImageRgba8(RgbaImage::from_raw(w, h, rgba.collect()).expect("sizes match"))
    }
}

fn check_size(w: u32, h: u32) -> Result<(), OraError> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        return Err(dec(format!("unsupported size {w}x{h}")));
    }
    Ok(())
}

/// The entry `name`, refused when it is larger than `max` bytes uncompressed.
fn read_entry(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    max: u64,
) -> Result<Vec<u8>, OraError> {
    let entry = zip.by_name(name).map_err(|e| dec(format!("{name}: {e}")))?;
    if entry.size() > max {
        return Err(dec(format!("{name} is larger than {max} bytes")));
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    entry
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| dec(format!("{name}: {e}")))?;
    if out.len() as u64 > max {
        return Err(dec(format!("{name} is larger than {max} bytes")));
    }
    Ok(out)
}

/// Sizes the PNG of every layer (each distinct entry once) from its ZIP entry and its IHDR
/// before any is inflated whole or decoded: one over the canvas limits is refused, and so are
/// layers whose PNGs together would inflate or decode (RGBA, 4 bytes a pixel) to more than the
/// stack budget. A layer costs its own PNG whatever the canvas, and many `<layer>`s may name
/// one PNG: without this a small file with a 1×1 canvas made us decode one 64 MP PNG thousands
/// of times (the bomb corpus in `tests/fuzz`). Declared sizes can be trusted as bounds: the
/// `zip` reader fails an entry that inflates past its declared size (also in that corpus).
fn check_layer_pngs<'a>(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    srcs: impl Iterator<Item = &'a str>,
    limits: &OraLimits,
) -> Result<(), OraError> {
    let mut sized: HashMap<&str, (u64, u64)> = HashMap::new();
    let (mut inflated, mut decoded) = (0u64, 0u64);
    for src in srcs {
        let (size, pixels) = match sized.get(src) {
            Some(&cost) => cost,
            None => {
                let cost = png_entry_cost(zip, src, limits)?;
                sized.insert(src, cost);
                cost
            }
        };
        inflated = inflated.saturating_add(size);
        decoded = decoded.saturating_add(pixels.saturating_mul(4));
    }
    let need = inflated.max(decoded);
    if need > limits.max_stack_bytes {
        return Err(dec(format!(
            "its layer images would take {} MiB to read and decode, over the {} MiB allowed \
             (uploads.max_stack_bytes): merge some layers or reduce the image size",
            need >> 20,
            limits.max_stack_bytes >> 20
        )));
    }
    Ok(())
}

/// The declared uncompressed size of the PNG entry `src` and the pixels its IHDR declares,
/// read from its first 24 bytes; refused when over [`MAX_PNG_BYTES`] or the canvas limits.
fn png_entry_cost(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    src: &str,
    limits: &OraLimits,
) -> Result<(u64, u64), OraError> {
    let entry = zip.by_name(src).map_err(|e| dec(format!("{src}: {e}")))?;
    let size = entry.size();
    if size > MAX_PNG_BYTES {
        return Err(dec(format!("{src} is larger than {MAX_PNG_BYTES} bytes")));
    }
    let mut head = [0u8; 24];
    entry
        .take(24)
        .read_exact(&mut head)
        .map_err(|_| dec(format!("{src} is not a PNG image")))?;
    if &head[..8] != b"\x89PNG\r\n\x1a\n" || &head[12..16] != b"IHDR" {
        return Err(dec(format!("{src} is not a PNG image")));
    }
    let w = u32::from_be_bytes([head[16], head[17], head[18], head[19]]);
    let h = u32::from_be_bytes([head[20], head[21], head[22], head[23]]);
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels || w.max(h) > limits.max_side {
        return Err(dec(format!(
            "{src} is {w}x{h}, over this studio's limits ({} pixels, {} per side)",
            limits.max_pixels, limits.max_side
        )));
    }
    Ok((size, pixels))
}

fn decode_png(bytes: &[u8]) -> Result<RgbaImage, image::ImageError> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
    reader.limits(limits);
    Ok(reader.decode()?.into_rgba8())
}

fn parse_num<T: std::str::FromStr>(v: &str) -> Result<T, OraError> {
    // Producers write offsets and sizes as integers, but tolerate "12.0".
    let v = v.trim();
    v.parse()
        .or_else(|_| v.strip_suffix(".0").unwrap_or(v).parse())
        .map_err(|_| dec(format!("bad number {v:?} in stack.xml")))
}

/// `s` escaped for a double-quoted XML attribute; tabs and line breaks become character
/// references so attribute-value normalisation does not turn them into spaces.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            // Other controls are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

fn xml_unescape(s: &str) -> Result<String, OraError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(';')
            .ok_or_else(|| dec("unterminated entity in stack.xml"))?;
        let ent = &rest[i + 1..i + end];
        let c = match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = ent.strip_prefix("#x").or(ent.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    ent.strip_prefix('#').and_then(|d| d.parse().ok())
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| dec(format!("unknown entity &{ent}; in stack.xml")))?
            }
        };
        out.push(c);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A start tag's name and its `(attribute, value)` pairs in document order.
type StartTag = (String, Vec<(String, String)>);

/// Every start (or empty-element) tag of `xml` in document order, with its attributes
/// unescaped and normalised. Comments, declarations, processing instructions and text are
/// skipped; this is enough for `stack.xml`, not a general XML parser.
fn start_tags(xml: &str) -> Result<Vec<StartTag>, OraError> {
    let mut tags = Vec::new();
    let mut rest = xml;
    let bad = || dec("malformed stack.xml");
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let skip_to = |end: &str, rest: &str| rest.find(end).map(|j| j + end.len());
        let skip = if rest.starts_with("!--") {
            skip_to("-->", rest)
        } else if rest.starts_with("![CDATA[") {
            skip_to("]]>", rest)
        } else if rest.starts_with('?') {
            skip_to("?>", rest)
        } else if rest.starts_with('!') || rest.starts_with('/') {
            skip_to(">", rest)
        } else {
            None
        };
        if let Some(j) = skip {
            rest = &rest[j..];
            continue;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .ok_or_else(bad)?;
        let name = rest[..name_end].to_owned();
        if name.is_empty() {
            return Err(bad());
        }
        rest = &rest[name_end..];
        let mut attrs = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix("/>").or(rest.strip_prefix('>')) {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or_else(bad)?;
            let key = rest[..eq].trim();
            if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '>') {
                return Err(bad());
            }
            let after = rest[eq + 1..].trim_start();
            let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'');
            let quote = quote.ok_or_else(bad)?;
            let close = after[1..].find(quote).ok_or_else(bad)?;
            let raw = after[1..1 + close].replace(['\t', '\n', '\r'], " ");
            attrs.push((key.to_owned(), xml_unescape(&raw)?));
            rest = &after[close + 2..];
        }
        tags.push((name, attrs));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    const TRICKY: &str = "Text: <b>&\"Café\" 'q'\n\tend";

    fn sample(w: u32, h: u32) -> (LayerStack, Vec<LayerProps>) {
        let bg = RgbaImage::from_fn(w, h, |x, y| Rgba([(x * 7) as u8, (y * 5) as u8, 90, 255]));
        let mut obj = RgbaImage::new(w, h);
        let mut text = RgbaImage::new(w, h);
        for y in 2..h / 2 {
            for x in 1..w / 2 {
                obj.put_pixel(x, y, Rgba([200, 100, 0, 180]));
            }
        }
        text.put_pixel(w - 1, h - 1, Rgba([255, 255, 255, 1]));
        text.put_pixel(w / 2, 0, Rgba([1, 2, 3, 255]));
        let layer = |name: &str, kind, rgba, text: Option<&str>| Layer {
            name: name.into(),
            kind,
            origin: [0, 0],
            rgba,
            text: text.map(str::to_owned),
        };
        let stack = LayerStack {
            width: w,
            height: h,
            layers: vec![
                layer("Background", LayerKind::Background, bg, None),
                layer("Object 1", LayerKind::Object, obj, None),
                layer(TRICKY, LayerKind::Text, text, Some("<b>&\"Café\"")).cropped(),
            ],
        };
        let props = vec![
            LayerProps::default(),
            LayerProps {
                opacity: 0.35,
                visible: true,
            },
            LayerProps {
                opacity: 0.8,
                visible: false,
            },
        ];
        (stack, props)
    }

    fn entry(bytes: &[u8], name: &str) -> Vec<u8> {
        let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
        read_entry(&mut zip, name, u64::MAX / 2).unwrap()
    }

    #[test]
    fn mimetype_first_stored_and_magic_at_30() {
        let (stack, props) = sample(9, 7);
        let bytes = encode_ora(&stack, &props).unwrap();
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        // Local header: method at 8, name length at 26, extra length at 28.
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 0, "stored");
        assert_eq!(u16::from_le_bytes([bytes[26], bytes[27]]), 8);
        assert_eq!(u16::from_le_bytes([bytes[28], bytes[29]]), 0, "no extra");
        assert_eq!(&bytes[30..54], b"mimetypeimage/openraster");
        let mut zip = ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let first = zip.by_index(0).unwrap();
        assert_eq!(first.name().unwrap(), "mimetype");
        assert_eq!(first.compression(), CompressionMethod::Stored);
        assert_eq!(first.size(), 16);
        drop(first);
        let names: Vec<_> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        for want in ["stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
    }

    #[test]
    fn stack_xml_lists_top_first_and_escapes() {
        let (stack, props) = sample(9, 7);
        let xml =
            String::from_utf8(entry(&encode_ora(&stack, &props).unwrap(), "stack.xml")).unwrap();
        let tags = start_tags(&xml).unwrap();
        let srcs: Vec<_> = tags
            .iter()
            .filter(|(t, _)| t == "layer")
            .map(|(_, a)| a.iter().find(|(k, _)| k == "src").unwrap().1.clone())
            .collect();
        assert_eq!(srcs, ["data/02.png", "data/01.png", "data/00.png"]);
        assert!(xml.contains(r#"<image version="0.0.3" w="9" h="7""#));
        assert!(
            xml.contains("name=\"Text: &lt;b&gt;&amp;&quot;Café&quot; &apos;q&apos;&#10;&#9;end\"")
        );
        assert!(xml.contains(r#"visibility="hidden""#));
        assert!(xml.contains(r#"composite-op="svg:src-over""#));
    }

    #[test]
    fn round_trip_keeps_pixels_names_and_props() {
        let (stack, props) = sample(9, 7);
        let (back, back_props) = decode_ora(&encode_ora(&stack, &props).unwrap()).unwrap();
        assert_eq!(back, stack);
        assert_eq!(back.layers[2].name, TRICKY);
        assert_eq!(back_props, props);
    }

    #[test]
    fn merged_and_thumbnail() {
        let (stack, _) = sample(600, 300);
        let mut props = vec![LayerProps::default(); 3];
        let bytes = encode_ora(&stack, &props).unwrap();
        let merged = image::load_from_memory(&entry(&bytes, "mergedimage.png")).unwrap();
        // Opaque background, default props on the visible layers: the stack's composite.
        assert!(merged.as_rgb8().unwrap() == &stack.composite());
        let thumb = image::load_from_memory(&entry(&bytes, "Thumbnails/thumbnail.png")).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (256, 128));

        // Hidden background: the merged image keeps transparency.
        props[0].visible = false;
        let bytes = encode_ora(&stack, &props).unwrap();
        let merged = image::load_from_memory(&entry(&bytes, "mergedimage.png")).unwrap();
        let merged = merged.as_rgba8().unwrap();
        assert_eq!(merged.get_pixel(0, 0).0, [0, 0, 0, 0]);
        assert_eq!(merged.get_pixel(2, 3).0, [200, 100, 0, 180]);
    }

    /// An OpenRaster file whose `n` layers all name one 2x2 PNG on a `w`x`h` canvas: a few
    /// hundred bytes that ask for `n` full canvases.
    pub(crate) fn stack_bomb(n: usize, w: u32, h: u32) -> Vec<u8> {
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(RgbaImage::new(2, 2))
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let layers: String = (0..n)
            .map(|i| format!("<layer src='data/a.png' name='l{i}'/>"))
            .collect();
        let xml =
            format!("<?xml version='1.0'?><image w='{w}' h='{h}'><stack>{layers}</stack></image>");
        ora_by_hand(&xml, &png)
    }

    /// An OpenRaster file of `stack.xml` and one layer PNG at `data/a.png`.
    fn ora_by_hand(xml: &str, png: &[u8]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default();
        for (name, data) in [
            ("mimetype", MIMETYPE.as_bytes()),
            ("stack.xml", xml.as_bytes()),
            ("data/a.png", png),
        ] {
            zip.start_file(name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_stack_over_the_budget_is_refused_before_any_canvas_is_allocated() {
        let limits = OraLimits {
            max_pixels: 64_000_000,
            max_side: 30_000,
            max_stack_bytes: 1 << 30,
        };
        // 20 canvases of 4096x4096: 1280 MiB, from a file of a few hundred bytes
        let bomb = stack_bomb(20, 4096, 4096);
        assert!(bomb.len() < 4096, "{}", bomb.len());
        let started = std::time::Instant::now();
        let msg = decode_ora_within(&bomb, &limits).unwrap_err().to_string();
        assert!(
            msg.contains("uploads.max_stack_bytes") && msg.contains("1280 MiB"),
            "{msg}"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // the canvas limits are the studio's, not only the format's
        let small = OraLimits {
            max_pixels: 1_000_000,
            ..limits
        };
        let msg = decode_ora_within(&stack_bomb(1, 2000, 2000), &small)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("over this studio's limits"), "{msg}");
        // within the budget it reads
        let (stack, _) = decode_ora_within(&stack_bomb(3, 64, 64), &limits).unwrap();
        assert_eq!(stack.layers.len(), 3);
        // a 1×1 canvas does not make the layers' own PNGs free: 1000 layers naming one PNG
        // read it 1000 times, over 16 KiB (the canvases alone take 4000 bytes)
        let tight = OraLimits {
            max_stack_bytes: 16 << 10,
            ..limits
        };
        let msg = decode_ora_within(&stack_bomb(1000, 1, 1), &tight)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("layer images would take"), "{msg}");
        let (stack, _) = decode_ora_within(&stack_bomb(100, 1, 1), &tight).unwrap();
        assert_eq!(stack.layers.len(), 100);
    }

    #[test]
    fn reads_offsets_and_foreign_producers() {
        let mut img = RgbaImage::new(2, 2);
        img.put_pixel(1, 1, Rgba([9, 8, 7, 255]));
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(img)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let xml = "<?xml version='1.0'?><!-- by hand --><image w='5' h='4'>\n<stack>\
             <layer src='data/a.png' name='A &amp; &#x42;' x='3' y='-1' opacity='0.500'/>\
             <stack><layer src='data/a.png' name='bottom' visibility='hidden'></layer></stack>\
             </stack></image>";
        let (stack, props) = decode_ora(&ora_by_hand(xml, &png)).unwrap();
        assert_eq!((stack.width, stack.height), (5, 4));
        assert_eq!(stack.layers[0].name, "bottom");
        assert_eq!(stack.layers[0].kind, LayerKind::Background);
        assert_eq!(stack.layers[1].name, "A & B");
        assert_eq!(stack.layers[1].kind, LayerKind::Object);
        assert_eq!(stack.layers[0].rgba.get_pixel(1, 1).0, [9, 8, 7, 255]);
        // (1,1) of the PNG lands at (3+1, -1+1); everything else is transparent.
        let top = &stack.layers[1];
        assert_eq!(top.pixel(4, 0).0, [9, 8, 7, 255]);
        assert_eq!(top.rect(), [3, 0, 2, 1], "the PNG's part on the canvas");
        assert_eq!(top.rgba.pixels().filter(|p| p.0[3] > 0).count(), 1);
        assert_eq!(
            props[0],
            LayerProps {
                opacity: 1.0,
                visible: false
            }
        );
        assert_eq!(
            props[1],
            LayerProps {
                opacity: 0.5,
                visible: true
            }
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let (mut stack, props) = sample(9, 7);
        assert_eq!(
            encode_ora(&stack, &props[..2]).unwrap_err().code(),
            "ora_encode"
        );
        let bytes = encode_ora(&stack, &props).unwrap();
        stack.layers[1].origin = [7, 5];
        stack.layers[1].rgba = RgbaImage::new(3, 3);
        assert_eq!(encode_ora(&stack, &props).unwrap_err().code(), "ora_encode");
        assert_eq!(decode_ora(b"not a zip").unwrap_err().code(), "ora_decode");
        assert_eq!(
            decode_ora(&bytes[..bytes.len() / 2]).unwrap_err().code(),
            "ora_decode"
        );
        assert!(start_tags("<image w='1'").is_err());
        assert!(xml_unescape("&bogus;").is_err());
        // 64 full layers of 15000x1500 would need 5.4 GiB: refused before any PNG is read.
        let many = "<image w='15000' h='1500'><stack>".to_owned()
            + &"<layer src='x.png'/>".repeat(64)
            + "</stack></image>";
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in [("mimetype", MIMETYPE), ("stack.xml", many.as_str())] {
            zip.start_file(name, SimpleFileOptions::default()).unwrap();
            zip.write_all(data.as_bytes()).unwrap();
        }
        let err = decode_ora(&zip.finish().unwrap().into_inner()).unwrap_err();
        assert!(err.to_string().contains("5493 MiB decoded"), "{err}");
    }
}
