//! `stack-sync healthcheck`: asks a running service whether it is ready, for container health
//! checks in images that have no curl.

use std::time::Duration;

/// How long the whole check may take; container runtimes give a health check a few seconds.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Why the service is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("{url} is not ready: HTTP {status}")]
    NotReady { url: String, status: u16 },
    #[error("{url} did not answer: {reason}")]
    NoAnswer { url: String, reason: String },
}

/// Succeeds when `url` answers 2xx within the timeout.
pub async fn check(url: &str) -> Result<(), Unhealthy> {
    let no_answer = |reason: String| Unhealthy::NoAnswer {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|err| no_answer(err.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|err| no_answer(err.to_string()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(Unhealthy::NotReady {
            url: url.to_owned(),
            status: response.status().as_u16(),
        })
    }
}
