//! Signing deliveries exactly as Svix does: the one place tests make Svix's headers, with the
//! library's own signing function.

use std::time::{SystemTime, UNIX_EPOCH};

use stack_sync::signature::SigningKey;

/// The endpoint secret the test service is configured with.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A fresh Svix message id, created now as Svix would.
pub fn message_id() -> String {
    stack_sync::event_time::message_id_at(time::OffsetDateTime::now_utc())
}

/// Unix seconds now, as Svix puts in `svix-timestamp`.
pub fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

/// Signs with one endpoint secret.
pub struct Signer(SigningKey);

impl Signer {
    pub fn new(secret: &str) -> Self {
        Self(SigningKey::from_secret(secret).expect("a valid secret"))
    }

    /// The `svix-signature` value Svix would send for this message.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.0.signature_header(id, timestamp, body)
    }

    /// The three Svix headers for `body` sent as message `id` at `timestamp`.
    pub fn headers_at(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
        vec![
            ("svix-id", id.to_owned()),
            ("svix-timestamp", timestamp.to_string()),
            ("svix-signature", self.signature(id, timestamp, body)),
        ]
    }

    /// The same, signed now.
    pub fn headers(&self, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        self.headers_at(id, now(), body)
    }
}

impl Default for Signer {
    /// The signer of the test secret.
    fn default() -> Self {
        Self::new(SECRET)
    }
}
