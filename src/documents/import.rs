//! Importing a layered file (.psd or .ora, recognised by its bytes) as a new document: the
//! composite becomes the document's image (an ordinary upload, under the same decode slot),
//! and each layer keeps its name, opacity and visibility. A file that cannot be read, has no
//! layers or a canvas over the upload limits is refused before anything is stored.

use super::{DocumentError, DocumentService};
use crate::engine::{DecodeLimits, LayerProps, LayerStack};
use crate::ids::{DocumentId, UserId};
use crate::store::{DocumentMode, DocumentRecord};

impl DocumentService {
    /// Imports `bytes` as a new document of `owner`. The caller holds an upload slot
    /// (`ImageService::upload_slot`, taken before the body was read) for the whole import:
    /// a layered file decodes to many canvases, and its composite is stored under it.
    pub async fn import_in_slot(
        &self,
        owner: UserId,
        bytes: Vec<u8>,
    ) -> Result<DocumentRecord, DocumentError> {
        let limits = self.images.limits;
        let max_stack_bytes = self.images.max_stack_bytes;
        let (stack, props, mode) =
            tokio::task::spawn_blocking(move || decode_layered(&bytes, &limits, max_stack_bytes))
                .await
                .map_err(|e| DocumentError::internal("import task", e))??;
        let composite = image::DynamicImage::ImageRgb8(stack.composite());
        let mut png = std::io::Cursor::new(Vec::new());
        composite
            .write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| DocumentError::internal("import composite", e))?;
        let img = self.images.upload_in_slot(owner, png.into_inner()).await?;
        let svc = self.clone();
        tokio::task::spawn_blocking(move || {
            svc.store_stack(owner, img.id, DocumentId::new(), mode, &stack, &props)
        })
        .await
        .map_err(|e| DocumentError::internal("import task", e))?
    }
}

/// Decodes a .psd or .ora into a stack, its layer settings and the document mode it gets.
/// Canvas limits and the stack budget (`uploads.max_stack_bytes`) are checked from the
/// file's header before any layer is decoded.
fn decode_layered(
    bytes: &[u8],
    limits: &DecodeLimits,
    max_stack_bytes: u64,
) -> Result<(LayerStack, Vec<LayerProps>, DocumentMode), DocumentError> {
    let (stack, props, mode) =
        if bytes.starts_with(b"8BPS") {
            let psd_limits = crate::engine::psd_read::PsdLimits {
                max_pixels: limits.max_pixels,
                max_stack_bytes,
                ..Default::default()
            };
            let (stack, props) =
                crate::engine::psd_read::decode_psd(bytes, &psd_limits).map_err(|e| {
                    DocumentError::UnreadableImport {
                        code: e.code(),
                        message: format!("this PSD cannot be read: {e}"),
                    }
                })?;
            (stack, props, DocumentMode::ImportPsd)
        } else if bytes.starts_with(b"PK\x03\x04") {
            let ora_limits = crate::engine::ora::OraLimits {
                max_pixels: limits.max_pixels,
                max_side: limits.max_side,
                max_stack_bytes,
            };
            let (stack, props) = crate::engine::ora::decode_ora_within(bytes, &ora_limits)
                .map_err(|e| DocumentError::UnreadableImport {
                    code: e.code(),
                    message: format!("this OpenRaster file cannot be read: {e}"),
                })?;
            (stack, props, DocumentMode::ImportOra)
        } else {
            return Err(DocumentError::UnsupportedImport);
        };
    if stack.layers.is_empty() {
        return Err(DocumentError::EmptyDocument);
    }
    if stack.width as u64 * stack.height as u64 > limits.max_pixels
        || stack.width.max(stack.height) > limits.max_side
    {
        return Err(DocumentError::CanvasTooLarge {
            width: stack.width,
            height: stack.height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok((stack, props, mode))
}
