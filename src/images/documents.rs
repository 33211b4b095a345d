//! Documents as a service: a decomposition is stored as a document whose layers are encrypted
//! full-canvas PNG blobs (written and fsynced before the record commits), kept as long as the
//! image's plan retention; reads are owner-checked like everything else.

use std::io::Read;

use image::RgbaImage;

use super::ImageService;
use crate::blobs::DataKey;
use crate::clock::unix;
use crate::engine::export::encode_layer_png;
use crate::engine::{LayerProps, LayerStack};
use crate::error::ApiError;
use crate::ids::{BlobId, DocumentId, ImageId, LayerId, UserId};
use crate::store::{DocumentRecord, ImageState, LayerRecord};

impl ImageService {
    /// Stores a decomposition of `image_id` as a new document (blocking). The image becomes a
    /// processed result: both now follow the owner's plan retention.
    pub fn store_stack(
        &self,
        owner: UserId,
        image_id: ImageId,
        mode: &str,
        stack: &LayerStack,
    ) -> Result<DocumentRecord, ApiError> {
        let props = vec![LayerProps::default(); stack.layers.len()];
        self.store_stack_with(owner, image_id, mode, stack, &props)
    }

    /// [`store_stack`](Self::store_stack) with each layer's opacity and visibility.
    pub fn store_stack_with(
        &self,
        owner: UserId,
        image_id: ImageId,
        mode: &str,
        stack: &LayerStack,
        props: &[LayerProps],
    ) -> Result<DocumentRecord, ApiError> {
        let key = self.data_key(owner)?;
        let generation = self.keyring.current_generation();
        let mut layers = Vec::with_capacity(stack.layers.len());
        let mut written = Vec::new();
        let result = (|| {
            for (layer, p) in stack.layers.iter().zip(props) {
                let png =
                    encode_layer_png(layer).map_err(|e| ApiError::internal("layer encode", e))?;
                let blob = BlobId::new();
                self.blobs
                    .put(&key, generation, owner, blob, &mut &png[..])?;
                written.push(blob);
                layers.push(LayerRecord {
                    id: LayerId::new(),
                    name: layer.name.clone(),
                    kind: layer.kind,
                    visible: p.visible,
                    opacity: p.opacity.clamp(0.0, 1.0),
                    bbox: layer.bbox(),
                    text: layer.text.clone(),
                    blob,
                });
            }
            let expires_at = self.processed_expiry(owner)?;
            let doc = DocumentRecord {
                id: DocumentId::new(),
                owner,
                image_id,
                width: stack.width,
                height: stack.height,
                revision: 1,
                mode: mode.to_string(),
                layers,
                created_at: unix(self.clock.now()),
                expires_at,
                last_op: mode.to_string(),
                undo: Vec::new(),
                redo: Vec::new(),
            };
            let Some(mut img) = self.store.get_image(image_id)? else {
                return Err(ApiError::not_found("image"));
            };
            self.store.put_document(&doc)?;
            if img.state == ImageState::Temporary || img.expires_at < expires_at {
                img.state = ImageState::Processed;
                img.expires_at = expires_at;
                self.store.update_image(&img)?;
            }
            self.store.flush_blocking()?;
            Ok(doc)
        })();
        if result.is_err() {
            for b in written {
                let _ = self.blobs.delete(owner, b);
            }
        }
        result
    }

    /// Imports a layered file (.psd or .ora, recognised by its bytes) as a new document: the
    /// composite becomes the document's image, and each layer keeps its name, opacity and
    /// visibility.
    pub async fn import_document(
        &self,
        owner: UserId,
        bytes: Vec<u8>,
    ) -> Result<DocumentRecord, ApiError> {
        // a layered file decodes to many canvases: it takes one of the upload decode slots
        // for the whole import (and stores its composite under that same slot)
        let _slot = self
            .decode_slots
            .acquire()
            .await
            .map_err(|e| ApiError::internal("decode slots", e))?;
        let limits = self.limits;
        let (stack, props, mode) =
            tokio::task::spawn_blocking(move || decode_layered(&bytes, &limits)).await??;
        let composite = image::DynamicImage::ImageRgb8(stack.composite());
        let mut png = std::io::Cursor::new(Vec::new());
        composite
            .write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| ApiError::internal("import composite", e))?;
        let img = self.upload_in_slot(owner, png.into_inner()).await?;
        let svc = self.clone();
        tokio::task::spawn_blocking(move || {
            svc.store_stack_with(owner, img.id, mode, &stack, &props)
        })
        .await?
    }

    /// One layer's pixels, decrypted and decoded.
    pub(crate) fn read_layer(
        &self,
        key: &DataKey,
        owner: UserId,
        rec: &LayerRecord,
    ) -> Result<RgbaImage, ApiError> {
        let png = self.blobs.read_all(key, owner, rec.blob)?;
        Ok(
            image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                .map_err(|e| ApiError::internal("layer decode", e))?
                .to_rgba8(),
        )
    }

    /// The member's documents, newest first.
    pub fn list_documents(&self, owner: UserId) -> Result<Vec<DocumentRecord>, ApiError> {
        let mut docs = Vec::new();
        for img in self.store.list_images(owner)? {
            docs.extend(self.store.documents_of_image(img.id)?);
        }
        docs.retain(|d| d.owner == owner);
        docs.sort_by_key(|d| std::cmp::Reverse(d.id));
        Ok(docs)
    }

    /// The member's document; another member's is 404.
    pub fn get_document(&self, owner: UserId, id: DocumentId) -> Result<DocumentRecord, ApiError> {
        self.store
            .get_document(id)?
            .filter(|d| d.owner == owner)
            .ok_or_else(|| ApiError::not_found("document"))
    }

    /// A decrypting reader over one layer's PNG.
    pub fn open_layer(
        &self,
        owner: UserId,
        doc: DocumentId,
        layer: LayerId,
    ) -> Result<Box<dyn Read + Send>, ApiError> {
        let doc = self.get_document(owner, doc)?;
        let layer = doc
            .layers
            .iter()
            .find(|l| l.id == layer)
            .ok_or_else(|| ApiError::not_found("layer"))?;
        self.open_blob(owner, layer.blob)
    }

    /// Queues a decomposition of the member's image.
    pub async fn request_decompose(
        &self,
        owner: UserId,
        id: ImageId,
        layers: String,
        mode: String,
    ) -> Result<crate::ids::JobId, ApiError> {
        self.get(owner, id)?;
        if mode != "palette" && self.inference.get().is_none() {
            return Err(ApiError::new(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                "models_not_ready",
                "the models are not loaded yet; see /readyz (an operator runs `image-layered models fetch`)",
            ));
        }
        let job = self.jobs.new_job(
            owner,
            crate::store::JobKind::Decompose {
                image_id: id,
                layers,
                mode,
            },
        );
        self.jobs.enqueue(&job).await?;
        Ok(job.id)
    }
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

impl ImageService {
    /// The document's layers as stored, with each layer's display settings (blocking:
    /// decrypts and decodes every layer).
    pub fn document_layers(
        &self,
        owner: UserId,
        id: DocumentId,
    ) -> Result<(LayerStack, Vec<LayerProps>), ApiError> {
        let doc = self.get_document(owner, id)?;
        let key = self.data_key(owner)?;
        let mut layers = Vec::with_capacity(doc.layers.len());
        let mut props = Vec::with_capacity(doc.layers.len());
        for rec in &doc.layers {
            let rgba = self.read_layer(&key, owner, rec)?;
            layers.push(crate::engine::Layer {
                name: rec.name.clone(),
                kind: rec.kind,
                rgba,
                text: rec.text.clone(),
            });
            props.push(LayerProps {
                opacity: rec.opacity.clamp(0.0, 1.0),
                visible: rec.visible,
            });
        }
        let stack = LayerStack {
            width: doc.width,
            height: doc.height,
            layers,
        };
        Ok((stack, props))
    }

    /// The document as it displays: each layer's visibility and opacity folded into its alpha.
    pub fn document_stack(&self, owner: UserId, id: DocumentId) -> Result<LayerStack, ApiError> {
        let (mut stack, props) = self.document_layers(owner, id)?;
        for (layer, p) in stack.layers.iter_mut().zip(&props) {
            let factor = if p.visible { p.opacity } else { 0.0 };
            if factor < 1.0 {
                for px in layer.rgba.pixels_mut() {
                    px.0[3] = (px.0[3] as f32 * factor).round() as u8;
                }
            }
        }
        Ok(stack)
    }

    /// Exports a document (blocking). Flat formats are freshly encoded from the composite, so
    /// they carry no EXIF at all (no GPS can leak).
    pub fn export_document(
        &self,
        owner: UserId,
        id: DocumentId,
        format: ExportFormat,
    ) -> Result<Vec<u8>, ApiError> {
        let fail = |e: &dyn std::fmt::Display| ApiError::internal("export", e);
        if format == ExportFormat::Psd {
            let (stack, props) = self.document_layers(owner, id)?;
            return crate::engine::psd::encode_psd(&stack, &props).map_err(|e| fail(&e));
        }
        if format == ExportFormat::Ora {
            let (stack, props) = self.document_layers(owner, id)?;
            return crate::engine::ora::encode_ora(&stack, &props).map_err(|e| fail(&e));
        }
        let stack = self.document_stack(owner, id)?;
        match format {
            ExportFormat::Zip => crate::engine::export::zip_bytes(&stack)
                .map(|(bytes, _)| bytes)
                .map_err(|e| fail(&e)),
            flat => {
                let img = image::DynamicImage::ImageRgb8(stack.composite());
                let mut out = std::io::Cursor::new(Vec::new());
                let fmt = match flat {
                    ExportFormat::Png => image::ImageFormat::Png,
                    ExportFormat::Jpeg => image::ImageFormat::Jpeg,
                    _ => image::ImageFormat::WebP,
                };
                let img = if fmt == image::ImageFormat::WebP {
                    image::DynamicImage::ImageRgba8(img.to_rgba8())
                } else {
                    img
                };
                img.write_to(&mut out, fmt).map_err(|e| fail(&e))?;
                Ok(out.into_inner())
            }
        }
    }
}

/// Decodes a .psd or .ora into a stack, its layer settings and the document mode it gets.
fn decode_layered(
    bytes: &[u8],
    limits: &crate::engine::DecodeLimits,
) -> Result<(LayerStack, Vec<LayerProps>, &'static str), ApiError> {
    let unprocessable = |code: &'static str, m: String| {
        ApiError::new(hyper::StatusCode::UNPROCESSABLE_ENTITY, code, m)
    };
    let (stack, props, mode) = if bytes.starts_with(b"8BPS") {
        let psd_limits = crate::engine::psd_read::PsdLimits {
            max_pixels: limits.max_pixels,
            ..Default::default()
        };
        let (stack, props) = crate::engine::psd_read::decode_psd(bytes, &psd_limits)
            .map_err(|e| unprocessable(e.code(), format!("this PSD cannot be read: {e}")))?;
        (stack, props, "import-psd")
    } else if bytes.starts_with(b"PK\x03\x04") {
        let (stack, props) = crate::engine::ora::decode_ora(bytes).map_err(|e| {
            unprocessable(
                e.code(),
                format!("this OpenRaster file cannot be read: {e}"),
            )
        })?;
        (stack, props, "import-ora")
    } else {
        return Err(ApiError::new(
            hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
            "import takes a Photoshop .psd or an OpenRaster .ora file",
        ));
    };
    if stack.layers.is_empty() {
        return Err(unprocessable(
            "empty_document",
            "the file has no layers".into(),
        ));
    }
    if stack.width as u64 * stack.height as u64 > limits.max_pixels
        || stack.width.max(stack.height) > limits.max_side
    {
        return Err(ApiError::new(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_pixels",
            format!(
                "the canvas is {}x{}, over this studio's limit of {} pixels",
                stack.width, stack.height, limits.max_pixels
            ),
        ));
    }
    Ok((stack, props, mode))
}
