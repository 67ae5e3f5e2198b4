//! Parsing and validating a webhook body, as the service does once the signature holds: it never
//! panics, and whatever it accepts is JSON whose mirrored rows carry the ids they are keyed by.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stack_sync::events::Envelope;

fuzz_target!(|body: &[u8]| {
    let Ok(envelope) = Envelope::parse(body) else {
        return;
    };
    assert!(
        serde_json::from_slice::<serde_json::Value>(body).is_ok(),
        "accepted a body that is not JSON"
    );
    assert!(
        !envelope.event_type.chars().any(char::is_control),
        "accepted a type with control characters"
    );
    if let Some(change) = &envelope.change {
        // The key is what locks and versions are taken on; it must render.
        assert!(!change.key().to_string().is_empty());
    }
});
