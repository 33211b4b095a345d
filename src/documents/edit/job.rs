//! The job kind `edit`: slow ops (inpaint, split) queued by `POST .../ops` and applied in a
//! worker exactly as a fast op is applied in the request.

use super::OpRequest;
use crate::documents::DocumentService;
use crate::ids::DocumentId;
use crate::jobs::{JobContext, JobFailure};

impl DocumentService {
    /// Runs the `edit` job: applies the op as [`DocumentService::edit_blocking`] would have.
    pub fn run_edit(
        &self,
        ctx: &mut JobContext,
        document_id: DocumentId,
        op: serde_json::Value,
    ) -> Result<serde_json::Value, JobFailure> {
        let owner = ctx.job().owner;
        let mut req = OpRequest::parse(op)?;
        req.job = Some(ctx.job().id);
        ctx.progress(0.05);
        let mut last = 0.05f32;
        let doc = self.edit_blocking_with(owner, document_id, &req, &mut |f| {
            // the pixel work is 5%..95% of the job; report in 5% steps
            let p = 0.05 + 0.9 * f.clamp(0.0, 1.0);
            if p - last >= 0.05 {
                last = p;
                ctx.progress(p);
            }
        })?;
        Ok(serde_json::json!({
            "document_id": doc.id,
            "revision": doc.revision,
            "op": req.op.name().as_str(),
        }))
    }
}
