//! EXIF metadata of an upload: the handful of fields we keep with the image (camera, lens,
//! exposure, capture time, GPS) and the orientation that makes the pixels upright.
//!
//! Invariants: reading EXIF never fails an upload — missing, malformed or partly malformed
//! EXIF gives `None` or only the fields that parsed. Text fields are cleaned of control
//! characters and capped in length; GPS is kept only when it is a valid position. Whether GPS
//! leaves the service (exports) is decided elsewhere.

use std::io::Cursor;

// `::exif` is the kamadak-exif crate, not this module.
use ::exif::{DateTime, Exif, In, Reader, Tag, Value};
use image::metadata::Orientation;
use image::DynamicImage;
use serde::{Deserialize, Serialize};

/// Longest text field kept, in characters.
const MAX_TEXT_CHARS: usize = 128;

/// The EXIF fields we keep. Absent fields are left out of the JSON.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct ExifInfo {
    /// EXIF orientation, 1–8 (1 = upright as stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// Capture time as `YYYY-MM-DDTHH:MM:SS`, with the `±HH:MM` offset when the file has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datetime_original: Option<String>,
    /// Exposure time in seconds, as photographers write it: `1/250`, `2`, `1.5`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure_time: Option<String>,
    /// Aperture as an f-number, e.g. `2.8`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f_number: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<u32>,
    /// Focal length in millimetres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focal_length: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gps: Option<Gps>,
    /// Pixel width recorded in the EXIF (may disagree with the real image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Pixel height recorded in the EXIF.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// A capture position in signed decimal degrees (south and west negative), metres above sea.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Gps {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude: Option<f64>,
}

impl ExifInfo {
    /// True when no field was found.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Reads the EXIF of a JPEG (APP1), PNG (eXIf) or WebP (EXIF chunk) held in memory.
///
/// `None` when there is no EXIF, it cannot be parsed, or it holds none of our fields.
pub fn read_exif(bytes: &[u8]) -> Option<ExifInfo> {
    let exif = Reader::new()
        .continue_on_error(true)
        .read_from_container(&mut Cursor::new(bytes))
        .or_else(|e| e.distill_partial_result(|_ignored| {}))
        .ok()?;
    let info = ExifInfo {
        orientation: uint(&exif, Tag::Orientation)
            .filter(|o| (1..=8).contains(o))
            .and_then(|o| u16::try_from(o).ok()),
        make: text(&exif, Tag::Make),
        model: text(&exif, Tag::Model),
        lens: text(&exif, Tag::LensModel),
        software: text(&exif, Tag::Software),
        datetime_original: datetime(&exif),
        exposure_time: exposure(&exif),
        f_number: rational(&exif, Tag::FNumber, 0).map(round2),
        iso: uint(&exif, Tag::PhotographicSensitivity).filter(|&iso| iso > 0),
        focal_length: rational(&exif, Tag::FocalLength, 0).map(round2),
        gps: gps(&exif),
        width: uint(&exif, Tag::PixelXDimension).or_else(|| uint(&exif, Tag::ImageWidth)),
        height: uint(&exif, Tag::PixelYDimension).or_else(|| uint(&exif, Tag::ImageLength)),
    };
    (!info.is_empty()).then_some(info)
}

/// Rotates/flips `img` so that an image stored with EXIF `orientation` is upright.
///
/// 1 (or any value outside 1–8) leaves it as is; 5–8 swap width and height.
pub fn apply_orientation(mut img: DynamicImage, orientation: u16) -> DynamicImage {
    if let Some(o) = u8::try_from(orientation)
        .ok()
        .and_then(Orientation::from_exif)
    {
        img.apply_orientation(o);
    }
    img
}

fn field(exif: &Exif, tag: Tag) -> Option<&Value> {
    exif.get_field(tag, In::PRIMARY).map(|f| &f.value)
}

fn uint(exif: &Exif, tag: Tag) -> Option<u32> {
    field(exif, tag)?.get_uint(0)
}

fn text(exif: &Exif, tag: Tag) -> Option<String> {
    match field(exif, tag)? {
        Value::Ascii(parts) => clean_text(parts.first()?),
        Value::Byte(raw) | Value::Undefined(raw, _) => clean_text(raw),
        _ => None,
    }
}

fn clean_text(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let text: String = text
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The `index`-th rational of a field as a finite number (a zero denominator gives `None`).
fn rational(exif: &Exif, tag: Tag, index: usize) -> Option<f64> {
    let value = match field(exif, tag)? {
        Value::Rational(v) => {
            let r = v.get(index)?;
            (r.denom != 0).then(|| f64::from(r.num) / f64::from(r.denom))?
        }
        Value::SRational(v) => {
            let r = v.get(index)?;
            (r.denom != 0).then(|| f64::from(r.num) / f64::from(r.denom))?
        }
        _ => return None,
    };
    value.is_finite().then_some(value)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn datetime(exif: &Exif) -> Option<String> {
    let Value::Ascii(parts) = field(exif, Tag::DateTimeOriginal)? else {
        return None;
    };
    let raw = parts.first()?;
    let Ok(dt) = DateTime::from_ascii(raw) else {
        return clean_text(raw);
    };
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
    );
    if let Some(offset) = text(exif, Tag::OffsetTimeOriginal).filter(|o| is_utc_offset(o)) {
        out.push_str(&offset);
    }
    Some(out)
}

/// `+09:00`, `-05:30`.
fn is_utc_offset(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..6].iter().all(u8::is_ascii_digit)
}

fn exposure(exif: &Exif) -> Option<String> {
    let seconds = rational(exif, Tag::ExposureTime, 0).filter(|&s| s > 0.0)?;
    Some(if seconds >= 1.0 {
        format!("{}", (seconds * 10.0).round() / 10.0)
    } else {
        format!("1/{}", (1.0 / seconds).round())
    })
}

fn gps(exif: &Exif) -> Option<Gps> {
    let latitude = degrees(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S', 90.0)?;
    let longitude = degrees(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W', 180.0)?;
    let altitude = rational(exif, Tag::GPSAltitude, 0).map(|metres| {
        let below_sea = uint(exif, Tag::GPSAltitudeRef) == Some(1);
        round2(if below_sea { -metres } else { metres })
    });
    Some(Gps {
        latitude,
        longitude,
        altitude,
    })
}

/// Degrees/minutes/seconds rationals and an N/S or E/W reference → signed decimal degrees.
fn degrees(exif: &Exif, tag: Tag, ref_tag: Tag, negative_ref: u8, max: f64) -> Option<f64> {
    let d = rational(exif, tag, 0)?;
    let m = rational(exif, tag, 1).unwrap_or(0.0);
    let s = rational(exif, tag, 2).unwrap_or(0.0);
    let magnitude = d + m / 60.0 + s / 3600.0;
    let negative = text(exif, ref_tag)
        .and_then(|r| r.bytes().next())
        .is_some_and(|c| c.eq_ignore_ascii_case(&negative_ref));
    let signed = if negative { -magnitude } else { magnitude };
    (signed.is_finite() && signed.abs() <= max).then_some(signed)
}

#[cfg(test)]
mod tests {
    use super::super::decode::{decode, DecodeLimits};
    use super::*;
    use image::{ImageFormat, Rgb, RgbImage};

    /// One IFD entry: tag, TIFF type, count, value bytes (little-endian).
    type Entry = (u16, u16, u32, Vec<u8>);

    const ASCII: u16 = 2;
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const RATIONAL: u16 = 5;
    const BYTE: u16 = 1;

    fn ascii(tag: u16, s: &str) -> Entry {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        (tag, ASCII, v.len() as u32, v)
    }

    fn rationals(tag: u16, values: &[(u32, u32)]) -> Entry {
        let bytes = values
            .iter()
            .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
            .collect();
        (tag, RATIONAL, values.len() as u32, bytes)
    }

    fn ifd_len(entries: &[Entry]) -> u32 {
        let data: usize = entries
            .iter()
            .filter(|e| e.3.len() > 4)
            .map(|e| e.3.len())
            .sum();
        (2 + entries.len() * 12 + 4 + data) as u32
    }

    /// An IFD placed at TIFF offset `at`, its out-of-line values right after it.
    fn ifd(at: u32, entries: &[Entry]) -> Vec<u8> {
        let mut head = (entries.len() as u16).to_le_bytes().to_vec();
        let mut data: Vec<u8> = Vec::new();
        let data_start = at + 2 + entries.len() as u32 * 12 + 4;
        for (tag, ty, count, value) in entries {
            head.extend(tag.to_le_bytes());
            head.extend(ty.to_le_bytes());
            head.extend(count.to_le_bytes());
            if value.len() <= 4 {
                let mut inline = value.clone();
                inline.resize(4, 0);
                head.extend(inline);
            } else {
                head.extend((data_start + data.len() as u32).to_le_bytes());
                data.extend(value);
            }
        }
        head.extend(0u32.to_le_bytes());
        head.extend(data);
        head
    }

    /// A little-endian TIFF: IFD0 with orientation 6, Make, Model and a GPS IFD at
    /// 35°30'36" S, 149°7'12" W, 12.5 m.
    fn sample_tiff(orientation: u16) -> Vec<u8> {
        let gps = vec![
            ascii(0x0001, "S"),
            rationals(0x0002, &[(35, 1), (30, 1), (3600, 100)]),
            ascii(0x0003, "W"),
            rationals(0x0004, &[(149, 1), (7, 1), (12, 1)]),
            (0x0005, BYTE, 1, vec![0]),
            rationals(0x0006, &[(25, 2)]),
        ];
        let mut ifd0 = vec![
            ascii(0x010F, "Acme"),
            ascii(0x0110, "Snapper 3000\u{7}"),
            (0x0112, SHORT, 1, orientation.to_le_bytes().to_vec()),
            (0x8825, LONG, 1, vec![0; 4]),
        ];
        let gps_at = 8 + ifd_len(&ifd0);
        ifd0[3].3 = gps_at.to_le_bytes().to_vec();
        let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        tiff.extend(ifd(8, &ifd0));
        assert_eq!(tiff.len() as u32, gps_at);
        tiff.extend(ifd(gps_at, &gps));
        tiff
    }

    /// A JPEG of `w`×`h` (left half red, right half blue) with an EXIF APP1 after SOI.
    fn jpeg_with_exif(w: u32, h: u32, tiff: &[u8]) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let mut jpeg = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut jpeg, ImageFormat::Jpeg)
            .unwrap();
        let jpeg = jpeg.into_inner();
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend(((2 + 6 + tiff.len()) as u16).to_be_bytes());
        app1.extend(b"Exif\0\0");
        app1.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    #[test]
    fn reads_fields_and_signed_gps_from_jpeg() {
        let jpeg = jpeg_with_exif(40, 20, &sample_tiff(6));
        let info = read_exif(&jpeg).expect("exif");
        assert_eq!(info.orientation, Some(6));
        assert_eq!(info.make.as_deref(), Some("Acme"));
        assert_eq!(
            info.model.as_deref(),
            Some("Snapper 3000"),
            "control chars dropped"
        );
        let gps = info.gps.expect("gps");
        assert!((gps.latitude - -35.51).abs() < 1e-9, "{gps:?}");
        assert!((gps.longitude - -149.12).abs() < 1e-9, "{gps:?}");
        assert_eq!(gps.altitude, Some(12.5));
        assert_eq!(info.lens, None);

        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["make"], "Acme");
        assert!(
            json.get("lens").is_none(),
            "empty fields are skipped: {json}"
        );
        let back: ExifInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn decode_applies_orientation() {
        let jpeg = jpeg_with_exif(40, 20, &sample_tiff(6));
        let decoded = decode(&jpeg, &DecodeLimits::default()).unwrap();
        assert_eq!((decoded.source_width, decoded.source_height), (40, 20));
        assert_eq!((decoded.width, decoded.height), (20, 40));
        assert_eq!(decoded.image.width(), 20);
        // Rotated 90° clockwise: the stored left (red) half is now on top.
        let rgb = decoded.image.to_rgb8();
        let top = rgb.get_pixel(10, 5).0;
        let bottom = rgb.get_pixel(10, 34).0;
        assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
        assert_eq!(decoded.exif.and_then(|e| e.orientation), Some(6));
    }

    #[test]
    fn reads_png_exif_chunk() {
        let mut png = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(RgbImage::new(40, 20))
            .write_to(&mut png, ImageFormat::Png)
            .unwrap();
        let png = png.into_inner();
        let tiff = sample_tiff(8);
        let mut chunk = (tiff.len() as u32).to_be_bytes().to_vec();
        chunk.extend(b"eXIf");
        chunk.extend(&tiff);
        let crc = crc32fast::hash(&chunk[4..]);
        chunk.extend(crc.to_be_bytes());
        // After the signature (8) and IHDR (25).
        let mut out = png[..33].to_vec();
        out.extend(chunk);
        out.extend(&png[33..]);
        assert_eq!(read_exif(&out).and_then(|e| e.orientation), Some(8));
        let decoded = decode(&out, &DecodeLimits::default()).unwrap();
        assert_eq!((decoded.width, decoded.height), (20, 40));
    }

    #[test]
    fn malformed_or_missing_exif_is_none() {
        assert_eq!(read_exif(b""), None);
        assert_eq!(read_exif(b"not an image at all"), None);
        let mut tiff = sample_tiff(6);
        tiff.truncate(12); // IFD count claims 4 entries that are not there
        assert_eq!(read_exif(&jpeg_with_exif(8, 8, &tiff)), None);
        // Garbage in place of the TIFF header.
        assert_eq!(read_exif(&jpeg_with_exif(8, 8, b"garbage garbage")), None);
        // A decode still succeeds without it.
        let decoded = decode(&jpeg_with_exif(8, 6, b"garbage"), &DecodeLimits::default()).unwrap();
        assert_eq!((decoded.width, decoded.height, decoded.exif), (8, 6, None));
    }

    #[test]
    fn invalid_orientation_is_ignored() {
        let info = read_exif(&jpeg_with_exif(8, 8, &sample_tiff(9))).unwrap();
        assert_eq!(info.orientation, None);
        assert!(info.make.is_some());
    }

    #[test]
    fn all_eight_orientations() {
        let (w, h) = (3u32, 2u32);
        let src = RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 0]));
        // Displayed pixel (x, y) of a stored w×h image comes from stored pixel f(x, y, w, h).
        type SourceOf = fn(u32, u32, u32, u32) -> (u32, u32);
        let cases: [(u16, SourceOf); 8] = [
            (1, |x, y, _, _| (x, y)),
            (2, |x, y, w, _| (w - 1 - x, y)),
            (3, |x, y, w, h| (w - 1 - x, h - 1 - y)),
            (4, |x, y, _, h| (x, h - 1 - y)),
            (5, |x, y, _, _| (y, x)),
            (6, |x, y, _, h| (y, h - 1 - x)),
            (7, |x, y, w, h| (w - 1 - y, h - 1 - x)),
            (8, |x, y, w, _| (w - 1 - y, x)),
        ];
        for (orientation, from) in cases {
            let out =
                apply_orientation(DynamicImage::ImageRgb8(src.clone()), orientation).to_rgb8();
            let swapped = orientation >= 5;
            assert_eq!(
                out.dimensions(),
                if swapped { (h, w) } else { (w, h) },
                "o={orientation}"
            );
            for (x, y, px) in out.enumerate_pixels() {
                let (sx, sy) = from(x, y, w, h);
                assert_eq!(px, src.get_pixel(sx, sy), "o={orientation} at ({x},{y})");
            }
        }
        let same = apply_orientation(DynamicImage::ImageRgb8(src.clone()), 0);
        assert_eq!(same, DynamicImage::ImageRgb8(src));
    }

    #[test]
    fn exposure_and_datetime_formatting() {
        let mut ifd0 = vec![(0x8769, LONG, 1, vec![0; 4])];
        let exif_at = 8 + ifd_len(&ifd0);
        ifd0[0].3 = exif_at.to_le_bytes().to_vec();
        let exif_ifd = vec![
            rationals(0x829A, &[(10, 2500)]),
            rationals(0x829D, &[(28, 10)]),
            (0x8827, SHORT, 1, 400u16.to_le_bytes().to_vec()),
            ascii(0x9003, "2024:02:29 13:14:15"),
            ascii(0x9011, "+09:00"),
            rationals(0x920A, &[(0, 0)]),
        ];
        let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        tiff.extend(ifd(8, &ifd0));
        tiff.extend(ifd(exif_at, &exif_ifd));
        let info = read_exif(&jpeg_with_exif(8, 8, &tiff)).unwrap();
        assert_eq!(info.exposure_time.as_deref(), Some("1/250"));
        assert_eq!(info.f_number, Some(2.8));
        assert_eq!(info.iso, Some(400));
        assert_eq!(
            info.datetime_original.as_deref(),
            Some("2024-02-29T13:14:15+09:00")
        );
        assert_eq!(info.focal_length, None, "zero denominator is dropped");
        assert_eq!(info.gps, None);
    }
}
