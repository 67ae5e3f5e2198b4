//! Requests that are not provably from Svix are refused with 401 (or 413 when too large), and
//! none of them writes anything.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use tower::ServiceExt;

use stack_sync::signature::SigningKey;

use crate::support::postgres::TestDb;
use crate::support::signing::{Signer, now};
use crate::support::{TestApp, example, message_id};

async fn assert_nothing_written(app: &TestApp) {
    assert_nothing_written_in(&app.db.pool).await;
}

async fn assert_nothing_written_in(pool: &PgPool) {
    for table in [
        "webhook_events",
        "users",
        "teams",
        "team_members",
        "team_permissions",
        "project_permissions",
    ] {
        let rows: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from stack.{table}")))
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(rows, 0, "stack.{table} must stay empty");
    }
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body["error"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn each_missing_header_is_rejected_with_401() {
    let app = TestApp::spawn().await;
    let body = example("user.created").to_string().into_bytes();
    for missing in ["svix-id", "svix-timestamp", "svix-signature"] {
        let mut headers = app.signer.headers_at(&message_id(), now(), &body);
        headers.retain(|(name, _)| *name != missing);

        let answer = error_code(app.post(&headers, body.clone()).await).await;

        assert_eq!(
            answer,
            (401, "missing_header".to_owned()),
            "without {missing}"
        );
    }
    assert_nothing_written(&app).await;
}

/// One request that must be refused, and the code it must be refused with.
struct Forgery {
    case: &'static str,
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    code: &'static str,
}

#[tokio::test]
async fn forged_and_replayed_requests_are_rejected_with_401() {
    let app = TestApp::spawn().await;
    let body = example("user.created").to_string().into_bytes();
    let (id, ts) = (message_id(), now());
    let good = app.sign(&id, ts, &body);
    let other_key = Signer::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let forgery = |case, timestamp: i64, signature: &str, body: &[u8], code| Forgery {
        case,
        id: id.clone(),
        timestamp: timestamp.to_string(),
        signature: signature.to_owned(),
        body: body.to_vec(),
        code,
    };
    let forgeries = [
        forgery(
            "tampered body",
            ts,
            &good,
            br#"{"type":"user.deleted"}"#,
            "invalid_signature",
        ),
        forgery(
            "wrong secret",
            ts,
            &other_key.signature(&id, ts, &body),
            &body,
            "invalid_signature",
        ),
        forgery(
            "only a v2 entry",
            ts,
            &good.replacen("v1,", "v2,", 1),
            &body,
            "invalid_signature",
        ),
        forgery(
            "signed for another time",
            ts + 1,
            &good,
            &body,
            "invalid_signature",
        ),
        forgery(
            "timestamp 301 s old",
            ts - 301,
            &app.sign(&id, ts - 301, &body),
            &body,
            "timestamp_too_old",
        ),
        // Further ahead than the 301 s old one is behind: time passes while the requests are
        // sent, which makes an old timestamp older but brings an early one back in tolerance.
        forgery(
            "timestamp 360 s ahead",
            ts + 360,
            &app.sign(&id, ts + 360, &body),
            &body,
            "timestamp_too_new",
        ),
        Forgery {
            id: message_id(),
            ..forgery(
                "signature of another id",
                ts,
                &good,
                &body,
                "invalid_signature",
            )
        },
        Forgery {
            timestamp: "soon".into(),
            ..forgery(
                "timestamp not a number",
                ts,
                &good,
                &body,
                "invalid_timestamp",
            )
        },
    ];
    for forgery in forgeries {
        let headers = [
            ("svix-id", forgery.id),
            ("svix-timestamp", forgery.timestamp),
            ("svix-signature", forgery.signature),
        ];

        let answer = error_code(app.post(&headers, forgery.body).await).await;

        assert_eq!(answer, (401, forgery.code.to_owned()), "{}", forgery.case);
    }
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn body_over_the_limit_is_rejected_with_413() {
    let app = TestApp::spawn_with(|s| s.webhook.max_body_bytes = 1000).await;
    let body = format!(
        r#"{{"type":"stack.test","data":{{"message":"{}"}}}}"#,
        "x".repeat(1000)
    )
    .into_bytes();
    let headers = app.signer.headers_at(&message_id(), now(), &body);

    let answer = error_code(app.post(&headers, body).await).await;

    assert_eq!(answer, (413, "payload_too_large".to_owned()));
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn body_at_the_default_limit_of_one_mib_is_accepted() {
    let app = TestApp::spawn().await;
    let envelope =
        |filler: &str| format!(r#"{{"type":"stack.test","data":{{"message":"{filler}"}}}}"#);
    let overhead = envelope("").len();
    let body = envelope(&"x".repeat(1024 * 1024 - overhead)).into_bytes();
    assert_eq!(body.len(), 1024 * 1024);

    let response = app.deliver(&message_id(), &body).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn standard_webhooks_header_names_are_accepted() {
    let app = TestApp::spawn().await;
    let body = example("team.created").to_string().into_bytes();
    let id = message_id();
    let ts = now();
    let headers = vec![
        ("webhook-id", id.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", app.sign(&id, ts, &body)),
    ];

    let response = app.post(&headers, body).await;

    assert_eq!(response.status(), 200);
    assert_eq!(app.recorded_outcome(&id).await.as_deref(), Some("applied"));
}

#[tokio::test]
async fn old_and_new_secret_both_verify_during_rotation() {
    let new_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let app = TestApp::spawn_with(|s| {
        s.webhook.keys = [crate::support::SECRET, new_secret]
            .map(|secret| SigningKey::from_secret(secret).unwrap())
            .to_vec();
    })
    .await;
    let new_key = Signer::new(new_secret);
    let body = example("team.created").to_string().into_bytes();
    let id = message_id();
    let ts = now();

    let with_old = app.deliver(&message_id(), &body).await;
    let new_headers = new_key.headers_at(&id, ts, &body);
    let with_new = app.post(&new_headers, body).await;

    assert_eq!(
        (with_old.status().as_u16(), with_new.status().as_u16()),
        (200, 200)
    );
}

/// No server is needed to answer a request that never reaches the handler: the router alone.
#[tokio::test]
async fn other_methods_and_paths_are_not_webhooks() {
    let db = TestDb::new().await;
    let router = crate::support::app::router(db.pool.clone());
    let get = Request::get("/webhooks/stack").body(Body::empty()).unwrap();
    let elsewhere = Request::post("/webhooks/other")
        .body(Body::from("{}"))
        .unwrap();

    let get = router.clone().oneshot(get).await.unwrap();
    let elsewhere = router.oneshot(elsewhere).await.unwrap();

    assert_eq!(
        (get.status(), elsewhere.status()),
        (StatusCode::METHOD_NOT_ALLOWED, StatusCode::NOT_FOUND)
    );
    assert_nothing_written_in(&db.pool).await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id_given_or_made() {
    let app = TestApp::spawn().await;
    let body = example("stack.test").to_string().into_bytes();

    let given = app
        .signed_request(&message_id(), &body)
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    let refused = app.post(&[], body).await;

    assert_eq!(given.headers()["x-request-id"], "req-42");
    let made = refused.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
}

#[tokio::test]
async fn an_id_too_long_to_record_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let body = example("user.created").to_string().into_bytes();
    let long_id = format!("msg_{}", "x".repeat(10_000));
    let headers = app.signer.headers(&long_id, &body);

    let answer = error_code(app.post(&headers, body).await).await;

    assert_eq!(answer, (401, "invalid_header".to_owned()));
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn().await;
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = "POST /webhooks/stack HTTP/1.1\r\nhost: test\r\n\
                content-length: 10737418240\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();

    // Well before the 10 s request timeout, and with no byte of the body sent.
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer)).await;
    let read = read
        .expect("an answer without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_nothing_written(&app).await;
}
