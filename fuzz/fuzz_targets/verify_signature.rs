//! The Svix signature verifier on arbitrary headers and bodies: it never panics, a body signed
//! with the key always verifies, and the same body with one byte changed never does.
//!
//! Input: `id \n timestamp \n signature \n\n body` for hostile headers; without a blank line the
//! whole input is the body of a correctly signed delivery.
#![no_main]

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use stack_sync::signature::{SigningKey, Verifier};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_2mXbH8pLnqL3zY7VvT9sJd6Kc4R";
const NOW: u64 = 1_767_225_600;

fuzz_target!(|input: &[u8]| {
    let key = SigningKey::from_secret(SECRET).unwrap();
    let verifier = Verifier::new(vec![key.clone()], Duration::from_secs(300));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    let timestamp = i64::try_from(NOW).unwrap();

    match split_headers(input) {
        Some((fields, body)) => {
            let mut headers = HeaderMap::new();
            for (name, value) in ["svix-id", "svix-timestamp", "svix-signature"]
                .iter()
                .zip(fields)
            {
                if let Ok(value) = HeaderValue::from_bytes(value) {
                    headers.insert(*name, value);
                }
            }
            // Only that it answers: a forged signature verifying would take 2^-256 luck.
            let _ = verifier.verify(&headers, body, now);
        }
        None => {
            let signed = headers(ID, timestamp, &key.signature_header(ID, timestamp, input));
            assert!(
                verifier.verify(&signed, input, now).is_ok(),
                "a signed body was refused"
            );
            if let Some((first, rest)) = input.split_first() {
                let changed = [&[first ^ 1], rest].concat();
                assert!(
                    verifier.verify(&signed, &changed, now).is_err(),
                    "a changed body verified"
                );
            }
        }
    }
});

/// The three header fields and the body, when the input has a blank line.
fn split_headers(input: &[u8]) -> Option<([&[u8]; 3], &[u8])> {
    let blank = input.windows(2).position(|pair| pair == b"\n\n")?;
    let (head, body) = (&input[..blank], &input[blank + 2..]);
    let mut fields = head.splitn(3, |byte| *byte == b'\n');
    Some((
        [
            fields.next()?,
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        ],
        body,
    ))
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("svix-id", HeaderValue::from_str(id).unwrap());
    headers.insert("svix-timestamp", HeaderValue::from(timestamp));
    headers.insert("svix-signature", HeaderValue::from_str(signature).unwrap());
    headers
}
