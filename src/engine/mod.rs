//! Engine: pure image code. Everything here works on bytes and pixels already in memory and
//! never touches files, sockets or the clock, so it can be unit-tested and fuzzed in isolation
//! and run on blocking threads by the callers that own I/O and concurrency caps.
//!
//! Today it holds the upload path: format sniffing, header probing and bounded decoding
//! ([`decode`](mod@decode)), EXIF extraction and orientation ([`exif`](mod@exif)), and PNG
//! thumbnails ([`thumbnail`](mod@thumbnail)). Later issues add layer decomposition,
//! inpainting and the exporters here.
//!
//! Invariants: no function in this module reads or writes outside its arguments; every decode
//! goes through explicit size and allocation limits and cannot panic out of [`decode::decode`].

pub mod cutout;
pub mod decode;
pub mod decompose;
pub mod edit;
pub mod exif;
pub mod export;
pub mod inpaint;
pub mod layers;
pub mod ora;
pub mod palette;
pub mod psd;
pub mod psd_read;
pub mod thumbnail;

pub use self::cutout::apply_matte;
pub use self::decode::{
    decode, encode_png, probe, sniff, DecodeError, DecodeLimits, Decoded, EncodeError,
    ImageFormatKind, Probe,
};
pub use self::exif::{apply_orientation, read_exif, ExifInfo, Gps};
pub use self::layers::{Layer, LayerKind, LayerProps, LayerStack};
pub use self::thumbnail::thumbnail_png;
