//! Documents as a service: a decomposition is stored as a document whose layers are encrypted
//! full-canvas PNG blobs (written and fsynced before the record commits), kept as long as the
//! image's plan retention; reads are owner-checked like everything else.

use std::io::Read;

use super::ImageService;
use crate::clock::unix;
use crate::engine::export::encode_layer_png;
use crate::engine::LayerStack;
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
        let key = self.data_key(owner)?;
        let generation = self.keyring.current_generation();
        let mut layers = Vec::with_capacity(stack.layers.len());
        let mut written = Vec::new();
        let result = (|| {
            for layer in &stack.layers {
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
                    visible: true,
                    opacity: 1.0,
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
