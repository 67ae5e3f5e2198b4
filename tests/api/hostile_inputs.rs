//! The hostile-input catalogue: one table of requests an attacker, a broken proxy or a confused
//! sender might make, each with the answer it must get and what it may leave behind. A refusal
//! writes no row at all; a signed body that can never apply is recorded once as `failed` (or
//! `ignored`) and changes no mirror row; anything else is applied as Stack would expect.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::support::signing::{Signer, now};
use crate::support::{TestApp, example, message_id};

/// What a case must be answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// Refused with this status and error code; no row written anywhere.
    Refused(u16, &'static str),
    /// A status with no error body of ours (routing: 404, 405); no row written.
    Routed(u16),
    /// Answered 200 with this outcome, and recorded with it.
    Recorded(&'static str),
}

/// How the signature header of a case is made.
#[derive(Clone)]
enum Signature {
    /// What Svix would send for the case's id, timestamp and body.
    Valid,
    /// Exactly this text.
    Raw(String),
    /// A valid one over other content: (id, timestamp, body).
    Over(String, i64, Vec<u8>),
    /// Signed with another secret.
    OtherSecret,
    /// The valid signature, changed by this function.
    Mangled(fn(String) -> String),
}

/// One request of the catalogue.
#[derive(Clone)]
struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    /// `None` omits the header; bytes allow values that are not text.
    id: Option<Vec<u8>>,
    timestamp: Option<Vec<u8>>,
    /// When set, the timestamp is this many seconds from the moment the case is sent.
    offset: Option<i64>,
    signature: Option<Signature>,
    body: Vec<u8>,
    /// Header names: Svix's branded ones or the unbranded `webhook-*`.
    prefix: &'static str,
    extra_headers: Vec<(&'static str, &'static str)>,
    answer: Answer,
}

impl Case {
    /// A correctly signed delivery of `body`, sent now with a fresh id.
    fn signed(name: &'static str, body: impl Into<Vec<u8>>, answer: Answer) -> Self {
        Self {
            name,
            method: Method::POST,
            path: "/webhooks/stack",
            id: Some(message_id().into_bytes()),
            timestamp: Some(now().to_string().into_bytes()),
            offset: None,
            signature: Some(Signature::Valid),
            body: body.into(),
            prefix: "svix",
            extra_headers: Vec::new(),
            answer,
        }
    }

    /// A signed `event`, serialized.
    fn event(name: &'static str, event: &Value, answer: Answer) -> Self {
        Self::signed(name, event.to_string(), answer)
    }

    fn id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.id = Some(id.into());
        self
    }

    fn timestamp(mut self, timestamp: impl Into<Vec<u8>>) -> Self {
        self.timestamp = Some(timestamp.into());
        self
    }

    /// Sent `seconds` from now (negative: in the past), reckoned when it is sent.
    fn offset(mut self, seconds: i64) -> Self {
        self.offset = Some(seconds);
        self
    }

    fn signature(mut self, signature: Signature) -> Self {
        self.signature = Some(signature);
        self
    }

    fn headers(&self, signer: &Signer) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut put = |suffix: &str, value: &[u8]| {
            let name = HeaderName::from_bytes(format!("{}-{suffix}", self.prefix).as_bytes());
            headers.insert(name.unwrap(), HeaderValue::from_bytes(value).unwrap());
        };
        if let Some(id) = &self.id {
            put("id", id);
        }
        let sent_timestamp = match self.offset {
            Some(offset) => Some((now() + offset).to_string().into_bytes()),
            None => self.timestamp.clone(),
        };
        if let Some(timestamp) = &sent_timestamp {
            put("timestamp", timestamp);
        }
        let id = String::from_utf8_lossy(self.id.as_deref().unwrap_or_default()).into_owned();
        let timestamp = sent_timestamp
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok()?.parse().ok())
            .unwrap_or_else(now);
        let signature = match &self.signature {
            None => None,
            Some(Signature::Valid) => Some(signer.signature(&id, timestamp, &self.body)),
            Some(Signature::Raw(text)) => Some(text.clone()),
            Some(Signature::Over(id, timestamp, body)) => {
                Some(signer.signature(id, *timestamp, body))
            }
            Some(Signature::Mangled(mangle)) => {
                Some(mangle(signer.signature(&id, timestamp, &self.body)))
            }
            Some(Signature::OtherSecret) => Some(
                Signer::new("whsec_c2VjcmV0LW9mLXNvbWVvbmUtZWxzZQ==")
                    .signature(&id, timestamp, &self.body),
            ),
        };
        if let Some(signature) = signature {
            put("signature", signature.as_bytes());
        }
        for (name, value) in &self.extra_headers {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }
}

fn refused(status: u16, code: &'static str) -> Answer {
    Answer::Refused(status, code)
}

const APPLIED: Answer = Answer::Recorded("applied");
const FAILED: Answer = Answer::Recorded("failed");
const IGNORED: Answer = Answer::Recorded("ignored");

/// `name`'s example about a user or team never seen before, so that applying it changes rows.
fn fresh(name: &str) -> Value {
    let mut event = example(name);
    let data = &mut event["data"];
    if name.starts_with("user.") || name.starts_with("team.") {
        data["id"] = json!(uuid::Uuid::new_v4());
    } else {
        data["user_id"] = json!(uuid::Uuid::new_v4());
    }
    event
}

/// `name`'s example with `pointer` set to `value`.
fn with(name: &str, pointer: &str, value: Value) -> Value {
    let mut event = fresh(name);
    *event
        .pointer_mut(pointer)
        .expect("the example has the field") = value;
    event
}

/// `name`'s example with `field` added to or set in `data`.
fn with_data(name: &str, field: &str, value: Value) -> Value {
    let mut event = fresh(name);
    event["data"][field] = value;
    event
}

fn without_data(name: &str, field: &str) -> Value {
    let mut event = fresh(name);
    event["data"].as_object_mut().unwrap().remove(field);
    event
}

/// `len` characters that Postgres cannot compress (so an index must hold them whole).
fn incompressible(len: usize) -> String {
    let mut text = String::new();
    while text.len() < len {
        text.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    text.truncate(len);
    text
}

/// A JSON value nested `depth` arrays deep.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn header_cases() -> Vec<Case> {
    let case = |name, answer| Case::event(name, &fresh("user.created"), answer);
    let mut cases = vec![
        Case {
            id: None,
            ..case("no svix-id", refused(401, "missing_header"))
        },
        Case {
            timestamp: None,
            ..case("no svix-timestamp", refused(401, "missing_header"))
        },
        Case {
            signature: None,
            ..case("no svix-signature", refused(401, "missing_header"))
        },
        Case {
            id: None,
            timestamp: None,
            signature: None,
            ..case("no Svix header at all", refused(401, "missing_header"))
        },
        case("svix-id of 257 bytes", refused(401, "invalid_header")).id("m".repeat(257)),
        case("svix-id of 10 KB", refused(401, "invalid_header")).id("m".repeat(10_240)),
        case("svix-id that is not UTF-8", refused(401, "invalid_header"))
            .id(b"msg_\xff\xfe".to_vec()),
        case("svix-id with Latin-1 bytes", refused(401, "invalid_header"))
            .id(b"msg_caf\xe9".to_vec()),
        case("svix-id with spaces (signed)", APPLIED).id("msg with spaces"),
        case("svix-id of 256 bytes (signed)", APPLIED).id("m".repeat(256)),
        case("svix-id forging log fields (signed)", APPLIED)
            .id("msg_x outcome=applied level=error"),
        Case {
            prefix: "webhook",
            ..case("unbranded webhook-* headers (signed)", APPLIED)
        },
    ];
    cases.push(Case {
        extra_headers: vec![("content-type", "text/plain")],
        ..case("content-type text/plain (signed)", APPLIED)
    });
    cases.push(Case {
        extra_headers: vec![("content-encoding", "gzip")],
        ..case(
            "content-encoding that the body is not in (signed as sent)",
            APPLIED,
        )
    });
    cases
}

fn timestamp_cases() -> Vec<Case> {
    let case = |name, answer| Case::event(name, &fresh("team.created"), answer);
    vec![
        case("timestamp not a number", refused(401, "invalid_timestamp")).timestamp("yesterday"),
        case("timestamp empty", refused(401, "invalid_timestamp")).timestamp(""),
        case(
            "timestamp with a fraction",
            refused(401, "invalid_timestamp"),
        )
        .timestamp(format!("{}.5", now())),
        case(
            "timestamp in milliseconds",
            refused(401, "timestamp_too_new"),
        )
        .timestamp((now() * 1000).to_string()),
        case("timestamp past i64", refused(401, "invalid_timestamp"))
            .timestamp("99999999999999999999"),
        // Svix never sends a time before 1970: not a timestamp at all, rather than an old one.
        case("timestamp negative", refused(401, "invalid_timestamp")).timestamp("-1"),
        case("timestamp zero", refused(401, "timestamp_too_old")).timestamp("0"),
        case("timestamp 301 s old", refused(401, "timestamp_too_old")).offset(-301),
        case("timestamp 310 s ahead", refused(401, "timestamp_too_new")).offset(310),
        case("timestamp 250 s old (signed)", APPLIED).offset(-250),
        case("timestamp 250 s ahead (signed)", APPLIED).offset(250),
        case("timestamp i64::MIN", refused(401, "invalid_timestamp"))
            .timestamp(i64::MIN.to_string()),
        case("timestamp i64::MAX", refused(401, "timestamp_too_new"))
            .timestamp(i64::MAX.to_string()),
    ]
}

fn signature_cases() -> Vec<Case> {
    let case = |name| {
        Case::event(
            name,
            &fresh("user.updated"),
            refused(401, "invalid_signature"),
        )
    };
    let raw = |name, text: String| case(name).signature(Signature::Raw(text));
    let mangled = |name, mangle| case(name).signature(Signature::Mangled(mangle));
    vec![
        raw("signature empty", String::new()),
        raw("signature with an empty value", "v1,".to_owned()),
        raw("signature not base64", "v1,!!!not-base64!!!".to_owned()),
        raw("signature of 10 KB", format!("v1,{}", "A".repeat(10_240))),
        raw(
            "1,000 wrong signatures",
            vec![format!("v1,{}", "A".repeat(43)); 1000].join(" "),
        ),
        raw(
            "signature as an asymmetric v1a",
            format!("v1a,{}", "A".repeat(86)),
        ),
        mangled("signature without a version", |valid| valid[3..].to_owned()),
        mangled("signature of version v2", |valid| {
            valid.replacen("v1,", "v2,", 1)
        }),
        mangled("signature of version v1a", |valid| {
            valid.replacen("v1,", "v1a,", 1)
        }),
        mangled("signature truncated", |valid| valid[..23].to_owned()),
        mangled("signature with one character changed", |valid| {
            let changed = if valid.as_bytes()[8] == b'A' {
                "B"
            } else {
                "A"
            };
            format!("{}{changed}{}", &valid[..8], &valid[9..])
        }),
        mangled("signature upper-cased", |valid| valid.to_uppercase()),
        mangled("signature with its padding removed", |valid| {
            valid.trim_end_matches('=').to_owned()
        }),
        case("signed with another secret").signature(Signature::OtherSecret),
        case("signature over another body").signature(Signature::Over(
            message_id(),
            now(),
            b"{}".to_vec(),
        )),
        case("signature over another id").signature(Signature::Over(
            message_id(),
            now(),
            fresh("user.updated").to_string().into_bytes(),
        )),
        Case::event(
            "a wrong signature beside the valid one (signed)",
            &fresh("user.updated"),
            APPLIED,
        )
        .signature(Signature::Mangled(|valid| {
            format!("v1,{} {valid}", "A".repeat(43))
        })),
    ]
}

fn body_cases() -> Vec<Case> {
    let oversized = {
        let mut event = fresh("user.created");
        event["data"]["client_metadata"] = json!({ "pad": "x".repeat(1024 * 1024) });
        event.to_string()
    };
    let user = fresh("user.created").to_string();
    vec![
        Case::signed("empty body", "", FAILED),
        Case::signed("body null", "null", FAILED),
        Case::signed("body an array", "[]", FAILED),
        Case::signed("body an empty object", "{}", FAILED),
        Case::signed("body cut off mid-JSON", &user[..user.len() / 2], FAILED),
        Case::signed(
            "body not UTF-8",
            b"{\"type\":\"user.created\",\"data\":\xff}".to_vec(),
            FAILED,
        ),
        Case::signed(
            "bad UTF-8 in a field nobody reads",
            b"{\"type\":\"user.exploded\",\"unread\":\"\x96\"}".to_vec(),
            FAILED,
        ),
        Case::signed(
            "body with a UTF-8 BOM",
            [b"\xef\xbb\xbf".as_slice(), user.as_bytes()].concat(),
            FAILED,
        ),
        Case::signed(
            "body in UTF-16",
            user.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
            FAILED,
        ),
        Case::signed("body nested 100,000 deep", nested(100_000), FAILED),
        Case::signed(
            "trailing garbage after the JSON",
            format!("{user}}}garbage"),
            FAILED,
        ),
        Case::signed(
            "body over 1 MiB",
            oversized,
            refused(413, "payload_too_large"),
        ),
        Case::signed("two JSON documents", format!("{user}{user}"), FAILED),
    ]
}

fn payload_cases() -> Vec<Case> {
    let huge_name = "n".repeat(500_000);
    vec![
        Case::event(
            "type a number",
            &with("user.created", "/type", json!(5)),
            FAILED,
        ),
        Case::event(
            "type null",
            &with("user.created", "/type", Value::Null),
            FAILED,
        ),
        Case::event(
            "type unknown",
            &with("user.created", "/type", json!("user.exploded")),
            IGNORED,
        ),
        Case::event(
            "type with a NUL",
            &with("user.created", "/type", json!("user\u{0}created")),
            FAILED,
        ),
        Case::event(
            "type of 100 KB, unknown so recorded and ignored",
            &with("user.created", "/type", json!(incompressible(100_000))),
            IGNORED,
        ),
        Case::event(
            "type with a newline",
            &with("user.created", "/type", json!("user.created\nx")),
            FAILED,
        ),
        Case::event(
            "data missing",
            &{
                let mut event = fresh("user.created");
                event.as_object_mut().unwrap().remove("data");
                event
            },
            FAILED,
        ),
        Case::event(
            "data an array",
            &with("user.created", "/data", json!([])),
            FAILED,
        ),
        Case::event(
            "data a string",
            &with("team.created", "/data", json!("team")),
            FAILED,
        ),
        Case::event(
            "user id missing",
            &without_data("user.created", "id"),
            FAILED,
        ),
        Case::event(
            "user id not a uuid",
            &with_data("user.created", "id", json!("nope")),
            FAILED,
        ),
        Case::event(
            "user id a NUL",
            &with_data("user.created", "id", json!("\u{0}")),
            FAILED,
        ),
        Case::event(
            "user id a number",
            &with_data("user.updated", "id", json!(7)),
            FAILED,
        ),
        Case::event(
            "display_name a number",
            &with_data("user.created", "display_name", json!(5)),
            FAILED,
        ),
        Case::event(
            "display_name with a NUL",
            &with_data("user.created", "display_name", json!("a\u{0}b")),
            FAILED,
        ),
        Case::signed(
            "display_name a lone surrogate",
            fresh("user.created").to_string().replacen(
                "\"display_name\":",
                "\"display_name\":\"\\ud800\",\"x\":",
                1,
            ),
            FAILED,
        ),
        Case::event(
            "display_name of 500 KB (signed)",
            &with_data("user.created", "display_name", json!(huge_name)),
            APPLIED,
        ),
        Case::event(
            "has_password a string",
            &with_data("user.created", "has_password", json!("yes")),
            FAILED,
        ),
        Case::event(
            "signed_up_at_millis a fraction",
            &with_data("user.created", "signed_up_at_millis", json!(1.5)),
            FAILED,
        ),
        Case::event(
            "signed_up_at_millis past year 9999",
            &with_data("user.created", "signed_up_at_millis", json!(i64::MAX)),
            FAILED,
        ),
        Case::event(
            "signed_up_at_millis before 1970 (signed)",
            &with_data("user.created", "signed_up_at_millis", json!(-1)),
            APPLIED,
        ),
        Case::event(
            "oauth_providers an object",
            &with_data("user.created", "oauth_providers", json!({})),
            FAILED,
        ),
        Case::event(
            "selected_team_id not a uuid",
            &with_data("user.updated", "selected_team_id", json!("x")),
            FAILED,
        ),
        Case::event(
            "metadata nested 100 deep (signed)",
            &with_data(
                "user.created",
                "client_metadata",
                serde_json::from_str(&nested(100)).unwrap(),
            ),
            APPLIED,
        ),
        Case::event(
            "an unknown user_id beside a user (signed)",
            &with_data("user.updated", "user_id", json!("nope")),
            APPLIED,
        ),
        Case::event(
            "an unrelated team_id beside a user (signed)",
            &with_data("user.updated", "team_id", json!(uuid::Uuid::new_v4())),
            APPLIED,
        ),
        Case::event(
            "membership team_id not a uuid",
            &with_data("team_membership.created", "team_id", json!("x")),
            FAILED,
        ),
        Case::event(
            "membership without user_id",
            &without_data("team_membership.created", "user_id"),
            FAILED,
        ),
        Case::event(
            "team permission without its id",
            &without_data("team_permission.created", "id"),
            FAILED,
        ),
        Case::event(
            "permission id of 10 KB, past what an index entry holds",
            &with_data(
                "team_permission.created",
                "id",
                json!(incompressible(10_240)),
            ),
            FAILED,
        ),
        Case::event(
            "permission id with a NUL",
            &with_data("project_permission.created", "id", json!("a\u{0}")),
            FAILED,
        ),
        Case::event(
            "permission id a number",
            &with_data("project_permission.created", "id", json!(3)),
            FAILED,
        ),
        Case::event(
            "team deleted with a null id",
            &with_data("team.deleted", "id", Value::Null),
            FAILED,
        ),
    ]
}

fn routing_cases() -> Vec<Case> {
    let body = fresh("user.created").to_string();
    vec![
        Case {
            method: Method::GET,
            ..Case::signed("GET on the webhook path", body.clone(), Answer::Routed(405))
        },
        Case {
            method: Method::PUT,
            ..Case::signed("PUT on the webhook path", body.clone(), Answer::Routed(405))
        },
        Case {
            path: "/webhooks/stack/",
            ..Case::signed("a trailing slash", body.clone(), Answer::Routed(404))
        },
        Case {
            path: "/webhooks/Stack",
            ..Case::signed("another case", body.clone(), Answer::Routed(404))
        },
        Case {
            path: "/webhooks/%73tack",
            ..Case::signed("a percent-encoded path", body, Answer::Routed(404))
        },
    ]
}

fn catalogue() -> Vec<Case> {
    [
        header_cases(),
        timestamp_cases(),
        signature_cases(),
        body_cases(),
        payload_cases(),
        routing_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Rows in every table the service writes.
async fn rows(app: &TestApp) -> (i64, i64) {
    let mirror: i64 = sqlx::query_scalar(
        "select (select count(*) from stack.users) + (select count(*) from stack.teams)
              + (select count(*) from stack.team_members)
              + (select count(*) from stack.team_permissions)
              + (select count(*) from stack.project_permissions)
              + (select count(*) from stack_sync.versions)",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    (mirror, app.count("webhook_events").await)
}

/// Sends `case` and returns what went wrong, if anything.
async fn try_case(app: &TestApp, case: &Case) -> Option<String> {
    let (mirror_before, recorded_before) = rows(app).await;
    let response = app
        .client
        .request(
            case.method.clone(),
            format!("{}{}", app.base_url, case.path),
        )
        .headers(case.headers(&app.signer))
        .body(case.body.clone())
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let (mirror_after, recorded_after) = rows(app).await;
    let wrote_nothing = (mirror_after, recorded_after) == (mirror_before, recorded_before);
    let problem = match case.answer {
        Answer::Refused(expected, code)
            if (status, body["error"].as_str()) != (expected, Some(code)) =>
        {
            format!("answered {status} {text}")
        }
        Answer::Routed(expected) if status != expected => format!("answered {status} {text}"),
        Answer::Refused(..) | Answer::Routed(_) if !wrote_nothing => "wrote a row".to_owned(),
        Answer::Recorded(outcome) if status != 200 || body["status"] != outcome => {
            format!("answered {status} {text}")
        }
        Answer::Recorded(outcome) => {
            let id = String::from_utf8_lossy(case.id.as_deref().unwrap()).into_owned();
            let recorded = app.recorded_outcome(&id).await;
            let mirror_changed = mirror_after != mirror_before;
            if recorded.as_deref() != Some(outcome) {
                format!("recorded as {recorded:?}")
            } else if recorded_after != recorded_before + 1 {
                "not recorded exactly once".to_owned()
            } else if outcome != "applied" && mirror_changed {
                "changed the mirror".to_owned()
            } else if outcome == "applied" && !mirror_changed {
                "applied without a change".to_owned()
            } else {
                return None;
            }
        }
        _ => return None,
    };
    Some(problem)
}

#[tokio::test]
async fn every_hostile_input_gets_its_answer_and_leaves_only_what_it_should() {
    let app = TestApp::spawn().await;
    let cases = catalogue();
    assert!(cases.len() >= 60, "{} cases", cases.len());

    let mut problems = Vec::new();
    for case in &cases {
        if let Some(problem) = try_case(&app, case).await {
            problems.push(format!("{}: {problem}", case.name));
        }
    }

    assert!(
        problems.is_empty(),
        "{} of {} cases:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
    let status = app
        .client
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200, "still ready after the catalogue");
}
