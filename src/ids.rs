//! Typed identifiers. Every resource id is a UUIDv7 newtype, so ids sort by creation time
//! (prefix scans come back in order) and one kind of id can never be passed for another.
//! Ids render as the plain hyphenated UUID in JSON and URLs and as 16 raw bytes in store keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The 16 raw bytes, as used in store keys.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Rebuilds an id from store-key bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                Uuid::from_slice(b).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A member (user) of the studio.
    UserId
);
typed_id!(
    /// An uploaded image.
    ImageId
);
typed_id!(
    /// A persisted background job.
    JobId
);
typed_id!(
    /// An API key (the id is public; the secret is shown once and stored hashed).
    ApiKeyId
);
typed_id!(
    /// A layered document (a decomposition and, later, its edits).
    DocumentId
);
typed_id!(
    /// One layer of a document.
    LayerId
);
typed_id!(
    /// An encrypted blob on disk (original upload, thumbnail, layer, export).
    BlobId
);
typed_id!(
    /// A message in the outbox.
    MailId
);
typed_id!(
    /// An entry of a member's credit ledger.
    LedgerId
);
typed_id!(
    /// A member's data export (a ZIP of everything the studio holds about them).
    ExportId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = ImageId::new();
        let b = ImageId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<ImageId>().unwrap(), a);
        assert_eq!(ImageId::from_slice(a.as_bytes()), Some(a));
        assert!("nope".parse::<ImageId>().is_err());
    }
}
