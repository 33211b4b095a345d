//! The job kind `edit`: slow ops (inpaint, split) queued by `POST .../ops` and applied in a
//! worker exactly as a fast op is applied in the request.

use super::OpRequest;
use crate::images::ImageService;
use crate::store::JobKind;

/// The job behind a slow op: applies it as [`ImageService::edit_blocking`] would have.
pub struct EditJob(pub ImageService);

impl crate::jobs::JobHandler for EditJob {
    fn run(
        &self,
        ctx: &mut crate::jobs::JobContext,
    ) -> Result<serde_json::Value, crate::jobs::JobFailure> {
        use crate::jobs::JobFailure;
        let JobKind::Edit { document_id, op } = ctx.job().kind.clone() else {
            return Err(JobFailure::abort("wrong_job_kind", "not an edit job"));
        };
        let owner = ctx.job().owner;
        let mut req = OpRequest::parse(op).map_err(|e| JobFailure::abort(e.code, e.message))?;
        req.job = Some(ctx.job().id);
        ctx.progress(0.05);
        let mut last = 0.05f32;
        let doc = self
            .0
            .edit_blocking_with(owner, document_id, &req, &mut |f| {
                // the pixel work is 5%..95% of the job; report in 5% steps
                let p = 0.05 + 0.9 * f.clamp(0.0, 1.0);
                if p - last >= 0.05 {
                    last = p;
                    ctx.progress(p);
                }
            })
            .map_err(|e| JobFailure::abort(e.code, e.message))?;
        Ok(serde_json::json!({
            "document_id": doc.id,
            "revision": doc.revision,
            "op": req.op.name(),
        }))
    }
}
