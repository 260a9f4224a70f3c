//! A tiny local dashboard receiver for `convlake demo` and tests: it accepts
//! `POST /api/dashboard`, answers 503 to the first `fail_first` requests (to exercise retries),
//! then 200 `{"status":"ok"}`, and remembers what it accepted.
//!
//! Invariants: only accepted (200) requests are recorded, in arrival order; every request,
//! failed or not, is counted; `shutdown` stops the server and waits for it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Path the receiver serves.
pub const RECEIVER_PATH: &str = "/api/dashboard";

/// One request the receiver accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    /// The `Authorization` header as sent (e.g. `Bearer …`), if any.
    pub authorization: Option<String>,
    /// The `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
    /// The JSON body.
    pub body: Value,
}

#[derive(Debug, Default)]
struct Inner {
    fail_first: u32,
    seen: u32,
    received: Vec<ReceivedRequest>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running receiver; stop it with [`Receiver::shutdown`].
#[derive(Debug)]
pub struct Receiver {
    /// Where to POST, e.g. `http://127.0.0.1:PORT/api/dashboard`.
    pub url: String,
    /// Socket address the server is bound to.
    pub addr: SocketAddr,
    state: Shared,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Binds `addr` (port 0 picks a free port) and serves the receiver in a background task.
pub async fn start_receiver(addr: SocketAddr, fail_first: u32) -> std::io::Result<Receiver> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let state: Shared = Arc::new(Mutex::new(Inner {
        fail_first,
        ..Inner::default()
    }));
    let router = Router::new()
        .route(RECEIVER_PATH, post(accept))
        .with_state(state.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, router).with_graceful_shutdown(async {
            // A dropped sender also means stop.
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::error!(addr = %bound, error = %e, "dashboard receiver stopped with an error");
        }
    });
    // Clients cannot connect to an unspecified address; point them at loopback instead.
    let host = if bound.ip().is_unspecified() {
        SocketAddr::new(
            if bound.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            },
            bound.port(),
        )
    } else {
        bound
    };
    let url = format!("http://{host}{RECEIVER_PATH}");
    tracing::info!(%url, fail_first, "dashboard receiver listening");
    Ok(Receiver {
        url,
        addr: bound,
        state,
        stop,
        task,
    })
}

impl Receiver {
    /// The requests accepted so far (200 responses), oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.state).received.clone()
    }

    /// Number of requests that reached the handler, including the ones answered with 503.
    pub fn request_count(&self) -> u32 {
        lock(&self.state).seen
    }

    /// Stops accepting connections and waits for the server task to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "dashboard receiver task failed");
        }
    }
}

/// The state is plain data that stays consistent even if a holder panicked, so a poisoned lock
/// is still safe to use.
fn lock(state: &Shared) -> MutexGuard<'_, Inner> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let mut inner = lock(&state);
    inner.seen += 1;
    if inner.seen <= inner.fail_first {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "simulated outage; retry"})),
        );
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("body is not JSON: {e}")})),
            )
        }
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    inner.received.push(ReceivedRequest {
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        body,
    });
    (StatusCode::OK, Json(json!({"status": "ok"})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_503_then_200_and_records_only_accepted_requests() {
        let receiver = start_receiver("127.0.0.1:0".parse().unwrap(), 1)
            .await
            .unwrap();
        assert!(receiver.url.starts_with("http://127.0.0.1:"));
        assert!(receiver.url.ends_with("/api/dashboard"));
        let client = reqwest::Client::new();
        let first = client
            .post(&receiver.url)
            .json(&json!({"n": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 503);
        let second = client
            .post(&receiver.url)
            .header("Idempotency-Key", "k2")
            .json(&json!({"n": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(second.status(), 200);
        assert_eq!(
            second.json::<Value>().await.unwrap(),
            json!({"status": "ok"})
        );
        let bad = client
            .post(&receiver.url)
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        assert_eq!(receiver.request_count(), 3);
        assert_eq!(
            receiver.received(),
            vec![ReceivedRequest {
                authorization: None,
                idempotency_key: Some("k2".into()),
                body: json!({"n": 2}),
            }]
        );
        let url = receiver.url.clone();
        receiver.shutdown().await;
        assert!(client.post(&url).json(&json!({})).send().await.is_err());
    }
}
