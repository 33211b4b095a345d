//! The records kept in the store. All are small (metadata only) and versioned by the store's
//! schema; timestamps are Unix seconds read from the injected clock. Members and what hangs
//! on their account (sessions, keys, tokens, consents, policies, deletions) are in
//! `accounts`; images, jobs, the ledger, documents, exports, the audit log and the outbox
//! here.

use serde::{Deserialize, Serialize};

use crate::engine::decompose::{DecomposeMode, LayerCount};
use crate::engine::LayerKind;
use crate::engine::{ExifInfo, ImageFormatKind};
use crate::ids::{BlobId, DocumentId, ExportId, ImageId, JobId, LayerId, LedgerId, MailId, UserId};

mod accounts;

pub use accounts::{
    ApiKeyRecord, ConsentChange, ConsentKind, ConsentRecord, DeletionRecord, Plan, PolicyRecord,
    Role, SessionRecord, TokenKind, TokenRecord, UserRecord,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageState {
    /// Uploaded, awaiting processing: kept `retention.temporary_hours`.
    Temporary,
    /// Processed: kept for the owner's plan retention.
    Processed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: ImageId,
    pub owner: UserId,
    pub format: ImageFormatKind,
    /// Upright dimensions (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// Size of the original upload in bytes.
    pub bytes: u64,
    pub sha256: String,
    pub exif: Option<ExifInfo>,
    pub state: ImageState,
    pub created_at: i64,
    pub expires_at: i64,
    pub original_blob: BlobId,
    pub thumbnail_blob: Option<BlobId>,
    pub thumbnail_job: Option<JobId>,
    /// The background-removal result (RGBA PNG), once a cutout job has run.
    #[serde(default)]
    pub cutout_blob: Option<BlobId>,
}

impl ImageRecord {
    /// Every blob this image owns.
    pub fn blobs(&self) -> impl Iterator<Item = BlobId> {
        std::iter::once(self.original_blob)
            .chain(self.thumbnail_blob)
            .chain(self.cutout_blob)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];
}

/// What a job does, with its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// A 256 px thumbnail of an upload.
    Thumbnail { image_id: ImageId },
    /// Background removal: the salient object as an RGBA cutout at source resolution.
    Cutout { image_id: ImageId },
    /// Decomposition into a layered document.
    Decompose {
        image_id: ImageId,
        /// Stored as "auto" or the number of layers (2..=10), as a string.
        layers: LayerCount,
        /// "peel" or "palette".
        mode: DecomposeMode,
    },
    /// A slow document edit (inpaint, split): the op as sent, `revision` included.
    Edit {
        document_id: DocumentId,
        op: serde_json::Value,
    },
    /// "Export my data": a ZIP of everything the studio holds about the member.
    Export,
}

impl JobKind {
    /// Whether the job works on this image (or on a document made from it: see
    /// [`on_document`](Self::on_document)).
    pub fn on_image(&self, id: ImageId) -> bool {
        matches!(self, JobKind::Thumbnail { image_id } | JobKind::Cutout { image_id }
            | JobKind::Decompose { image_id, .. } if *image_id == id)
    }

    /// Whether the job edits this document.
    pub fn on_document(&self, id: DocumentId) -> bool {
        matches!(self, JobKind::Edit { document_id, .. } if *document_id == id)
    }

    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Thumbnail { .. } => "thumbnail",
            JobKind::Cutout { .. } => "cutout",
            JobKind::Decompose { .. } => "decompose",
            JobKind::Edit { .. } => "edit",
            JobKind::Export => "export",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub owner: UserId,
    pub kind: JobKind,
    pub state: JobState,
    /// 0.0 ..= 1.0
    pub progress: f32,
    pub attempts: u32,
    /// Unix seconds before which a retried job is not picked up again.
    pub not_before: i64,
    pub error: Option<JobError>,
    pub result: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The credits reserved for it at enqueue (`None`: a free kind of job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u64>,
    /// Whether the reservation was charged or refunded (at its final state).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub settled: bool,
}

/// Why a ledger entry was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerReason {
    /// The plan's monthly credits.
    Grant,
    /// A job's cost, held while it runs.
    Reserve,
    /// The job succeeded: its reservation is spent (a zero entry).
    Charge,
    /// The job failed or was cancelled: its reservation comes back.
    Refund,
    /// Credits bought through the payment provider.
    Purchase,
    /// An admin's correction, with their reason.
    Adjustment,
}

/// One entry of a member's credit ledger; `balance` is the sum of every entry up to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: LedgerId,
    pub at: i64,
    pub delta: i64,
    pub balance: i64,
    pub reason: LedgerReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// The job's kind, the grant's period, the admin's reason or the payment event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One layer of a document; its pixels are an encrypted RGBA PNG blob: the box of the layer's
/// visible pixels, placed at `origin` (or, in data written before camera-size support, the
/// full canvas).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    pub id: LayerId,
    pub name: String,
    pub kind: LayerKind,
    pub visible: bool,
    /// 0.0 ..= 1.0
    pub opacity: f32,
    /// `[x, y, w, h]` of the layer's visible pixels.
    pub bbox: [u32; 4],
    pub text: Option<String>,
    pub blob: BlobId,
    /// Where the blob's top-left pixel sits on the canvas; absent: the blob is the whole
    /// canvas, as every layer was stored before layers were kept as their boxes (read as it
    /// is: the field is new and optional, so no migration rewrites those records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<[u32; 2]>,
}

/// A layered document: layers back to front (z = index).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentRecord {
    pub id: DocumentId,
    pub owner: UserId,
    pub image_id: ImageId,
    pub width: u32,
    pub height: u32,
    pub revision: u64,
    pub mode: DocumentMode,
    pub layers: Vec<LayerRecord>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The op that made the current state (`"decompose"`, `"import"`, `"recolor"`, ...).
    #[serde(default)]
    pub last_op: HistoryOp,
    /// Earlier states, oldest first; undo restores the last.
    #[serde(default)]
    pub undo: Vec<DocState>,
    /// Undone states, the most recently undone last; redo restores it. Any new op clears it.
    #[serde(default)]
    pub redo: Vec<DocState>,
}

/// A member's data export: an encrypted ZIP blob, downloadable by its owner until
/// `expires_at`, when the sweep removes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub id: ExportId,
    pub owner: UserId,
    pub job_id: JobId,
    pub blob: BlobId,
    /// Size of the ZIP in bytes.
    pub bytes: u64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One entry of the audit log: who did what to which object, chained to the entry before by
/// `prev_hash` (see `crate::audit` for what `hash` covers). Objects are named by id only,
/// never by email or content, so the log holds nothing a deletion must erase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3, … with no gaps.
    pub seq: u64,
    pub at: i64,
    /// `member:<id>`, `admin:<id>`, `cli` or `sweep`.
    pub actor: String,
    /// A dotted verb, e.g. `image.delete`, `user.create`, `keys.rotate`, `sweep.remove`.
    pub action: String,
    /// What it was done to, e.g. `image:<id>`.
    pub target: String,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// A message waiting in the outbox (delivered ones are removed: the store keeps no copy of a
/// mail, nor of the link it carried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: MailId,
    pub to: String,
    /// Which notice, e.g. `verify_email` (the template's name).
    pub notice: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub attempts: u32,
    /// Not tried again before this time (backoff after a failed delivery).
    pub next_attempt_at: i64,
    /// The last delivery failure, if any.
    pub last_error: Option<String>,
    /// Gave up after too many failures (kept for the operator to see).
    pub failed: bool,
}

/// How a document was made (stored as these strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocumentMode {
    #[serde(rename = "peel")]
    Peel,
    #[serde(rename = "palette")]
    Palette,
    #[serde(rename = "import-psd")]
    ImportPsd,
    #[serde(rename = "import-ora")]
    ImportOra,
}

impl DocumentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentMode::Peel => "peel",
            DocumentMode::Palette => "palette",
            DocumentMode::ImportPsd => "import-psd",
            DocumentMode::ImportOra => "import-ora",
        }
    }
}

impl From<DecomposeMode> for DocumentMode {
    fn from(m: DecomposeMode) -> Self {
        match m {
            DecomposeMode::Peel => DocumentMode::Peel,
            DecomposeMode::Palette => DocumentMode::Palette,
        }
    }
}

/// What made a state of a document: the way it was made (its first state) or an edit op.
/// Stored as the op's name; a record from before the history was kept has none (`""`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryOp {
    #[default]
    #[serde(rename = "")]
    Unrecorded,
    Peel,
    Palette,
    ImportPsd,
    ImportOra,
    Recolor,
    Replace,
    Remove,
    Inpaint,
    Transform,
    Reorder,
    Rename,
    Merge,
    Split,
}

impl HistoryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryOp::Unrecorded => "",
            HistoryOp::Peel => "peel",
            HistoryOp::Palette => "palette",
            HistoryOp::ImportPsd => "import-psd",
            HistoryOp::ImportOra => "import-ora",
            HistoryOp::Recolor => "recolor",
            HistoryOp::Replace => "replace",
            HistoryOp::Remove => "remove",
            HistoryOp::Inpaint => "inpaint",
            HistoryOp::Transform => "transform",
            HistoryOp::Reorder => "reorder",
            HistoryOp::Rename => "rename",
            HistoryOp::Merge => "merge",
            HistoryOp::Split => "split",
        }
    }
}

impl From<DocumentMode> for HistoryOp {
    fn from(m: DocumentMode) -> Self {
        match m {
            DocumentMode::Peel => HistoryOp::Peel,
            DocumentMode::Palette => HistoryOp::Palette,
            DocumentMode::ImportPsd => HistoryOp::ImportPsd,
            DocumentMode::ImportOra => HistoryOp::ImportOra,
        }
    }
}

/// One state of a document's history: its layer list (blobs are shared between states and
/// never rewritten) and the op that produced it. A state never changes once made; it is
/// stored under `document ‖ revision` (see `crate::store::documents`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocState {
    pub op: HistoryOp,
    pub layers: Vec<LayerRecord>,
    /// The revision at which this was the document's current state: its key, unique within
    /// the document.
    #[serde(default)]
    pub revision: u64,
}

/// One entry of a document's append-only operation log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    /// The revision this entry produced.
    pub revision: u64,
    /// `"op"`, `"undo"` or `"redo"`.
    pub action: String,
    /// The op as requested (for `"op"`), or the op undone / redone.
    pub op: serde_json::Value,
    pub at: i64,
    /// The job that applied it (slow ops), so a job re-run after a crash never applies twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobId>,
}

impl DocumentRecord {
    /// Every blob any state of the document refers to (current, undo and redo), each once.
    pub fn blobs(&self) -> impl Iterator<Item = BlobId> + '_ {
        let mut seen = std::collections::HashSet::new();
        self.layers
            .iter()
            .chain(self.undo.iter().flat_map(|s| s.layers.iter()))
            .chain(self.redo.iter().flat_map(|s| s.layers.iter()))
            .map(|l| l.blob)
            .filter(move |b| seen.insert(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_keep_the_bytes_on_disk() {
        let kind = JobKind::Decompose {
            image_id: ImageId(uuid::Uuid::nil()),
            layers: LayerCount::Exactly(4),
            mode: DecomposeMode::Palette,
        };
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"decompose","image_id":"00000000-0000-0000-0000-000000000000","layers":"4","mode":"palette"}"#
        );
        assert_eq!(serde_json::from_str::<JobKind>(&json).unwrap(), kind);
        for (op, text) in [
            (HistoryOp::Unrecorded, r#""""#),
            (HistoryOp::ImportPsd, r#""import-psd""#),
            (HistoryOp::Recolor, r#""recolor""#),
        ] {
            assert_eq!(serde_json::to_string(&op).unwrap(), text);
            assert_eq!(serde_json::from_str::<HistoryOp>(text).unwrap(), op);
            assert_eq!(format!("\"{}\"", op.as_str()), text);
        }
        let mode = serde_json::to_string(&DocumentMode::ImportOra).unwrap();
        assert_eq!(mode, r#""import-ora""#);
    }
}
