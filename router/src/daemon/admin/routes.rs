//! The routes: `/healthz`, `/readyz`, `/metrics`, `/endpoints`, `/endpoints/NAME`, `/routes`,
//! `POST /reload`, `GET /dead-letters`,
//! `GET /dead-letters/ID`, `POST /dead-letters/ID/replay`, `POST /dead-letters/ID/drop`,
//! `GET /trace`.
//!
//! Work that touches files or waits for the control thread runs on the runtime's blocking
//! threads, so one slow request never holds up the others.
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;

use super::{endpoints, in_force, ready, scrape, trace as trace_answer, AdminRequest};
use crate::daemon::reload::ReloadOutcome;
use crate::deadletter::{json, DeadLetterId, DeadLetterStore};
use crate::metrics::{exposition, Metrics};
use crate::shard::Routing;
use crate::wal::DiskBudget;

/// What the routes work with.
#[derive(Clone)]
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub routing: Arc<Mutex<Arc<Routing>>>,
    /// The write-ahead log's disk budget, for `/metrics`.
    pub log_budget: Arc<DiskBudget>,
    pub dead_letters: Arc<DeadLetterStore>,
    pub requests: Sender<AdminRequest>,
    /// `None` when `[trace] enabled = false`, or the index could not be opened at start-up.
    pub trace: Option<super::TraceLookup>,
}

/// How long a request waits for the control thread to reload or replay.
const CONTROL_WAIT: Duration = Duration::from_secs(60);

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(super::page::status_page))
        .route("/shards", get(super::shards::answer))
        .route("/healthz", get(|| async { reply(200, "ok\n".into()) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/endpoints", get(endpoints))
        .route("/endpoints/{name}", get(endpoint))
        .route("/routes", get(routes_in_force))
        .route("/reload", post(reload))
        .route("/dead-letters", get(list))
        .route("/dead-letters/{*rest}", any(dead_letter))
        .route("/trace", get(trace))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(shared)
}

/// The response: JSON when the body is a JSON object, Prometheus' text format otherwise.
/// Never cached (a dead letter is patient data; every other answer is of the moment) and never
/// sniffed into something a browser would run.
pub fn reply(status: u16, body: String) -> Response {
    let content_type = if body.starts_with('{') {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    reply_as(status, content_type, body)
}

/// An answer of the given content type.
pub fn reply_as(status: u16, content_type: &str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (status, headers, body).into_response()
}

async fn not_found() -> Response {
    reply(404, "not found\n".into())
}

/// Runs `work` on a blocking thread and answers with what it returns.
async fn blocking(work: impl FnOnce() -> (u16, String) + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok((status, body)) => reply(status, body),
        Err(e) => reply(500, format!("the request failed: {e}\n")),
    }
}

impl Shared {
    /// The routing in force (the control thread swaps it at every reload).
    pub(super) fn current(&self) -> Arc<Routing> {
        Arc::clone(&self.routing.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn readyz(State(s): State<Shared>) -> Response {
    let (status, body) = ready::answer(&ready::reasons(&s.metrics, &s.current()));
    reply(status, body)
}

async fn endpoints(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = match endpoints::Query::parse(query.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(why) => return reply(400, why + "\n"),
    };
    let body = endpoints::list(&s.current(), query, SystemTime::now());
    reply(200, body.to_string() + "\n")
}

async fn endpoint(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    match endpoints::one(&s.current(), &name, SystemTime::now()) {
        Some(body) => reply(200, body.to_string() + "\n"),
        None => reply(404, format!("no endpoint named `{name}`\n")),
    }
}

async fn routes_in_force(State(s): State<Shared>) -> Response {
    reply(200, in_force::describe(&s.current()).to_string() + "\n")
}

/// OpenMetrics text, written on a blocking thread: with `?per_endpoint=1` at 28,000 endpoints
/// it is megabytes, and other admin requests should not wait behind it.
async fn metrics(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let options = match scrape::Options::parse(query.as_deref().unwrap_or("")) {
        Ok(options) => options,
        Err(why) => return reply(400, format!("{why}\n")),
    };
    let current = s.current();
    let work = move || scrape::text(&s.metrics, &current, &s.log_budget, options);
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(body)) => reply_as(200, exposition::CONTENT_TYPE, body),
        Ok(Err(_)) => reply(500, "the metrics could not be written\n".into()),
        Err(e) => reply(500, format!("the request failed: {e}\n")),
    }
}

async fn reload(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let (allow_empty, as_json) = match reload_query(query.as_deref().unwrap_or("")) {
        Ok(asked) => asked,
        Err(why) => return reply(400, why),
    };
    blocking(move || {
        let (reply, outcome) = mpsc::channel();
        let _ = s.requests.send(AdminRequest::Reload { allow_empty, reply });
        let Ok(outcome) = outcome.recv_timeout(CONTROL_WAIT) else {
            return (503, "the router did not answer in time\n".to_string());
        };
        // 200 applied, 422 the file has errors, 409 refused (it would empty the router, or
        // needs a restart), 500 a shard could not take it or did not confirm.
        let status = match outcome {
            ReloadOutcome::Applied(_) => 200,
            ReloadOutcome::Invalid(_) => 422,
            ReloadOutcome::Refused(_) => 409,
            ReloadOutcome::Aborted(_) | ReloadOutcome::Unconfirmed(_) => 500,
        };
        let body = if as_json {
            format!("{}\n", outcome.to_json())
        } else {
            format!("{outcome}\n")
        };
        (status, body)
    })
    .await
}

/// `allow_empty=1` (or `true`) and `format=json` (or `text`), or nothing: whether to allow
/// an empty router, and whether to answer in JSON.
fn reload_query(query: &str) -> Result<(bool, bool), String> {
    let mut allow_empty = false;
    let mut as_json = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "1")) {
            ("allow_empty", "1" | "true") => allow_empty = true,
            ("allow_empty", "0" | "false") => allow_empty = false,
            ("format", "json") => as_json = true,
            ("format", "text") => as_json = false,
            _ => {
                return Err(format!(
                    "unknown reload parameter `{pair}`: allow_empty=1 and format=json are \
                     the ones there are\n"
                ))
            }
        }
    }
    Ok((allow_empty, as_json))
}

/// Where messages are: `?id=`, `?patient=`, `?from=&to=` (see `trace`).
async fn trace(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let Some(lookup) = s.trace.clone() else {
        return reply(
            404,
            "the message trace is not running here: [trace] enabled = false, or its index \
             could not be opened at start-up (the router's log says why)\n"
                .into(),
        );
    };
    let now = SystemTime::now();
    let (query, limit) = match trace_answer::parse(query.as_deref().unwrap_or(""), now) {
        Ok(parsed) => parsed,
        Err(why) => return reply(400, why + "\n"),
    };
    blocking(
        move || match crate::trace::query::run(&lookup.index, &lookup.key, &query, limit) {
            Ok((found, more)) => {
                let body = trace_answer::answer(&found, more, &s.current(), &s.dead_letters, now);
                (200, body.to_string() + "\n")
            }
            Err(e) => (500, format!("the trace index cannot be read: {e}\n")),
        },
    )
    .await
}

/// Every dead letter, one JSON object per line, oldest first.
async fn list(State(s): State<Shared>) -> Response {
    blocking(move || match s.dead_letters.list() {
        Ok(entries) => {
            let mut body = String::new();
            for summary in entries.into_iter().flatten() {
                body.push_str(&json::summary_json(&summary).to_string());
                body.push('\n');
            }
            (200, body)
        }
        Err(e) => (500, format!("{e}\n")),
    })
    .await
}

/// `GET ID`, `POST ID/replay`, `POST ID/drop`.
async fn dead_letter(
    method: Method,
    State(s): State<Shared>,
    Path(rest): Path<String>,
) -> Response {
    blocking(move || {
        let (raw_id, action) = rest.split_once('/').unwrap_or((&rest, ""));
        let id = match DeadLetterId::parse(raw_id) {
            Ok(id) => id,
            Err(e) => return (400, format!("{e}\n")),
        };
        match (method.as_str(), action) {
            ("GET", "") => match s.dead_letters.show(&id) {
                Ok((letter, state)) => (200, json::letter_json(&letter, state).to_string() + "\n"),
                Err(e) => (404, format!("{e}\n")),
            },
            ("POST", "drop") => match s.dead_letters.remove(&id) {
                Ok(()) => (200, format!("dropped {id}\n")),
                Err(e) => (404, format!("{e}\n")),
            },
            ("POST", "replay") => {
                let (reply, outcome) = mpsc::channel();
                let _ = s.requests.send(AdminRequest::Replay { id, reply });
                match outcome.recv_timeout(CONTROL_WAIT) {
                    Ok(Ok(said)) => (200, said + "\n"),
                    Ok(Err(why)) => (409, why + "\n"),
                    Err(_) => (503, "the router did not answer in time\n".to_string()),
                }
            }
            _ => (404, "not found\n".to_string()),
        }
    })
    .await
}
