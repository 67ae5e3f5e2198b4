//! `stack-sync trigger`: sends realistic, signed Stack events to a running service, as Stack
//! would through Svix, so that one can see rows appear before wiring the dashboard. Events come
//! from the samples, with fresh ids that chain within a scenario; each is signed with the
//! configured webhook secret under a fresh Svix-style message id.

mod events;
mod scenarios;

use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

pub use events::parse_set;
pub use scenarios::{Delivery, Scenario};

use crate::samples;
use crate::signature::SigningKey;
use events::{Maker, ids_of};

/// What to send.
#[derive(Debug)]
pub enum Plan {
    /// `count` events of one type, each with fresh ids and `set` applied to its `data`.
    Events {
        event_type: String,
        count: u32,
        set: Vec<(String, Value)>,
    },
    Scenario(Scenario),
}

/// Why sending stopped.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(
        "no sample of {0:?}; event types: {types}",
        types = samples::event_types().collect::<Vec<_>>().join(", ")
    )]
    UnknownEventType(String),
    #[error("could not reach {url}: {reason}; is `stack-sync serve` running there?")]
    Unreachable { url: String, reason: String },
    #[error(
        "{url} refused the signature (401 {code}): trigger signs with webhook.secret \
         (STACK_WEBHOOK_SECRET), which must be the secret the service there is configured with"
    )]
    WrongSecret { url: String, code: String },
    #[error("{url} answered {status} {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

/// One delivery sent, and the service's answer (`applied`, `duplicate`, …).
#[derive(Debug)]
pub struct Sent {
    pub event_type: String,
    pub svix_id: String,
    /// The ids the event names: `user=… team=… permission=…`.
    pub ids: String,
    pub status: String,
}

/// The deliveries of `plan`; the same ids and order for the same `seed`.
pub fn deliveries(plan: &Plan, seed: Option<u64>) -> Result<Vec<Delivery>, TriggerError> {
    let rng = match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let mut maker = Maker::new(rng);
    match plan {
        Plan::Scenario(scenario) => Ok(scenario.deliveries(&mut maker)),
        Plan::Events {
            event_type,
            count,
            set,
        } => {
            let mut events = Vec::new();
            for _ in 0..*count {
                let mut event = maker
                    .fresh(event_type)
                    .ok_or_else(|| TriggerError::UnknownEventType(event_type.clone()))?;
                for (field, value) in set {
                    event["data"][field] = value.clone();
                }
                events.push(event);
            }
            Ok(scenarios::in_order(events))
        }
    }
}

/// Sends `deliveries` to `url` one after the other, signed with `key`, reporting each answer;
/// stops at the first that is not 2xx.
pub async fn send(
    url: &str,
    key: &SigningKey,
    deliveries: &[Delivery],
    mut report: impl FnMut(&Sent),
) -> Result<(), TriggerError> {
    let client = reqwest::Client::new();
    for delivery in deliveries {
        let body = delivery.event.to_string();
        let timestamp = unix_now();
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("svix-id", &delivery.svix_id)
            .header("svix-timestamp", timestamp.to_string())
            .header(
                "svix-signature",
                key.signature_header(&delivery.svix_id, timestamp, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|err| TriggerError::Unreachable {
                url: url.to_owned(),
                reason: root_cause(&err),
            })?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            200..=299 => report(&Sent {
                event_type: delivery.event["type"].as_str().unwrap_or("-").to_owned(),
                svix_id: delivery.svix_id.clone(),
                ids: ids_of(&delivery.event),
                status: answer["status"].as_str().unwrap_or("?").to_owned(),
            }),
            401 => {
                return Err(TriggerError::WrongSecret {
                    url: url.to_owned(),
                    code: answer["error"].as_str().unwrap_or("?").to_owned(),
                });
            }
            _ => {
                return Err(TriggerError::Refused {
                    url: url.to_owned(),
                    status,
                    body: answer.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn unix_now() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

/// The innermost cause of a request error, e.g. "Connection refused (os error 111)".
fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
