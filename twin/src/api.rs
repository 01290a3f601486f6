//! The HTTP API (`axum`). JSON in and out; errors are `{"error": code, "message": text, ...}`.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /` | this list |
//! | `GET /devices` | `[{"id","received","duplicates","last_boot","version","watermarks":[{"boot","seq"}]}]` |
//! | `GET /devices/{id}/shadow` | `{"device","version","state":{"reported","desired","delta"}}`; 404 if unknown |
//! | `PUT /devices/{id}/shadow/desired` | body `{"version":V,"state":{...}}`: merged into desired if the shadow is at V (null deletes a key); answers the new shadow plus `"published"`; 409 `stale_version` with `"current"` if not at V; 400 for a bad body, a float, a bad id or a desired message over 1024 bytes |
//! | `GET /devices/{id}/telemetry?boot=B&since=S&limit=N` | records by (boot, seq); `since`: seq > S; `limit` default 1000, max 10000 |
//! | `GET /devices/{id}/events?boot=B&since=S&limit=N` | events, the kind's fields flattened: `{"boot","seq","t","kind",...}` |
//! | `GET /stats` | `{"rejected":{reason:n},"rejected_total","counters":{...},"devices","mqtt":{"received","published"}}` |
//!
//! A device is known once an accepted message came from it or desired state was written for
//! it. A desired write for a device never seen is allowed with version 0 (pre-provisioning);
//! the device gets the desired state at its first `state` message.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::Error;
use crate::shadow::{Document, Shadow};
use crate::shared::{blocking, Core};
use crate::store::HistoryQuery;
use crate::wire::valid_device_id;

/// The largest `limit` of a history query.
pub const MAX_LIMIT: u32 = 10_000;

/// The API's routes over the service's shared state.
pub(crate) fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/devices", get(devices))
        .route("/devices/:id/shadow", get(shadow))
        .route("/devices/:id/shadow/desired", put(put_desired))
        .route("/devices/:id/telemetry", get(telemetry))
        .route("/devices/:id/events", get(events))
        .route("/stats", get(stats))
        .with_state(core)
}

/// A shadow as the API shows it.
#[derive(Debug, Serialize)]
pub struct ShadowView<'a> {
    /// Device id.
    pub device: &'a str,
    /// Shadow version.
    pub version: u64,
    /// The documents.
    pub state: StateView<'a>,
}

/// `reported`, `desired` and the computed `delta`.
#[derive(Debug, Serialize)]
pub struct StateView<'a> {
    /// What the device reported.
    pub reported: &'a Document,
    /// What is wanted.
    pub desired: &'a Document,
    /// Keys of desired that differ from reported.
    pub delta: Document,
}

impl<'a> ShadowView<'a> {
    /// The view of a shadow.
    pub fn new(device: &'a str, shadow: &'a Shadow) -> Self {
        ShadowView {
            device,
            version: shadow.version,
            state: StateView { reported: &shadow.reported, desired: &shadow.desired, delta: shadow.delta() },
        }
    }
}

/// An error answer: a status and a JSON body `{"error": code, "message": text, ...}`.
struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Self {
        ApiError { status, body: json!({"error": code, "message": message.to_string()}) }
    }

    fn not_found(id: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_device", format!("no device {id:?}"))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::StaleVersion { ref device, expected, current } => ApiError {
                status: StatusCode::CONFLICT,
                body: json!({
                    "error": "stale_version",
                    "message": e.to_string(),
                    "device": device,
                    "expected": expected,
                    "current": current,
                }),
            },
            Error::InvalidDeviceId { .. } => ApiError::new(StatusCode::BAD_REQUEST, "invalid_device_id", e),
            Error::InvalidDesired { .. } => ApiError::new(StatusCode::BAD_REQUEST, "invalid_desired", e),
            other => {
                tracing::error!(target: "twin", error = %other, "HTTP request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", other)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn check_id(id: &str) -> Result<(), ApiError> {
    if valid_device_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidDeviceId { device: id.to_owned() }.into())
    }
}

async fn index() -> Json<Value> {
    Json(json!({
        "service": "twinbed-twin",
        "endpoints": [
            "GET /devices",
            "GET /devices/{id}/shadow",
            "PUT /devices/{id}/shadow/desired  {\"version\":V,\"state\":{...}}",
            "GET /devices/{id}/telemetry?boot=B&since=S&limit=N",
            "GET /devices/{id}/events?boot=B&since=S&limit=N",
            "GET /stats",
        ]
    }))
}

async fn devices(State(core): State<Arc<Core>>) -> ApiResult {
    let devices = blocking(move || core.query(|s| s.devices())).await?;
    Ok(Json(devices).into_response())
}

async fn shadow(State(core): State<Arc<Core>>, Path(id): Path<String>) -> ApiResult {
    check_id(&id)?;
    let id2 = id.clone();
    let found = blocking(move || {
        core.query(|s| {
            Ok(match s.shadow(&id2)? {
                Some(sh) => Some(sh),
                None if s.device_exists(&id2)? => Some(Shadow::default()),
                None => None,
            })
        })
    })
    .await?;
    match found {
        Some(sh) => Ok(Json(ShadowView::new(&id, &sh)).into_response()),
        None => Err(ApiError::not_found(&id)),
    }
}

/// The body of `PUT /devices/{id}/shadow/desired`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DesiredBody {
    version: u64,
    state: Value,
}

async fn put_desired(State(core): State<Arc<Core>>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    check_id(&id)?;
    let body: DesiredBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("expected {{\"version\":V,\"state\":{{...}}}}: {e}"),
        )
    })?;
    let id2 = id.clone();
    let outcome = blocking(move || core.set_desired(&id2, body.version, &body.state)).await?;
    let mut view = serde_json::to_value(ShadowView::new(&id, &outcome.shadow)).unwrap_or_default();
    if let Some(obj) = view.as_object_mut() {
        obj.insert("published".into(), outcome.publish.is_some().into());
    }
    Ok(Json(view).into_response())
}

/// Query parameters of the history endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    boot: Option<u32>,
    since: Option<u32>,
    limit: Option<u32>,
}

fn history_query(params: Result<Query<HistoryParams>, QueryRejection>) -> Result<HistoryQuery, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let limit = p.limit.unwrap_or(HistoryQuery::default().limit);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("limit must be 1..={MAX_LIMIT}"),
        ));
    }
    Ok(HistoryQuery { boot: p.boot, since: p.since, limit })
}

async fn telemetry(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult {
    history(core, id, params, |s, id, q| Ok(serde_json::to_value(s.telemetry(id, q)?).unwrap_or_default()))
        .await
}

async fn events(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult {
    history(core, id, params, |s, id, q| Ok(serde_json::to_value(s.events(id, q)?).unwrap_or_default())).await
}

type HistoryFn = fn(&mut dyn crate::Store, &str, &HistoryQuery) -> Result<Value, crate::StoreError>;

async fn history(
    core: Arc<Core>,
    id: String,
    params: Result<Query<HistoryParams>, QueryRejection>,
    f: HistoryFn,
) -> ApiResult {
    check_id(&id)?;
    let q = history_query(params)?;
    let id2 = id.clone();
    let rows = blocking(move || {
        core.query(|s| if s.device_exists(&id2)? { Ok(Some(f(s, &id2, &q)?)) } else { Ok(None) })
    })
    .await?;
    match rows {
        Some(rows) => Ok(Json(rows).into_response()),
        None => Err(ApiError::not_found(&id)),
    }
}

async fn stats(State(core): State<Arc<Core>>) -> ApiResult {
    let traffic = core.traffic().snapshot().totals();
    let stats = blocking(move || core.query(|s| s.stats())).await?;
    let mut v = serde_json::to_value(stats).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("mqtt".into(), serde_json::to_value(traffic).unwrap_or_default());
    }
    Ok(Json(v).into_response())
}
