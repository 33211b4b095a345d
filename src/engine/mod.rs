//! Engine: pure image code. Everything here works on bytes and pixels already in memory and
//! never touches sockets or the clock, so it can be unit-tested and fuzzed in isolation and
//! run on blocking threads by the callers that own I/O and concurrency caps.
//!
//! It holds the upload path — format sniffing, header probing and bounded decoding
//! ([`decode`](mod@decode)), EXIF extraction and orientation ([`exif`](mod@exif)), PNG
//! thumbnails ([`thumbnail`](mod@thumbnail)) — and the layer work: decomposition into layers
//! ([`decompose`](mod@decompose) peel, [`palette`](mod@palette)), background completion
//! ([`inpaint`](mod@inpaint)), layer edits ([`edit`](mod@edit)), and layered files: one
//! [`export::encode`] for PSD ([`psd`](mod@psd)), OpenRaster ([`ora`](mod@ora)), ZIP and flat
//! images, and PSD import ([`psd_read`](mod@psd_read)).
//!
//! Invariants: no function here reads or writes outside its arguments, except the
//! `export::write_*` functions, which write only the path they are given; every decode goes
//! through explicit size and allocation limits and cannot panic out of [`decode::decode`].

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
