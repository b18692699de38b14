//! `train-host serve`: the web demo's server. It serves `web/` (with the wasm client built into
//! `web/pkg`) and the evaluation API, on 127.0.0.1 by default.
//!
//! The server never holds a secret: a session is a client's compressed *server* key (public
//! evaluation keys), expanded once; each classification takes an encrypted image and streams
//! back progress, then the encrypted result, which only the client can decrypt.
//!
//! API (errors are `{"error": "…"}` with a 4xx/5xx status):
//! - `GET /api/info`: the model, its labels, the parameter set the page should use, limits;
//! - `GET /api/model`: the compiled model (the page's simulator and client run the same file);
//! - `GET /api/models/{i}`: model `i` of `/api/info`'s `models` (0 is the one above), whose
//!   accuracy the page can measure with its simulator;
//! - `GET /api/samples`: some CIFAR test images (RGB planes) with their labels;
//! - `GET /api/test-set[?offset=K][&limit=N]`: CIFAR test images `K` to `K + N` (default: all),
//!   for the page to measure the model's accuracy with its own simulator: one record per image,
//!   its label byte then its RGB planes (the model's input), as in the official CIFAR-10 files;
//! - `POST /api/sessions` (body: compressed server key) → `{"session", "key_id", "params", …}`;
//! - `POST /api/sessions/{id}/classify` (body: encrypted image) → NDJSON lines
//!   `{"event":"progress","stage","done","total"}`…, then `{"event":"done","result":<base64>,…}`
//!   or `{"event":"error","message"}`;
//! - `DELETE /api/sessions/{id}`: drops the server key. Idle sessions are dropped after a timeout.
use crate::cifar;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use cifhe_core::fhe::{CompressedServerKey, EncryptedImage, Evaluator, ParamSet, Plan, ServerKey};
use cifhe_core::Model;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::services::ServeDir;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The compiled model clients classify with.
    pub model: PathBuf,
    /// CIFAR data for the sample images (`None` or unreadable: no samples, uploads only).
    pub data: Option<PathBuf>,
    /// Folder of the static page (`web/`).
    pub web_root: PathBuf,
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Parameter set the page uses.
    pub params: ParamSet,
    /// Sessions (server keys) held at once; each expanded 2_2 key takes about 120 MB.
    pub max_sessions: usize,
    /// A session unused this long is dropped.
    pub idle_timeout: Duration,
    /// Largest compressed server key accepted, in bytes.
    pub key_limit: usize,
    /// Sample images offered by the page.
    pub samples: usize,
    /// Further compiled models whose accuracy the page can measure (simulation only: encrypted
    /// runs use `model`); they classify the same CIFAR as `model`.
    pub accuracy_models: Vec<PathBuf>,
}

/// Largest encrypted image accepted: one seeded ciphertext (a body) per input value.
const IMAGE_LIMIT: usize = 4 << 20;

struct Session {
    key: Arc<ServerKey>,
    plan: Plan,
    last_used: Instant,
}

struct App {
    /// Bootstraps per image under `cfg.params`, from the plan checked at start-up.
    bootstraps: u64,
    /// The served model, then the accuracy models: (model, file).
    models: Vec<(Model<'static>, &'static [u8])>,
    samples: serde_json::Value,
    /// The test set as `/api/test-set` sends it (empty without data).
    test_set: Bytes,
    cfg: ServeConfig,
    sessions: Mutex<HashMap<String, Session>>,
}

impl App {
    /// The served model: the one encrypted runs classify with.
    fn model(&self) -> &Model<'static> {
        &self.models[0].0
    }
}

/// An API error: a status and a message for the page.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(e: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}

/// Loads the models and test images and checks the page is built: every error a user can fix is
/// reported before the server starts.
fn prepare(cfg: ServeConfig) -> Result<App, String> {
    let (mut models, mut bootstraps) = (Vec::new(), 0);
    for path in std::iter::once(&cfg.model).chain(&cfg.accuracy_models) {
        let bytes: &'static [u8] = Box::leak(crate::model_file::read(path)?.into_boxed_slice());
        let model = crate::model_file::open(path, bytes)?;
        let plan = Plan::for_model(&model, cfg.params).map_err(|e| format!("{} under {}: {e}", path.display(), cfg.params.name()))?;
        match models.first() {
            // The served model: its encrypted runs cost this many bootstraps.
            None => bootstraps = plan.bootstraps(&model),
            Some((served, _)) => {
                let shape = |m: &Model<'_>| (m.classes(), m.image_len());
                if shape(served) != shape(&model) {
                    let ((c, n), (served_c, served_n)) = (shape(&model), shape(served));
                    return Err(format!(
                        "{}: {c} classes of {n}-byte images, where the served model has {served_c} of {served_n}: the page measures them on one test set",
                        path.display()
                    ));
                }
            }
        }
        models.push((model, bytes));
    }
    let model = &models[0].0;
    let glue = cfg.web_root.join("pkg").join("cifhe_wasm.js");
    if !glue.exists() {
        return Err(format!("{} is missing: build the browser client first with `wasm-pack build wasm --target web --out-dir ../web/pkg`", glue.display()));
    }
    let data = cfg.data.as_ref().and_then(|dir| {
        cifar::test_set_for(model, dir, None).map_err(|e| eprintln!("warning: no test images ({e}); the page still classifies uploaded images")).ok()
    });
    let (samples, test_set) = match data {
        Some(ds) => {
            let samples = (0..ds.len().min(cfg.samples)).map(|i| json!({ "index": i, "label": ds.labels[i], "planes": ds.image(i) })).collect();
            (samples, Bytes::from(ds.records()))
        }
        None => (json!([]), Bytes::new()),
    };
    Ok(App { bootstraps, models, samples, test_set, cfg, sessions: Mutex::new(HashMap::new()) })
}

/// Binds `cfg.addr` and serves until the process ends; prints the address first.
pub fn run(cfg: ServeConfig) -> Result<(), String> {
    let app = prepare(cfg)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(app.cfg.addr).await.map_err(|e| format!("cannot listen on {}: {e}", app.cfg.addr))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("cifhe demo: open http://{addr}/ (model {}, parameters {})", app.model().file().name, app.cfg.params);
        serve(app, listener).await
    })
}

/// Starts the server on a background thread and returns its address (port 0: any free port).
/// For tests and embedding.
pub fn spawn(cfg: ServeConfig) -> Result<SocketAddr, String> {
    let app = prepare(cfg)?;
    let rt = runtime()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(app.cfg.addr)).map_err(|e| format!("cannot listen on {}: {e}", app.cfg.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || rt.block_on(serve(app, listener)));
    Ok(addr)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())
}

async fn serve(app: App, listener: tokio::net::TcpListener) -> Result<(), String> {
    let app = Arc::new(app);
    tokio::spawn(expire_idle_sessions(app.clone()));
    let key_limit = app.cfg.key_limit;
    let router = Router::new()
        .route("/api/info", get(info))
        .route("/api/model", get(model_file))
        .route("/api/models/{i}", get(model_by_index))
        .route("/api/samples", get(samples))
        .route("/api/test-set", get(test_set))
        .route("/api/sessions", post(create_session).layer(DefaultBodyLimit::max(key_limit)))
        .route("/api/sessions/{id}", axum::routing::delete(delete_session))
        .route("/api/sessions/{id}/classify", post(classify).layer(DefaultBodyLimit::max(IMAGE_LIMIT)))
        .fallback_service(ServeDir::new(&app.cfg.web_root))
        .with_state(app);
    axum::serve(listener, router).await.map_err(|e| e.to_string())
}

async fn expire_idle_sessions(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let timeout = app.cfg.idle_timeout;
        app.sessions.lock().unwrap().retain(|_, s| s.last_used.elapsed() < timeout);
    }
}

async fn info(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let m = app.model();
    let labels: Vec<String> = (0..m.classes()).map(|k| m.class_name(k)).collect();
    Json(json!({
        "model": m.file().name,
        "description": m.file().description,
        "labels": labels,
        // `CIFAR-10` or `CIFAR-100` by the model's classes (what its test images are), else null.
        "dataset": crate::cifar::Kind::for_classes(m.classes()).map(|k| k.to_string()),
        "params": app.cfg.params.name(),
        "rounding_bits": m.rounding_bits(),
        "bootstraps": app.bootstraps,
        "threads": rayon::current_num_threads(),
        "key_limit": app.cfg.key_limit,
        "max_sessions": app.cfg.max_sessions,
        "idle_timeout_seconds": app.cfg.idle_timeout.as_secs(),
        "models": app.models.iter().map(|(m, _)| json!({ "name": m.file().name, "description": m.file().description })).collect::<Vec<_>>(),
    }))
}

async fn model_file(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/octet-stream")], app.models[0].1)
}

async fn model_by_index(State(app): State<Arc<App>>, Path(i): Path<usize>) -> Result<impl IntoResponse, ApiError> {
    let (_, bytes) = app.models.get(i).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no model {i}: the server has {}", app.models.len())))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], *bytes))
}

async fn samples(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.samples.clone())
}

#[derive(serde::Deserialize)]
struct TestSetQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn test_set(State(app): State<Arc<App>>, Query(q): Query<TestSetQuery>) -> Result<impl IntoResponse, ApiError> {
    if app.test_set.is_empty() {
        return Err(ApiError(StatusCode::NOT_FOUND, "the server was started without CIFAR data (--data)".into()));
    }
    let record = 1 + app.model().image_len();
    let all = app.test_set.len();
    let start = q.offset.unwrap_or(0).saturating_mul(record).min(all);
    let end = q.limit.map_or(all, |n| start.saturating_add(n.saturating_mul(record)).min(all));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], app.test_set.slice(start..end)))
}

/// Parses and expands a client's server key (on a blocking thread: about a second) and opens a
/// session for it.
async fn create_session(State(app): State<Arc<App>>, body: Bytes) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if app.sessions.lock().unwrap().len() >= app.cfg.max_sessions {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("the server holds {} sessions already; try again later", app.cfg.max_sessions)));
    }
    let limit = app.cfg.key_limit;
    let key = CompressedServerKey::from_bytes(&body, limit).map_err(bad_request)?;
    let plan = Plan::for_model(app.model(), key.params()).map_err(bad_request)?;
    let t = Instant::now();
    let key = tokio::task::spawn_blocking(move || key.expand()).await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let expand_seconds = t.elapsed().as_secs_f64();
    let id = session_id();
    let reply = json!({
        "session": id,
        "key_id": key.id().to_string(),
        "params": key.params().name(),
        "bootstraps": plan.bootstraps(app.model()),
        "expand_seconds": expand_seconds,
        "key_bytes": body.len(),
    });
    app.sessions.lock().unwrap().insert(id, Session { key: Arc::new(key), plan, last_used: Instant::now() });
    Ok((StatusCode::CREATED, Json(reply)))
}

/// An unguessable session id, from tfhe-rs's seeder (the OS's or the CPU's entropy).
fn session_id() -> String {
    format!("{:032x}", tfhe::core_crypto::prelude::new_seeder().seed().0)
}

async fn delete_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> StatusCode {
    match app.sessions.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

/// Runs the circuit on an encrypted image, streaming NDJSON progress and then the result.
async fn classify(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let (key, plan) = {
        let mut sessions = app.sessions.lock().unwrap();
        let s = sessions.get_mut(&id).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no session {id}: it ended or timed out")))?;
        s.last_used = Instant::now();
        (s.key.clone(), s.plan.clone())
    };
    let image = EncryptedImage::from_bytes(&body, IMAGE_LIMIT).map_err(bad_request)?;
    Evaluator::new(&key, app.model(), plan.clone()).and_then(|eval| eval.check_image(&image)).map_err(bad_request)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let send = move |v: serde_json::Value| {
        // A closed page is not an error: the work finishes and is dropped.
        let _ = tx.send(format!("{v}\n"));
    };
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let outcome = Evaluator::new(&key, app2.model(), plan)
            .and_then(|eval| eval.run(&image, &|stage, done, total| send(json!({ "event": "progress", "stage": stage, "done": done, "total": total }))));
        match outcome {
            Ok(out) => {
                let bytes = out.to_bytes();
                let result = base64::engine::general_purpose::STANDARD.encode(&bytes);
                send(json!({ "event": "done", "seconds": t.elapsed().as_secs_f64(), "result_bytes": bytes.len(), "result": result }));
            }
            Err(e) => send(json!({ "event": "error", "message": e.to_string() })),
        }
        if let Some(s) = app2.sessions.lock().unwrap().get_mut(&id) {
            s.last_used = Instant::now();
        }
    });
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
    let stream = tokio_stream::StreamExt::map(stream, Ok::<_, std::convert::Infallible>);
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}
