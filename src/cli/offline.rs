//! Commands on files, with no server and no store: `cutout` (background removal to an RGBA
//! PNG), `decompose` (layers as a PNG directory, ZIP, OpenRaster or PSD, with a progress bar
//! and per-stage timings), `inpaint` (fill a mask) and `eval` (decompose and score a
//! dataset). Every file is written
//! atomically (temp file, fsync, rename; the temp file is removed on failure).

use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};

use super::{
    CliError, CutoutArgs, DecomposeArgs, EvalArgs, InpaintArgs, InpaintMethod, LayerFormat,
};
use crate::config::Config;
use crate::documents::decompose::Decomposer;
use crate::engine::decompose::{DecomposeMode, LayerCount};
use crate::engine::export::{self, ExportFormat};
use crate::engine::{DecodeLimits, LayerProps};

/// `cutout IN -o OUT.png [--device D]`.
pub fn cutout(mut config: Config, args: CutoutArgs) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let img = read_image(&config, &args.input)?;
    if let Some(d) = args.device {
        config.inference.device = d;
    }
    let progress = crate::models::ConsoleProgress::new();
    let inference = crate::app::load_inference(&config, &progress)?;
    drop(progress);
    let loaded = started.elapsed();
    let (width, height) = img.dimensions();
    let img = DynamicImage::ImageRgb8(img);
    let one = || -> Result<Vec<u8>, CliError> {
        let rgba = crate::images::cutout::cutout(&inference, &img).map_err(CliError::runtime)?;
        crate::engine::encode_png(&DynamicImage::ImageRgba8(rgba)).map_err(CliError::runtime)
    };
    let warm = std::time::Instant::now();
    let png = one()?;
    let warmup = warm.elapsed();
    export::write_atomic(&args.output, &png).map_err(CliError::runtime)?;
    if let Some(n) = args.repeat {
        let timing = repeat_timing(&inference, &img.to_rgb8(), n.max(1), &one)?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let report = serde_json::json!({
            "provider": inference.provider(),
            "width": width,
            "height": height,
            "load_ms": ms(loaded),
            "warmup_ms": ms(warmup),
            "runs": n.max(1),
            "session_run_ms": timing.0,
            "cutout_ms": timing.1,
        });
        println!("{report}");
        return Ok(());
    }
    println!(
        "wrote {} ({}×{} RGBA, {} bytes) in {} ms on {}",
        args.output.display(),
        width,
        height,
        png.len(),
        started.elapsed().as_millis(),
        inference.provider()
    );
    Ok(())
}

/// Medians over `n` runs of the raw ISNet session on this image's prepared input, and of
/// the whole cutout (`one`: matte, alpha, PNG encoding), in milliseconds.
fn repeat_timing(
    inference: &crate::inference::Inference,
    img: &RgbImage,
    n: usize,
    one: &dyn Fn() -> Result<Vec<u8>, CliError>,
) -> Result<(f64, f64), CliError> {
    let segmenter = inference.segmenter().map_err(CliError::runtime)?;
    let size = crate::inference::ISNET_SIZE;
    let input =
        ndarray::Array4::from_shape_vec((1, 3, size, size), crate::inference::isnet_input(img))
            .map_err(CliError::runtime)?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut raw, mut whole) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = std::time::Instant::now();
        segmenter.run_raw(&input).map_err(CliError::runtime)?;
        raw.push(t.elapsed().as_secs_f64() * 1e3);
        let t = std::time::Instant::now();
        one()?;
        whole.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(raw), median(whole)))
}

/// The decomposer for a mode: peel needs the models, palette does not.
fn decomposer(
    config: &Config,
    mode: DecomposeMode,
    layers: LayerCount,
) -> Result<Decomposer, CliError> {
    Ok(match mode {
        DecomposeMode::Peel => {
            let progress = crate::models::ConsoleProgress::new();
            let inference = crate::app::load_inference(config, &progress)?;
            Decomposer::Peel { inference, layers }
        }
        DecomposeMode::Palette => Decomposer::Palette { layers },
    })
}

/// `inpaint IN --mask M -o OUT.png [--method patchmatch|diffusion]`: no models, no store.
pub fn inpaint(config: Config, args: InpaintArgs) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let input = decode_file(&config, &args.input)?;
    let layer = input.color().has_alpha().then(|| input.to_rgba8());
    let img = input.to_rgb8();
    drop(input);
    let mask_img = decode_file(&config, &args.mask)?;
    let (w, h) = img.dimensions();
    let mask = crate::engine::edit::mask_from_image(&mask_img, w, h);
    let holes = mask.pixels().filter(|p| p.0[0] > 0).count();
    if holes == 0 {
        return Err(CliError::usage(format!(
            "{}: the mask marks no pixel to fill (white = fill, on black)",
            args.mask.display()
        )));
    }
    let fill = |img: &RgbImage, mask: &image::GrayImage| match args.method {
        InpaintMethod::Patchmatch => {
            crate::engine::inpaint::patchmatch_inpaint(img, mask, &Default::default())
        }
        InpaintMethod::Diffusion => crate::engine::inpaint::diffusion_fill(img, mask),
    };
    let filled = match layer {
        Some(rgba) => DynamicImage::ImageRgba8(
            crate::engine::edit::inpaint_layer(&rgba, &mask, &fill).map_err(CliError::runtime)?,
        ),
        None => DynamicImage::ImageRgb8(fill(&img, &mask)),
    };
    let png = crate::engine::encode_png(&filled).map_err(CliError::runtime)?;
    export::write_atomic(&args.output, &png).map_err(CliError::runtime)?;
    println!(
        "filled {holes} pixels ({:.1}% of {w}×{h}) and wrote {} in {} ms",
        100.0 * holes as f64 / (f64::from(w) * f64::from(h)),
        args.output.display(),
        started.elapsed().as_millis()
    );
    Ok(())
}

fn read_image(config: &Config, input: &Path) -> Result<RgbImage, CliError> {
    Ok(decode_file(config, input)?.to_rgb8())
}

/// Any accepted image file, decoded under the upload limits.
fn decode_file(config: &Config, input: &Path) -> Result<DynamicImage, CliError> {
    let bytes = std::fs::read(input)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", input.display())))?;
    let limits = DecodeLimits {
        max_pixels: config.uploads.max_pixels,
        max_side: config.uploads.max_side,
        ..Default::default()
    };
    let decoded = crate::engine::decode(&bytes, &limits)
        .map_err(|e| CliError::usage(format!("{}: {e}", input.display())))?;
    Ok(decoded.image)
}

/// `decompose IN -o OUTDIR [--layers] [--mode] [--format] [--device] [--verbose]`.
pub fn decompose(mut config: Config, args: DecomposeArgs) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let img = read_image(&config, &args.input)?;
    if let Some(d) = args.device {
        config.inference.device = d;
    }
    let decomposer = decomposer(&config, args.mode, args.layers)?;
    let bar = indicatif::ProgressBar::new(100);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos:>3}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (stack, timings) = decomposer
        .run(&img, &mut |f, stage| {
            bar.set_position((f * 100.0) as u64);
            bar.set_message(stage.to_string());
        })
        .map_err(|e| CliError::runtime(e.to_string()))?;
    bar.finish_and_clear();
    let output = &args.output;
    let manifest = match args.format {
        LayerFormat::Png => export::write_png_dir(&stack, output).map_err(CliError::runtime)?,
        layered => {
            let format = match layered {
                LayerFormat::Zip => ExportFormat::Zip,
                LayerFormat::Ora => ExportFormat::Ora,
                _ => ExportFormat::Psd,
            };
            let props = vec![LayerProps::default(); stack.layers.len()];
            let bytes = export::encode(&stack, &props, format).map_err(CliError::runtime)?;
            export::write_atomic(&layered_file(output, format.extension())?, &bytes)
                .map_err(CliError::runtime)?;
            export::manifest(&stack)
        }
    };
    for l in &manifest.layers {
        println!(
            "{:>2}  {:<10} {:<40} {}",
            l.z,
            l.kind.as_str(),
            l.name,
            l.file
        );
    }
    println!(
        "{} layers, {}×{}, written to {} in {:.1} s (recomposition {:.1} dB)",
        manifest.layers.len(),
        stack.width,
        stack.height,
        output.display(),
        started.elapsed().as_secs_f64(),
        stack.recon_psnr(&img)
    );
    if args.verbose {
        for (stage, secs) in &timings {
            println!("  {stage:<12} {:>8.3} s", secs);
        }
    }
    Ok(())
}

/// A layered file goes to `output` when it has that extension, else into the `output`
/// directory as `layers.<ext>`.
fn layered_file(output: &Path, ext: &str) -> Result<PathBuf, CliError> {
    if output.extension().is_some_and(|e| e == ext) {
        Ok(output.to_path_buf())
    } else {
        std::fs::create_dir_all(output).map_err(CliError::runtime)?;
        Ok(output.join(format!("layers.{ext}")))
    }
}

/// `eval --dataset D [--out P] [--json]`.
pub fn eval(mut config: Config, args: EvalArgs) -> Result<(), CliError> {
    if let Some(d) = args.device {
        config.inference.device = d;
    }
    let decomposer = decomposer(&config, args.mode, args.layers)?;
    let mut json = serde_json::Map::new();
    if let Some(dataset) = &args.dataset {
        let (rows, summary) = crate::eval::run(
            dataset,
            args.out.as_deref(),
            |img| {
                decomposer
                    .run(img, &mut |_, _| {})
                    .map_err(|e| e.to_string())
            },
            |i, n, id| eprintln!("[{}/{}] {id}", i + 1, n),
        )
        .map_err(|e| CliError::usage(e.to_string()))?;
        if args.json {
            json = match crate::eval::to_json(&rows, &summary) {
                serde_json::Value::Object(m) => m,
                other => serde_json::Map::from_iter([("designs".to_string(), other)]),
            };
        } else {
            print!("{}", crate::eval::render_table(&rows, &summary));
        }
    }
    if let Some(dir) = &args.photos {
        let crate::documents::decompose::Decomposer::Peel { inference, .. } = &decomposer else {
            return Err(CliError::usage(
                "--photos needs --mode peel (it compares with the cutout matte)",
            ));
        };
        let segmenter = inference.segmenter().map_err(CliError::runtime)?;
        let rows = crate::eval::photos::run_photos(
            dir,
            |img| {
                decomposer
                    .run(img, &mut |_, _| {})
                    .map(|(stack, _)| stack)
                    .map_err(|e| e.to_string())
            },
            |img| {
                segmenter
                    .matte_f32(img)
                    .map(|(m, _, _)| m)
                    .map_err(|e| e.to_string())
            },
            |i, n, id| eprintln!("[{}/{}] {id}", i + 1, n),
        )
        .map_err(|e| CliError::usage(format!("{}: {e}", dir.display())))?;
        if args.json {
            json.insert("photos".into(), crate::eval::photos::photos_json(&rows));
        } else {
            print!("{}", crate::eval::photos::render_photos(&rows));
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(CliError::runtime)?
        );
    }
    Ok(())
}
