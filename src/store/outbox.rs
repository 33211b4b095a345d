//! The outbox in the store: messages keyed by id (UUIDv7, so in the order they were
//! queued). A delivered message is removed; one that failed for good stays, marked.

use super::codec::{decode, encode};
use super::records::OutboxMessage;
use super::{Result, Store};
use crate::ids::MailId;

impl Store {
    /// Queues or rewrites a message.
    pub fn put_outbox(&self, m: &OutboxMessage) -> Result<()> {
        self.outbox.insert(m.id.as_bytes(), encode(m))?;
        Ok(())
    }

    pub fn delete_outbox(&self, id: MailId) -> Result<()> {
        self.outbox.remove(id.as_bytes())?;
        Ok(())
    }

    /// Every message in the outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxMessage>> {
        self.outbox
            .iter()
            .values()
            .map(|v| decode("outbox", &v?))
            .collect()
    }
}
