//! Example plugin in Rust. Actions:
//!
//! - `word_count`: counts the words of `params.text` (`validate_params` requires it); with
//!   `params.wait_for` it waits for an event carrying that workflow id and completes with the
//!   event's `count`.
//! - `rust_panic`: panics, to show that the panic fails only its call (FATAL_ERROR, `panicked: …`).

use budpipeline_plugin::json::Value;
use budpipeline_plugin::{export_plugin, Action, Call, EventOutcome, Failure, Level, Outcome};

fn params(request: &Value) -> Option<&Value> {
    request.get("params")
}

fn count(call: &Call, request: &Value) -> Result<Outcome, Failure> {
    let text = params(request)
        .and_then(|params| params.get("text"))
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::fatal("text is required"))?;
    let words = text.split_whitespace().count() as i64;
    call.log(Level::Info, &format!("counted {} words", words));
    call.report_progress(Some(100.0), None, Some("counted"));
    let outputs = Value::object(vec![("words", Value::Int(words)), ("user_id", request.get("user_id").cloned().unwrap_or(Value::Null))]);
    match params(request).and_then(|params| params.get("wait_for")).and_then(Value::as_str) {
        Some(id) => Ok(Outcome::AwaitEvent { outputs, external_workflow_id: id.to_string(), timeout_seconds: Some(600) }),
        None => Ok(Outcome::completed(outputs)),
    }
}

fn on_event(_call: &Call, request: &Value) -> Result<EventOutcome, Failure> {
    let event = request.get("event");
    match event.and_then(|event| event.get("count")).and_then(Value::as_i64) {
        Some(count) => Ok(EventOutcome::Complete {
            status: "COMPLETED".to_string(),
            outputs: Value::object(vec![("event_count", Value::Int(count))]),
            error: None,
        }),
        None => Ok(EventOutcome::Ignore),
    }
}

fn validate(_call: &Call, request: &Value) -> Vec<String> {
    match params(request).and_then(|params| params.get("text")) {
        Some(Value::String(_)) => Vec::new(),
        Some(_) => vec!["text must be a string".to_string()],
        None => vec!["text is required".to_string()],
    }
}

fn panic_now(_call: &Call, _request: &Value) -> Result<Outcome, Failure> {
    let numbers: Vec<i64> = Vec::new();
    panic!("no number at index {}: {:?}", 3, numbers.get(3));
}

static WORD_COUNT: Action = Action::new(
    r#"{"type":"word_count","name":"Word Count","category":"Text","description":"Counts the words of a text (Rust).",
        "params":[{"name":"text","label":"Text","type":"string","required":true},
                  {"name":"wait_for","label":"Wait for","type":"string","required":false}],
        "outputs":[{"name":"words","type":"number"}],
        "examples":[{"title":"Three words","params":{"text":"one two three"}}]}"#,
    count,
)
.with_on_event(on_event)
.with_validate_params(validate);

static RUST_PANIC: Action = Action::new(
    r#"{"type":"rust_panic","name":"Panic","category":"Fixtures","description":"Panics (Rust)."}"#,
    panic_now,
);

export_plugin!(
    manifest: r#"{"name":"word_count","version":"1.0.0","description":"Word count, written in Rust."}"#,
    thread_safe: true,
    actions: [WORD_COUNT, RUST_PANIC],
);
