//! Writing a [`LayerStack`] as files: one RGBA PNG per layer, named `NN_<kind>.png` back to
//! front (`NN` from `00`, zero-padded to at least two digits so names sort in stack order),
//! plus a `manifest.json` = `{"width","height","layers":[{"file","id","name","kind","bbox",
//! "z","text"}]}` listing the same files in the same order. This is the format of
//! `image-layered decompose -o DIR` and of `eval --out`, and the one `score.py` reads.
//!
//! Invariants: manifest order = file order = stack order (`z` = index, `id` = `layer-NN`);
//! every layer lies on the canvas (checked before anything is written), and every layer file
//! is the full canvas, encoded row by row from the layer's box; a directory write
//! replaces each file atomically (temp file + fsync + rename) and writes the manifest last,
//! so a manifest on disk never names a file that is missing or half written. Unlike the rest
//! of [`engine`](super), the `write_*` functions here do file I/O — only into the path or
//! writer the caller hands them.

use std::fs::{self, File};
use std::io::{Cursor, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::layers::{Layer, LayerKind, LayerProps, LayerStack};

/// The file name of the manifest inside a directory or ZIP.
pub const MANIFEST_FILE: &str = "manifest.json";

/// `manifest.json`: the stack's size and its layers back to front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub width: u32,
    pub height: u32,
    pub layers: Vec<ManifestLayer>,
}

/// One layer entry of [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestLayer {
    /// File name relative to the manifest, e.g. `01_object.png`.
    pub file: String,
    /// Stable id within the stack, e.g. `layer-01`.
    pub id: String,
    pub name: String,
    pub kind: LayerKind,
    /// `[x, y, w, h]` of the pixels with alpha > 0 (all zeros for an empty layer).
    pub bbox: [u32; 4],
    /// Position from the back (0 = bottom).
    pub z: usize,
    /// The string of a text layer; `null` otherwise.
    pub text: Option<String>,
}

/// Why a stack could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "layer {index} ({}x{} at {},{}) does not fit the {want_w}x{want_h} stack",
        rect[2], rect[3], rect[0], rect[1]
    )]
    LayerSize {
        index: usize,
        /// The layer's `[x, y, w, h]`.
        rect: [u32; 4],
        want_w: u32,
        want_h: u32,
    },
    #[error("encoding a layer as PNG failed: {0}")]
    Png(#[from] image::ImageError),
    #[error("encoding a layer as PNG failed: {0}")]
    PngStream(#[from] png::EncodingError),
    #[error("serialising the manifest failed: {0}")]
    Manifest(#[from] serde_json::Error),
    #[error("writing the ZIP failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("encoding the PSD failed: {0}")]
    Psd(#[from] super::psd::PsdError),
    #[error("encoding the OpenRaster file failed: {0}")]
    Ora(#[from] super::ora::OraError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ExportError {
    /// Stable snake_case code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::LayerSize { .. } => "export_layer_size",
            ExportError::Png(_) | ExportError::PngStream(_) => "export_png",
            ExportError::Manifest(_) => "export_manifest",
            ExportError::Zip(_) => "export_zip",
            ExportError::Psd(_) => "export_psd",
            ExportError::Ora(_) => "export_ora",
            ExportError::Io { .. } => "export_io",
        }
    }
}

/// The manifest of `stack` (file names, ids, kinds, bounding boxes, z order).
pub fn manifest(stack: &LayerStack) -> Manifest {
    let digits = index_digits(stack.layers.len());
    let layers = stack
        .layers
        .iter()
        .enumerate()
        .map(|(z, layer)| ManifestLayer {
            file: format!("{z:0digits$}_{}.png", layer.kind.as_str()),
            id: format!("layer-{z:0digits$}"),
            name: layer.name.clone(),
            kind: layer.kind,
            bbox: layer.bbox(),
            z,
            text: layer.text.clone(),
        })
        .collect();
    Manifest {
        width: stack.width,
        height: stack.height,
        layers,
    }
}

/// The pixels the layer holds (its box, not the canvas) as an RGBA8 PNG (fast compression);
/// a layer that holds none is one transparent pixel.
pub fn encode_layer_png(layer: &Layer) -> Result<Vec<u8>, ExportError> {
    let (w, h) = layer.rgba.dimensions();
    let mut out = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    if w == 0 || h == 0 {
        encoder.write_image(&[0; 4], 1, 1, ExtendedColorType::Rgba8)?;
    } else {
        encoder.write_image(layer.rgba.as_raw(), w, h, ExtendedColorType::Rgba8)?;
    }
    Ok(out)
}

/// A reader of the layer's full-canvas PNG that encodes rows only as they are read: what an
/// HTTP download streams, holding the layer's box, a row and the compressor's buffer. `L` is
/// the layer, owned or borrowed.
pub struct CanvasPngReader<L = Layer> {
    layer: L,
    height: u32,
    next_row: u32,
    row: Vec<u8>,
    /// Compressed bytes the encoder has written and the reader not yet taken.
    out: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<u8>>>,
    writer: Option<png::StreamWriter<'static, SharedSink>>,
}

/// The encoder's end of [`CanvasPngReader::out`].
struct SharedSink(std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<u8>>>);

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        out.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<L: std::borrow::Borrow<Layer>> CanvasPngReader<L> {
    pub fn new(layer: L, width: u32, height: u32) -> Result<Self, ExportError> {
        let out = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let writer = canvas_encoder(layer.borrow(), width, height, SharedSink(out.clone()))?;
        Ok(Self {
            layer,
            height,
            next_row: 0,
            row: vec![0; width as usize * 4],
            out,
            writer: Some(writer),
        })
    }

    /// Feeds the encoder one more row (or finishes the file); `false` once all is written.
    fn feed(&mut self) -> std::io::Result<bool> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(false);
        };
        if self.next_row == self.height {
            let writer = self.writer.take().expect("checked above");
            writer.finish().map_err(std::io::Error::other)?;
            return Ok(true);
        }
        canvas_row(self.layer.borrow(), self.next_row, &mut self.row);
        writer.write_all(&self.row)?;
        self.next_row += 1;
        Ok(true)
    }
}

impl<L: std::borrow::Borrow<Layer>> std::io::Read for CanvasPngReader<L> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            {
                let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
                if !out.is_empty() || buf.is_empty() {
                    let n = buf.len().min(out.len());
                    for (b, v) in buf.iter_mut().zip(out.drain(..n)) {
                        *b = v;
                    }
                    return Ok(n);
                }
            }
            if !self.feed()? {
                return Ok(0);
            }
        }
    }
}

/// A row-by-row RGBA8 PNG encoder of a `width × height` canvas for `layer` (fast
/// compression), once the layer is checked to lie on it.
fn canvas_encoder<W: Write + 'static>(
    layer: &Layer,
    width: u32,
    height: u32,
    out: W,
) -> Result<png::StreamWriter<'static, W>, ExportError> {
    if !layer.fits(width, height) || width == 0 || height == 0 {
        return Err(ExportError::LayerSize {
            index: 0,
            rect: layer.rect(),
            want_w: width,
            want_h: height,
        });
    }
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Adaptive);
    Ok(encoder.write_header()?.into_stream_writer()?)
}

/// Row `y` of the layer on its canvas (`row` is the canvas's width in RGBA bytes).
fn canvas_row(layer: &Layer, y: u32, row: &mut [u8]) {
    row.fill(0);
    let [lx, ly, lw, lh] = layer.rect().map(|v| v as usize);
    let y = y as usize;
    if (ly..ly + lh).contains(&y) {
        let src = &layer.rgba.as_raw()[(y - ly) * lw * 4..(y - ly + 1) * lw * 4];
        row[lx * 4..(lx + lw) * 4].copy_from_slice(src);
    }
}

/// The layer on its full `width × height` canvas as an RGBA8 PNG, encoded row by row (memory:
/// the compressed file, so a small object on a large canvas costs little).
pub fn encode_canvas_png(layer: &Layer, width: u32, height: u32) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut CanvasPngReader::new(layer, width, height)?, &mut out)
        .map_err(|e| ExportError::PngStream(e.into()))?;
    Ok(out)
}

/// Writes `NN_<kind>.png` for every layer and then `manifest.json` into `dir` (created if
/// missing), each atomically. Files of an earlier, longer stack in `dir` are left alone; the
/// manifest says which files are current.
pub fn write_png_dir(stack: &LayerStack, dir: &Path) -> Result<Manifest, ExportError> {
    check_sizes(stack)?;
    fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let manifest = manifest(stack);
    for (layer, entry) in stack.layers.iter().zip(&manifest.layers) {
        let png = encode_canvas_png(layer, stack.width, stack.height)?;
        write_atomic(&dir.join(&entry.file), &png)?;
    }
    let json = serde_json::to_vec_pretty(&manifest)?;
    write_atomic(&dir.join(MANIFEST_FILE), &json)?;
    Ok(manifest)
}

/// Writes the same files as [`write_png_dir`] into one ZIP: `manifest.json` first
/// (deflated), then the PNGs (stored: they are compressed already).
pub fn write_zip<W: Write + Seek>(stack: &LayerStack, out: W) -> Result<Manifest, ExportError> {
    check_sizes(stack)?;
    let manifest = manifest(stack);
    let mut zip = ZipWriter::new(out);
    let opts = SimpleFileOptions::default()
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    zip.start_file(
        MANIFEST_FILE,
        opts.compression_method(CompressionMethod::Deflated),
    )?;
    zip.write_all(&serde_json::to_vec_pretty(&manifest)?)
        .map_err(zip::result::ZipError::Io)?;
    for (layer, entry) in stack.layers.iter().zip(&manifest.layers) {
        let png = encode_canvas_png(layer, stack.width, stack.height)?;
        zip.start_file(
            entry.file.as_str(),
            opts.compression_method(CompressionMethod::Stored)
                .large_file(png.len() as u64 >= u32::MAX as u64),
        )?;
        zip.write_all(&png).map_err(zip::result::ZipError::Io)?;
    }
    zip.finish()?;
    Ok(manifest)
}

/// [`write_zip`] into memory.
pub fn zip_bytes(stack: &LayerStack) -> Result<(Vec<u8>, Manifest), ExportError> {
    let mut cur = Cursor::new(Vec::new());
    let manifest = write_zip(stack, &mut cur)?;
    Ok((cur.into_inner(), manifest))
}

/// [`write_zip`] into the file at `path`, atomically (temp file + fsync + rename).
pub fn write_zip_file(stack: &LayerStack, path: &Path) -> Result<Manifest, ExportError> {
    let (bytes, manifest) = zip_bytes(stack)?;
    write_atomic(path, &bytes)?;
    Ok(manifest)
}

/// Zero-padded width of layer indices: two digits, more for stacks past 100 layers.
fn index_digits(n: usize) -> usize {
    n.saturating_sub(1).to_string().len().max(2)
}

fn check_sizes(stack: &LayerStack) -> Result<(), ExportError> {
    for (index, layer) in stack.layers.iter().enumerate() {
        if !layer.fits(stack.width, stack.height) {
            return Err(ExportError::LayerSize {
                index,
                rect: layer.rect(),
                want_w: stack.width,
                want_h: stack.height,
            });
        }
    }
    Ok(())
}

/// Layered and flat export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Png,
    Jpeg,
    Webp,
    Zip,
    Psd,
    Ora,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "png" => Ok(ExportFormat::Png),
            "jpeg" | "jpg" => Ok(ExportFormat::Jpeg),
            "webp" => Ok(ExportFormat::Webp),
            "zip" => Ok(ExportFormat::Zip),
            "psd" => Ok(ExportFormat::Psd),
            "ora" => Ok(ExportFormat::Ora),
            other => Err(format!(
                "unknown export format {other:?}: use png, jpeg, webp, zip, ora or psd"
            )),
        }
    }
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Png => "image/png",
            ExportFormat::Jpeg => "image/jpeg",
            ExportFormat::Webp => "image/webp",
            ExportFormat::Zip => "application/zip",
            ExportFormat::Psd => "image/vnd.adobe.photoshop",
            ExportFormat::Ora => "image/openraster",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Png => "png",
            ExportFormat::Jpeg => "jpg",
            ExportFormat::Webp => "webp",
            ExportFormat::Zip => "zip",
            ExportFormat::Psd => "psd",
            ExportFormat::Ora => "ora",
        }
    }
}

/// Encodes a stack as one file. PSD and OpenRaster keep each layer's opacity and
/// visibility (`props`, one per layer) as layer settings; ZIP and the flat formats fold them
/// into the pixels (a hidden layer is transparent), and the flat formats are the composite,
/// freshly encoded (so they carry no metadata at all).
pub fn encode(
    stack: &LayerStack,
    props: &[LayerProps],
    format: ExportFormat,
) -> Result<Vec<u8>, ExportError> {
    match format {
        ExportFormat::Psd => return Ok(super::psd::encode_psd(stack, props)?),
        ExportFormat::Ora => return Ok(super::ora::encode_ora(stack, props)?),
        _ => {}
    }
    let factor = |p: &LayerProps| if p.visible { p.opacity } else { 0.0 };
    let stack = if props.iter().all(|p| factor(p) >= 1.0) {
        std::borrow::Cow::Borrowed(stack)
    } else {
        let mut folded = stack.clone();
        for (layer, p) in folded.layers.iter_mut().zip(props) {
            let f = factor(p);
            if f < 1.0 {
                for px in layer.rgba.pixels_mut() {
                    px.0[3] = (px.0[3] as f32 * f).round() as u8;
                }
            }
        }
        std::borrow::Cow::Owned(folded)
    };
    let flat = match format {
        ExportFormat::Zip => return zip_bytes(&stack).map(|(bytes, _)| bytes),
        ExportFormat::Png => image::ImageFormat::Png,
        ExportFormat::Jpeg => image::ImageFormat::Jpeg,
        _ => image::ImageFormat::WebP,
    };
    let composite = image::DynamicImage::ImageRgb8(stack.composite());
    let img = if flat == image::ImageFormat::WebP {
        image::DynamicImage::ImageRgba8(composite.to_rgba8())
    } else {
        composite
    };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, flat)?;
    Ok(out.into_inner())
}

/// Writes `bytes` to a temp file next to `path`, fsyncs it and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(path)(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};
    use std::io::Read;

    fn stack3() -> LayerStack {
        let (w, h) = (9, 7);
        let bg = RgbaImage::from_pixel(w, h, Rgba([10, 20, 30, 255]));
        let mut obj = RgbaImage::new(w, h);
        for y in 2..5 {
            for x in 1..4 {
                obj.put_pixel(x, y, Rgba([200, 100, 0, 180]));
            }
        }
        let mut text = RgbaImage::new(w, h);
        text.put_pixel(8, 6, Rgba([255, 255, 255, 1]));
        text.put_pixel(5, 0, Rgba([0, 0, 0, 255]));
        let layer = |name: &str, kind, rgba, text: Option<&str>| Layer {
            name: name.into(),
            kind,
            origin: [0, 0],
            rgba,
            text: text.map(str::to_owned),
        };
        LayerStack {
            width: w,
            height: h,
            layers: vec![
                layer("Background", LayerKind::Background, bg, None),
                // held as their boxes, as documents and decompositions hold them
                layer("Object 1", LayerKind::Object, obj, None).cropped(),
                layer("Hi", LayerKind::Text, text, Some("Hi")).cropped(),
            ],
        }
    }

    fn check_manifest(m: &Manifest) {
        let files: Vec<_> = m.layers.iter().map(|l| l.file.as_str()).collect();
        assert_eq!(files, ["00_background.png", "01_object.png", "02_text.png"]);
        let ids: Vec<_> = m.layers.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["layer-00", "layer-01", "layer-02"]);
        assert_eq!(m.layers[0].bbox, [0, 0, 9, 7]);
        assert_eq!(m.layers[1].bbox, [1, 2, 3, 3]);
        assert_eq!(m.layers[2].bbox, [5, 0, 4, 7]);
        assert_eq!(m.layers.iter().map(|l| l.z).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!((m.width, m.height), (9, 7));
    }

    fn decode(bytes: &[u8]) -> RgbaImage {
        let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).unwrap();
        assert!(matches!(img, image::DynamicImage::ImageRgba8(_)));
        img.to_rgba8()
    }

    #[test]
    fn manifest_json_shape() {
        let v = serde_json::to_value(manifest(&stack3())).unwrap();
        assert_eq!(v["width"], 9);
        assert_eq!(v["layers"][1]["kind"], "object");
        assert_eq!(v["layers"][1]["name"], "Object 1");
        assert_eq!(v["layers"][1]["bbox"], serde_json::json!([1, 2, 3, 3]));
        assert!(v["layers"][1]["text"].is_null());
        assert_eq!(v["layers"][2]["text"], "Hi");
    }

    #[test]
    fn png_dir_round_trips() {
        let stack = stack3();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let m = write_png_dir(&stack, &dir).unwrap();
        check_manifest(&m);
        let on_disk: Manifest =
            serde_json::from_slice(&fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(on_disk, m);
        for (layer, entry) in stack.layers.iter().zip(&m.layers) {
            assert_eq!(
                decode(&fs::read(dir.join(&entry.file)).unwrap()),
                layer.to_canvas(9, 7)
            );
        }
        // Only the manifest and the layers: no temp files left behind.
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "00_background.png",
                "01_object.png",
                "02_text.png",
                "manifest.json"
            ]
        );
        // Rewriting replaces the files in place.
        write_png_dir(&stack, &dir).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);
    }

    #[test]
    fn zip_round_trips_manifest_first() {
        let stack = stack3();
        let (bytes, m) = zip_bytes(&stack).unwrap();
        check_manifest(&m);
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<_> = (0..zip.len())
            .map(|i| zip.by_index(i).unwrap().name().unwrap().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "manifest.json",
                "00_background.png",
                "01_object.png",
                "02_text.png"
            ]
        );
        let mut json = Vec::new();
        zip.by_index(0).unwrap().read_to_end(&mut json).unwrap();
        assert_eq!(serde_json::from_slice::<Manifest>(&json).unwrap(), m);
        for (i, layer) in stack.layers.iter().enumerate() {
            let mut png = Vec::new();
            zip.by_index(i + 1).unwrap().read_to_end(&mut png).unwrap();
            assert_eq!(decode(&png), layer.to_canvas(9, 7));
        }
    }

    #[test]
    fn a_box_is_stored_as_itself_and_written_as_the_canvas() {
        let stack = stack3();
        let obj = &stack.layers[1];
        assert_eq!((obj.origin, obj.rgba.dimensions()), ([1, 2], (3, 3)));
        assert_eq!(decode(&encode_layer_png(obj).unwrap()), obj.rgba);
        let canvas = decode(&encode_canvas_png(obj, 9, 7).unwrap());
        assert_eq!(canvas, obj.to_canvas(9, 7));
        let mut streamed = Vec::new();
        let mut reader = CanvasPngReader::new(obj.clone(), 9, 7).unwrap();
        std::io::Read::read_to_end(&mut reader, &mut streamed).unwrap();
        assert_eq!(
            decode(&streamed),
            canvas,
            "the streamed file holds the same pixels"
        );
        assert_eq!(canvas.get_pixel(1, 2).0, [200, 100, 0, 180]);
        assert_eq!(canvas.get_pixel(0, 2).0, [0; 4]);
        // a layer with nothing visible holds nothing and stores one transparent pixel
        let empty = Layer {
            rgba: RgbaImage::new(9, 7),
            ..obj.clone()
        }
        .cropped();
        assert_eq!(empty.rgba.dimensions(), (0, 0));
        assert_eq!(
            decode(&encode_layer_png(&empty).unwrap()),
            RgbaImage::new(1, 1)
        );
        assert_eq!(
            decode(&encode_canvas_png(&empty, 9, 7).unwrap()),
            RgbaImage::new(9, 7)
        );
        assert_eq!(
            encode_canvas_png(obj, 3, 3).unwrap_err().code(),
            "export_layer_size"
        );
    }

    #[test]
    fn zip_file_is_written_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.zip");
        write_zip_file(&stack3(), &path).unwrap();
        let zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(zip.len(), 4);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn wrong_layer_size_is_refused_before_writing() {
        let mut stack = stack3();
        stack.layers[2].origin = [7, 5];
        stack.layers[2].rgba = RgbaImage::new(3, 3);
        let tmp = tempfile::tempdir().unwrap();
        let err = write_png_dir(&stack, tmp.path()).unwrap_err();
        assert_eq!(err.code(), "export_layer_size");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert_eq!(zip_bytes(&stack).unwrap_err().code(), "export_layer_size");
    }

    #[test]
    fn long_stacks_keep_names_sorted() {
        assert_eq!(index_digits(0), 2);
        assert_eq!(index_digits(100), 2);
        assert_eq!(index_digits(101), 3);
        let mut stack = stack3();
        let extra = stack.layers[1].clone();
        stack.layers.resize(101, extra);
        let m = manifest(&stack);
        assert_eq!(m.layers[0].file, "000_background.png");
        assert_eq!(m.layers[100].file, "100_object.png");
        let files: Vec<_> = m.layers.iter().map(|l| l.file.clone()).collect();
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(files, sorted);
    }
}
