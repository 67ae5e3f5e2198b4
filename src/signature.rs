//! Svix webhook signature verification, free of any web framework: headers, body, keys and the
//! clock are passed in, so every rule can be unit-tested with fixed inputs.
//!
//! The scheme (Standard Webhooks 1.0, as Svix implements it): HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` keyed with the base64-decoded part of a `whsec_` secret, sent as
//! space-separated `v1,<base64>` entries. Behaviour matches the official `svix` crate
//! (`rust/src/webhooks.rs` in `svix/svix-webhooks`); `docs/svix.md` states the scheme and its
//! sources.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const SECRET_PREFIX: &str = "whsec_";
const SIGNATURE_VERSION: &str = "v1";

/// Header names, Svix's own first and the Standard Webhooks ("white-labelled") names as fallback.
/// Each header falls back on its own, as the `svix` crate does.
const ID_HEADERS: [&str; 2] = ["svix-id", "webhook-id"];
const TIMESTAMP_HEADERS: [&str; 2] = ["svix-timestamp", "webhook-timestamp"];
const SIGNATURE_HEADERS: [&str; 2] = ["svix-signature", "webhook-signature"];

/// The default tolerance between the signing time and our clock, in both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The longest message id accepted. Svix's are about 31 bytes; the id is the primary key of
/// `stack.webhook_events`, and one too large for its index could never be recorded.
pub const MAX_ID_BYTES: usize = 256;

/// One endpoint signing key: the decoded bytes of a `whsec_...` secret.
#[derive(Clone)]
pub struct SigningKey(Box<[u8]>);

/// Why a secret could not be turned into a key. Never carries the secret itself.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("is not valid standard base64 after the optional `whsec_` prefix")]
    NotBase64,
    #[error("is empty")]
    Empty,
}

/// Why a request was not accepted as signed by Svix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("{0} header is not visible ASCII")]
    InvalidHeader(&'static str),
    #[error("id header is longer than {MAX_ID_BYTES} bytes")]
    IdTooLong,
    #[error("timestamp header is not a non-negative integer")]
    InvalidTimestamp,
    #[error("timestamp is older than the tolerance")]
    TimestampTooOld,
    #[error("timestamp is further in the future than the tolerance")]
    TimestampTooNew,
    #[error("no v1 signature matches")]
    InvalidSignature,
}

impl VerifyError {
    /// The stable code sent to the client and written to the log.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::InvalidHeader(_) | Self::IdTooLong => "invalid_header",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampTooNew => "timestamp_too_new",
            Self::InvalidSignature => "invalid_signature",
        }
    }
}

/// What a verified request tells us about its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// The Svix message id, the same on every retry of one message.
    pub id: String,
    /// The signing time of this delivery attempt (Unix seconds); new on every attempt.
    pub timestamp: i64,
}

impl SigningKey {
    /// Decodes a `whsec_...` secret (the prefix is optional), strictly, as the `svix` crate does.
    pub fn from_secret(secret: &str) -> Result<Self, SecretError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(key.into_boxed_slice()))
    }

    /// The base64 signature Svix would send for this message, without the `v1,` prefix.
    ///
    /// The body is signed as raw bytes; Svix only sends UTF-8, so this never disagrees with it.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// A complete `svix-signature` header value for this message (`v1,<base64>`).
    pub fn signature_header(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("{SIGNATURE_VERSION},{}", self.sign(id, timestamp, body))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Checks requests against one or more keys; several keys cover a secret rotation.
#[derive(Debug)]
pub struct Verifier {
    keys: Vec<SigningKey>,
    tolerance: Duration,
}

impl Verifier {
    /// A verifier that accepts a signature made with any of `keys`.
    pub fn new(keys: Vec<SigningKey>, tolerance: Duration) -> Self {
        Self { keys, tolerance }
    }

    /// Verifies the Svix headers and signature of `body`, judging the timestamp against `now`.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedWebhook, VerifyError> {
        let id = header(headers, ID_HEADERS, "id")?;
        if id.len() > MAX_ID_BYTES {
            return Err(VerifyError::IdTooLong);
        }
        let signatures = header(headers, SIGNATURE_HEADERS, "signature")?;
        let timestamp = header(headers, TIMESTAMP_HEADERS, "timestamp")?
            .parse::<i64>()
            .map_err(|_| VerifyError::InvalidTimestamp)?;
        self.check_timestamp(timestamp, now)?;
        if self.any_signature_matches(id, timestamp, body, signatures) {
            Ok(VerifiedWebhook {
                id: id.to_owned(),
                timestamp,
            })
        } else {
            Err(VerifyError::InvalidSignature)
        }
    }

    fn check_timestamp(&self, timestamp: i64, now: SystemTime) -> Result<(), VerifyError> {
        let signed_at = u64::try_from(timestamp).map_err(|_| VerifyError::InvalidTimestamp)?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| VerifyError::InvalidTimestamp)?
            .as_secs();
        let tolerance = self.tolerance.as_secs();
        // Inclusive at whole seconds in both directions, like the svix crate.
        if signed_at.saturating_add(tolerance) < now {
            Err(VerifyError::TimestampTooOld)
        } else if signed_at > now.saturating_add(tolerance) {
            Err(VerifyError::TimestampTooNew)
        } else {
            Ok(())
        }
    }

    fn any_signature_matches(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected: Vec<String> = self
            .keys
            .iter()
            .map(|key| key.sign(id, timestamp, body))
            .collect();
        // Entries are `version,signature`; only `v1` is HMAC-SHA256, others (v1a, v2) are skipped.
        // The signatures are compared as base64 text in constant time, as the svix crate does.
        header
            .split(' ')
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == SIGNATURE_VERSION)
            .any(|(_, candidate)| {
                expected
                    .iter()
                    .any(|sig| bool::from(candidate.as_bytes().ct_eq(sig.as_bytes())))
            })
    }
}

fn header<'a>(
    headers: &'a HeaderMap,
    names: [&'static str; 2],
    what: &'static str,
) -> Result<&'a str, VerifyError> {
    let value = names
        .iter()
        .find_map(|name| headers.get(*name))
        .ok_or(VerifyError::MissingHeader(what))?;
    value.to_str().map_err(|_| VerifyError::InvalidHeader(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cross-library vector of the svix-webhooks and Standard Webhooks test suites (e.g.
    // `python/tests/test_webhooks.py` in svix/svix-webhooks).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(seconds: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap())
    }

    fn verifier(secrets: &[&str]) -> Verifier {
        let keys = secrets
            .iter()
            .map(|s| SigningKey::from_secret(s).unwrap())
            .collect();
        Verifier::new(keys, DEFAULT_TOLERANCE)
    }

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("svix-id", id.parse().unwrap());
        headers.insert("svix-timestamp", timestamp.parse().unwrap());
        headers.insert("svix-signature", signature.parse().unwrap());
        headers
    }

    fn verify_main_vector(signature: &str) -> Result<VerifiedWebhook, VerifyError> {
        let headers = headers(MSG_ID, &TIMESTAMP.to_string(), signature);
        verifier(&[SECRET]).verify(&headers, BODY, at(TIMESTAMP))
    }

    #[test]
    fn signs_every_official_vector() {
        let a = |n: usize| "a".repeat(n).into_bytes();
        // In order: the cross-library vector, with and without the `whsec_` prefix; the Rust
        // library's `test_sign`; the C# large-payload vectors
        // (`csharp/Svix.Tests/WebhookTest.cs`); the example of
        // https://docs.svix.com/receiving/verifying-payloads/how-manual.
        let cases: Vec<(&str, &str, i64, Vec<u8>, &str)> = vec![
            (SECRET, MSG_ID, TIMESTAMP, BODY.to_vec(), SIGNATURE),
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                MSG_ID,
                TIMESTAMP,
                BODY.to_vec(),
                SIGNATURE,
            ),
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#.to_vec(),
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
            (
                SECRET,
                MSG_ID,
                TIMESTAMP,
                a(1024 * 1024),
                "v1,txpEUxqWZJ5nteTnymUVa+7C4NHpBeXJ6CsBAW0c3/A=",
            ),
            (
                SECRET,
                MSG_ID,
                TIMESTAMP,
                a(256 * 1024),
                "v1,Mw4Pe2WgApuT7NSqnSq0PQPV9gbLdggCl9B865x5Xh0=",
            ),
            (
                SECRET,
                MSG_ID,
                TIMESTAMP,
                a(256 * 1024 - 1),
                "v1,NTItnqyWMoFhk2Bbe5V/BMdcFRWgcSQaTgqLHX7FC7c=",
            ),
            (
                "whsec_plJ3nmyCDGBKInavdOK15jsl",
                "msg_loFOjxBNrRLzqYUf",
                1731705121,
                br#"{"event_type":"ping","data":{"success":true}}"#.to_vec(),
                "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=",
            ),
        ];
        for (secret, id, ts, body, expected) in cases {
            let key = SigningKey::from_secret(secret).unwrap();
            assert_eq!(
                key.signature_header(id, ts, &body),
                expected,
                "{id} {}",
                body.len()
            );
            let headers = headers(id, &ts.to_string(), expected);
            let verified = verifier(&[secret]).verify(&headers, &body, at(ts));
            assert_eq!(
                verified.map(|v| v.id),
                Ok(id.to_owned()),
                "{id} {}",
                body.len()
            );
        }
    }

    #[test]
    fn signs_edge_case_bodies_as_the_reference_implementations_do() {
        // Derived vectors (see docs/svix.md): computed by three independent implementations. The non-UTF-8 body is signed over its raw bytes, as Go's library does.
        let key = SigningKey::from_secret(SECRET).unwrap();
        let cases: [(&[u8], &str); 4] = [
            (b"", "v1,v48jdbgvh29KJz2Qc+ghw8G6vG3nAKnujWBg8oM/62A="),
            (
                "{\"name\":\"Zoë ✓ 日本\"}".as_bytes(),
                "v1,k61/KTUbp45bc3mHscR94k8A/lfd/w4OgVKwNk1GWCk=",
            ),
            (
                b"{\"test\": 2432232314}\n",
                "v1,FIt3hYjPQCdyuyMOw+0dZwwjGRAx1Il4CsgdFnOmrcc=",
            ),
            (
                b"\x7b\xff\x7d",
                "v1,y0JY85sbaIFeNPl3FRX6eaIAhlcEgIB/pa8jZ9Mm8Rw=",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                key.signature_header(MSG_ID, TIMESTAMP, body),
                expected,
                "{body:?}"
            );
        }
        let other = SigningKey::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}"#;
        assert_eq!(
            other.signature_header("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231, body),
            "v1,Inw/unYkpAh6Njpdz4O+hnN82xYMXQ6NjnZIQN/mzIQ="
        );
    }

    #[test]
    fn returns_the_message_id_and_timestamp() {
        let verified = verify_main_vector(SIGNATURE).unwrap();
        assert_eq!(
            verified,
            VerifiedWebhook {
                id: MSG_ID.into(),
                timestamp: TIMESTAMP
            }
        );
    }

    #[test]
    fn tampered_body_is_rejected() {
        let headers = headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE);
        let result =
            verifier(&[SECRET]).verify(&headers, br#"{"test": 2432232315}"#, at(TIMESTAMP));
        assert_eq!(result, Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let headers = headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE);
        let result = verifier(&["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]).verify(
            &headers,
            BODY,
            at(TIMESTAMP),
        );
        assert_eq!(result, Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn official_wrong_signatures_do_not_verify() {
        for wrong in [
            "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",
            "v1,dawfeoifkpqwoekfpqoekf",
            "v1,",
            "v1,g0hM9SsE",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=,extra",
        ] {
            assert_eq!(
                verify_main_vector(wrong),
                Err(VerifyError::InvalidSignature),
                "{wrong}"
            );
        }
    }

    #[test]
    fn any_v1_entry_may_match_and_other_versions_are_ignored() {
        let header = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU= \
                      v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== \
                      v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= \
                      v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        assert!(verify_main_vector(header).is_ok());
    }

    #[test]
    fn the_right_signature_under_another_version_is_ignored() {
        for header in [
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert_eq!(
                verify_main_vector(header),
                Err(VerifyError::InvalidSignature),
                "{header}"
            );
        }
    }

    #[test]
    fn old_and_new_secret_both_verify_during_rotation() {
        let rotated = verifier(&["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", SECRET]);
        let headers = headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE);
        assert!(rotated.verify(&headers, BODY, at(TIMESTAMP)).is_ok());
        let new_key = SigningKey::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let new_sig = new_key.signature_header(MSG_ID, TIMESTAMP, BODY);
        let headers = super::tests::headers(MSG_ID, &TIMESTAMP.to_string(), &new_sig);
        assert!(rotated.verify(&headers, BODY, at(TIMESTAMP)).is_ok());
    }

    #[test]
    fn timestamp_tolerance_is_inclusive_in_both_directions() {
        let v = verifier(&[SECRET]);
        let check = |now: i64| {
            v.verify(
                &headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE),
                BODY,
                at(now),
            )
        };
        assert!(check(TIMESTAMP + 300).is_ok());
        assert!(check(TIMESTAMP - 300).is_ok());
        assert_eq!(check(TIMESTAMP + 301), Err(VerifyError::TimestampTooOld));
        assert_eq!(check(TIMESTAMP - 301), Err(VerifyError::TimestampTooNew));
    }

    #[test]
    fn tolerance_is_configurable() {
        let keys = vec![SigningKey::from_secret(SECRET).unwrap()];
        let strict = Verifier::new(keys, Duration::from_secs(10));
        let headers = headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE);
        assert!(strict.verify(&headers, BODY, at(TIMESTAMP + 10)).is_ok());
        assert_eq!(
            strict.verify(&headers, BODY, at(TIMESTAMP + 11)),
            Err(VerifyError::TimestampTooOld)
        );
    }

    #[test]
    fn unparsable_timestamps_are_rejected() {
        for ts in [
            "",
            "abc",
            "1614265330.0",
            " 1614265330",
            "-5",
            "99999999999999999999",
        ] {
            let headers = headers(MSG_ID, ts, SIGNATURE);
            let result = verifier(&[SECRET]).verify(&headers, BODY, at(TIMESTAMP));
            assert_eq!(result, Err(VerifyError::InvalidTimestamp), "{ts:?}");
        }
    }

    #[test]
    fn each_missing_header_is_named() {
        for (missing, what) in [
            ("svix-id", "id"),
            ("svix-timestamp", "timestamp"),
            ("svix-signature", "signature"),
        ] {
            let mut headers = headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE);
            headers.remove(missing);
            let result = verifier(&[SECRET]).verify(&headers, BODY, at(TIMESTAMP));
            assert_eq!(result, Err(VerifyError::MissingHeader(what)));
        }
    }

    #[test]
    fn an_id_longer_than_the_limit_is_invalid_before_any_hmac() {
        let long = format!("msg_{}", "x".repeat(MAX_ID_BYTES));
        let key = SigningKey::from_secret(SECRET).unwrap();
        let signature = key.signature_header(&long, TIMESTAMP, BODY);
        let headers = headers(&long, &TIMESTAMP.to_string(), &signature);
        let result = verifier(&[SECRET]).verify(&headers, BODY, at(TIMESTAMP));
        assert_eq!(result, Err(VerifyError::IdTooLong));
        assert_eq!(VerifyError::IdTooLong.code(), "invalid_header");
    }

    #[test]
    fn non_ascii_header_is_invalid() {
        let mut headers = headers(MSG_ID, &TIMESTAMP.to_string(), SIGNATURE);
        headers.insert(
            "svix-id",
            http::HeaderValue::from_bytes(b"msg_\xff").unwrap(),
        );
        let result = verifier(&[SECRET]).verify(&headers, BODY, at(TIMESTAMP));
        assert_eq!(result, Err(VerifyError::InvalidHeader("id")));
    }

    #[test]
    fn webhook_header_names_are_accepted_one_by_one() {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", MSG_ID.parse().unwrap());
        headers.insert("svix-timestamp", TIMESTAMP.to_string().parse().unwrap());
        headers.insert("webhook-signature", SIGNATURE.parse().unwrap());
        assert!(
            verifier(&[SECRET])
                .verify(&headers, BODY, at(TIMESTAMP))
                .is_ok()
        );
    }

    #[test]
    fn secrets_are_decoded_strictly() {
        assert_eq!(
            SigningKey::from_secret("whsec_").unwrap_err(),
            SecretError::Empty
        );
        assert_eq!(SigningKey::from_secret("").unwrap_err(), SecretError::Empty);
        for bad in [
            "whsec_Zm8",
            "whsec_Zm9=",
            "whsec_ab-_",
            " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert_eq!(
                SigningKey::from_secret(bad).unwrap_err(),
                SecretError::NotBase64,
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = SigningKey::from_secret(SECRET).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    }
}
