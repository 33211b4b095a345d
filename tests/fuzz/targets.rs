//! The pure fuzz targets and their properties: image decoding (`sniff`, `probe`, `decode`),
//! the PSD and ORA readers, the blob decryptor, sealed fields and API-key parsing. Each check
//! takes arbitrary bytes and returns `Err` only when a property is broken; a decoder refusing
//! the bytes with its typed error is the expected outcome, a panic is a failure.
//!
//! Limits here are small (1 MP, 32 MiB of layers) so that a case whose header is mutated to a
//! large-but-allowed size stays cheap; the bomb corpus checks the production limits.

use std::io::Read;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use image_layered::auth::tokens::{new_api_key, parse_api_key, secret_matches};
use image_layered::blobs::{DataKey, DecryptReader, EncryptWriter, FieldKey};
use image_layered::engine::ora::{decode_ora_within, OraLimits};
use image_layered::engine::psd_read::{decode_psd, PsdLimits};
use image_layered::engine::{decode, probe, sniff, DecodeLimits};
use image_layered::ids::{ApiKeyId, BlobId, UserId};

use crate::harness::Target;
use crate::seeds;

const MIB: usize = 1 << 20;

pub const DECODE_LIMITS: DecodeLimits = DecodeLimits {
    max_pixels: 1_000_000,
    max_side: 4096,
    max_alloc: 32 << 20,
};

pub const PSD_LIMITS: PsdLimits = PsdLimits {
    max_pixels: 1_000_000,
    max_layers: 64,
    max_stack_bytes: 32 << 20,
};

pub const ORA_LIMITS: OraLimits = OraLimits {
    max_pixels: 1_000_000,
    max_side: 4096,
    max_stack_bytes: 32 << 20,
};

pub fn decode_target() -> Target {
    Target {
        name: "decode",
        seeds: || {
            let mut s = seeds::real_images();
            s.extend(seeds::generated_images());
            s
        },
        check: check_decode,
        cases: 100_000,
        // 1 MP decoded as RGBA16 is 8 MiB; the decoder may hold it twice (orientation).
        max_peak: 96 * MIB,
    }
}

/// `sniff`, `probe` and `decode` agree, never panic, and what decodes is within the limits.
pub fn check_decode(bytes: &[u8]) -> Result<String, String> {
    let sniffed = sniff(bytes);
    let probed = probe(bytes, &DECODE_LIMITS);
    if let (Ok(p), Err(e)) = (&probed, &sniffed) {
        return Err(format!("probe says {p:?} but sniff refuses: {e}"));
    }
    match decode(bytes, &DECODE_LIMITS) {
        Ok(d) => {
            let p = probed.map_err(|e| format!("decode succeeded but probe refused: {e}"))?;
            if (p.format, p.width, p.height) != (d.format, d.source_width, d.source_height) {
                return Err(format!("probe {p:?} disagrees with decode {d:?}"));
            }
            if u64::from(d.width) * u64::from(d.height) > DECODE_LIMITS.max_pixels {
                return Err(format!("decoded {d:?} is over the pixel limit"));
            }
            Ok("ok".into())
        }
        // A decoder panic caught by `decode` is a typed refusal, but a bug upstream: counted
        // apart in the summary.
        Err(e)
            if e.to_string()
                .contains("the decoder failed on malformed data") =>
        {
            Ok("undecodable_image (a caught decoder panic)".into())
        }
        // Every error is typed and has a code and a message.
        Err(e) => nonempty(e.code(), &e.to_string()),
    }
}

pub fn psd_target() -> Target {
    Target {
        name: "psd",
        seeds: seeds::psds,
        check: check_psd,
        cases: 300_000,
        // The layer budget plus one canvas of working rows and the records.
        max_peak: 64 * MIB,
    }
}

/// The PSD reader never panics and what it returns respects its limits.
pub fn check_psd(bytes: &[u8]) -> Result<String, String> {
    match decode_psd(bytes, &PSD_LIMITS) {
        Ok((stack, props)) => check_stack(
            &stack,
            props.len(),
            PSD_LIMITS.max_layers,
            PSD_LIMITS.max_stack_bytes,
        )
        .map(|()| "ok".into()),
        Err(e) => nonempty(e.code(), &e.to_string()),
    }
}

pub fn ora_target() -> Target {
    Target {
        name: "ora",
        seeds: seeds::oras,
        check: check_ora,
        cases: 200_000,
        max_peak: 64 * MIB,
    }
}

/// The ORA reader never panics and what it returns respects its limits.
pub fn check_ora(bytes: &[u8]) -> Result<String, String> {
    match decode_ora_within(bytes, &ORA_LIMITS) {
        Ok((stack, props)) => {
            check_stack(&stack, props.len(), usize::MAX, ORA_LIMITS.max_stack_bytes)
                .map(|()| "ok".into())
        }
        Err(e) => nonempty(e.code(), &e.to_string()),
    }
}

fn check_stack(
    stack: &image_layered::engine::LayerStack,
    props: usize,
    max_layers: usize,
    max_bytes: u64,
) -> Result<(), String> {
    let (w, h) = (stack.width, stack.height);
    if props != stack.layers.len() || stack.layers.len() > max_layers {
        return Err(format!("{} layers, {props} props", stack.layers.len()));
    }
    if stack.layers.len() as u64 * u64::from(w) * u64::from(h) * 4 > max_bytes {
        return Err(format!(
            "{} layers of {w}x{h} exceed the budget",
            stack.layers.len()
        ));
    }
    // a layer may hold only its box, but that box lies on the canvas
    match stack.layers.iter().find(|l| !l.fits(w, h)) {
        Some(l) => Err(format!("a layer at {:?} is off a {w}x{h} canvas", l.rect())),
        None => Ok(()),
    }
}

/// The outcome of a refusal: its code, once checked that it has a code and a message.
pub fn nonempty(code: &str, message: &str) -> Result<String, String> {
    if code.is_empty() || message.is_empty() {
        return Err(format!(
            "an error without code or message: {code:?} {message:?}"
        ));
    }
    Ok(code.to_string())
}

/// The key, owner and object every generated blob is sealed for, and the plaintexts.
struct BlobWorld {
    key: DataKey,
    owner: UserId,
    object: BlobId,
    /// (sealed file, plaintext)
    blobs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn blob_world() -> &'static BlobWorld {
    static W: OnceLock<BlobWorld> = OnceLock::new();
    W.get_or_init(|| {
        let (key, owner, object) = (DataKey::generate(), UserId::new(), BlobId::new());
        let blobs = [0usize, 1, 100, 65_536, 65_537, 140_000]
            .into_iter()
            .map(|n| {
                let plain: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
                let mut w = EncryptWriter::new(Vec::new(), &key, 1, owner, object).unwrap();
                std::io::Write::write_all(&mut w, &plain).unwrap();
                (w.finish().unwrap(), plain)
            })
            .collect();
        BlobWorld {
            key,
            owner,
            object,
            blobs,
        }
    })
}

pub fn blob_target() -> Target {
    Target {
        name: "blob",
        seeds: || {
            let mut s: Vec<Vec<u8>> = blob_world().blobs.iter().map(|b| b.0.clone()).collect();
            // Real blobs of the upgrade fixture, under a key they were not sealed with.
            for p in seeds::files_with(&seeds::fixture("upgrade"), &[".blob"]) {
                s.push(std::fs::read(p).expect("read an upgrade blob"));
            }
            s
        },
        check: check_blob,
        cases: 100_000,
        max_peak: 4 * MIB,
    }
}

/// A blob decrypts only when it is byte for byte one we sealed, and then to its plaintext;
/// before an integrity error only an authenticated prefix of a real plaintext comes out.
pub fn check_blob(bytes: &[u8]) -> Result<String, String> {
    let w = blob_world();
    let genuine = w.blobs.iter().find(|b| b.0 == bytes);
    let mut reader = match DecryptReader::new(bytes, &w.key, w.owner, w.object) {
        Ok(r) => r,
        Err(e) if genuine.is_none() => return nonempty(e.code(), &e.to_string()),
        Err(e) => return Err(format!("a genuine blob was refused: {e}")),
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let verdict = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    match (verdict, genuine) {
        (Ok(()), Some(g)) if out == g.1 => Ok("ok".into()),
        (Ok(()), Some(_)) => Err("a genuine blob decrypted to the wrong plaintext".into()),
        (Ok(()), None) => Err(format!(
            "tampered data decrypted without error ({} bytes out)",
            out.len()
        )),
        (Err(e), Some(_)) => Err(format!("a genuine blob failed: {e}")),
        (Err(e), None) => {
            let blob_err = image_layered::blobs::BlobError::from_io(e);
            if blob_err.code() != "blob_integrity" {
                return Err(format!(
                    "tampering gave {blob_err:?}, not an integrity error"
                ));
            }
            if !w.blobs.iter().any(|b| b.1.starts_with(&out)) {
                return Err("unauthenticated bytes came out before the error".into());
            }
            Ok(format!("{} after a prefix", blob_err.code()))
        }
    }
}

const SEAL_AAD: &[u8] = b"owner|doc|layer";

struct SealWorld {
    key: FieldKey,
    /// (sealed text, plaintext)
    sealed: Vec<(String, Vec<u8>)>,
}

fn seal_world() -> &'static SealWorld {
    static W: OnceLock<SealWorld> = OnceLock::new();
    W.get_or_init(|| {
        let key = FieldKey::new(&DataKey::generate());
        let sealed = [&b""[..], b"Logo text", &[0u8; 300], "«ünïcode»".as_bytes()]
            .into_iter()
            .map(|p| (key.seal(SEAL_AAD, p), p.to_vec()))
            .collect();
        SealWorld { key, sealed }
    })
}

pub fn seal_target() -> Target {
    Target {
        name: "seal",
        seeds: || {
            seal_world()
                .sealed
                .iter()
                .map(|s| s.0.as_bytes().to_vec())
                .collect()
        },
        check: check_seal,
        cases: 150_000,
        max_peak: MIB,
    }
}

/// A sealed field opens only when its bytes are those we sealed (any other AAD: never).
pub fn check_seal(bytes: &[u8]) -> Result<String, String> {
    let w = seal_world();
    let text = String::from_utf8_lossy(bytes);
    if w.key.open(b"owner|doc|other", &text).is_some() {
        return Err("opened under another AAD".into());
    }
    let Some(plain) = w.key.open(SEAL_AAD, &text) else {
        return Ok("refused".into());
    };
    let raw = STANDARD
        .decode(text.as_bytes())
        .map_err(|e| e.to_string())?;
    match w
        .sealed
        .iter()
        .find(|s| STANDARD.decode(&s.0).ok() == Some(raw.clone()))
    {
        Some(s) if s.1 == plain.as_slice() => Ok("ok".into()),
        Some(_) => Err("opened to the wrong plaintext".into()),
        None => Err(format!("tampered sealed value {text:?} opened")),
    }
}

/// A real key and its stored hash.
fn api_key() -> &'static (String, String) {
    static K: OnceLock<(String, String)> = OnceLock::new();
    K.get_or_init(|| new_api_key(ApiKeyId::new()))
}

pub fn api_key_target() -> Target {
    Target {
        name: "api_key",
        seeds: || {
            let (key, _) = api_key();
            vec![
                key.as_bytes().to_vec(),
                format!("Bearer {key}").into_bytes(),
                b"il_00000000-0000-0000-0000-000000000000_".to_vec(),
                b"il_{urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8}_x_y".to_vec(),
            ]
        },
        check: check_api_key,
        cases: 150_000,
        max_peak: MIB,
    }
}

/// Parsing never panics, gives a secret that is the key's tail, and only the real secret
/// matches the stored hash.
pub fn check_api_key(bytes: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(bytes);
    let (real_key, real_hash) = api_key();
    let parsed = parse_api_key(&text);
    if let Some((_, secret)) = parsed {
        if !text.starts_with("il_") || !text.ends_with(secret) {
            return Err(format!("{text:?} parsed to secret {secret:?}"));
        }
        let real_secret = parse_api_key(real_key).expect("a real key parses").1;
        if secret_matches(secret, real_hash) != (secret == real_secret) {
            return Err(format!("secret {secret:?} matched the wrong hash"));
        }
    }
    // The comparison itself takes any presented text, however odd.
    let real_secret = parse_api_key(real_key).expect("a real key parses").1;
    if secret_matches(&text, real_hash) && text != real_secret {
        return Err(format!("the text {text:?} matched another secret's hash"));
    }
    Ok(if parsed.is_some() {
        "parsed"
    } else {
        "refused"
    }
    .into())
}
