//! My Plugin — a BudPipeline plugin in Rust. The `my_plugin` action repeats a text a number of
//! times and reports its length; replace `execute` with your step's work.

use budpipeline_plugin::json::Value;
use budpipeline_plugin::{export_plugin, Action, Call, Failure, Level, Outcome};

/// The parameter checks, shared by `validate_params` and `execute`.
pub fn parameter_errors(params: Option<&Value>) -> Vec<String> {
    let mut errors = Vec::new();
    match params.and_then(|params| params.get("text")).and_then(Value::as_str) {
        Some(text) if !text.is_empty() => {}
        _ => errors.push("text is required".to_string()),
    }
    match params.and_then(|params| params.get("times")) {
        None | Some(Value::Null) => {}
        Some(times) => match times.as_i64() {
            Some(count) if (1..=10).contains(&count) => {}
            _ => errors.push("times must be a whole number from 1 to 10".to_string()),
        },
    }
    errors
}

/// The text repeated `times` times.
pub fn repeated(text: &str, times: i64) -> String {
    text.repeat(times.clamp(1, 10) as usize)
}

fn execute(call: &Call, request: &Value) -> Result<Outcome, Failure> {
    let params = request.get("params");
    if let Some(error) = parameter_errors(params).into_iter().next() {
        return Err(Failure::fatal(&error));
    }
    let text = params.and_then(|params| params.get("text")).and_then(Value::as_str).unwrap_or("");
    let times = params.and_then(|params| params.get("times")).and_then(Value::as_i64).unwrap_or(1);
    let result = repeated(text, times);
    call.log(Level::Info, &format!("repeated the text {} time(s)", times));
    let length = result.chars().count() as i64;
    Ok(Outcome::completed(Value::object(vec![("result", Value::String(result)), ("length", Value::Int(length))])))
}

fn validate(_call: &Call, request: &Value) -> Vec<String> {
    parameter_errors(request.get("params"))
}

static MY_PLUGIN: Action = Action::new(
    r#"{"type":"my_plugin","name":"My Plugin","category":"Custom","description":"Repeats a text a number of times.",
        "icon":"puzzle-piece",
        "params":[{"name":"text","label":"Text","type":"template","required":true,"placeholder":"hello"},
                  {"name":"times","label":"Times","type":"number","default":1,"validation":{"min":1,"max":10}}],
        "outputs":[{"name":"result","type":"string","description":"The repeated text"},
                   {"name":"length","type":"number","description":"Characters in the result"}],
        "examples":[{"title":"Say it twice","params":{"text":"hello","times":2}}]}"#,
    execute,
)
.with_validate_params(validate);

export_plugin!(
    manifest: r#"{"name":"my_plugin","version":"0.1.0","description":"My Plugin for BudPipeline."}"#,
    thread_safe: true,
    actions: [MY_PLUGIN],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_the_text() {
        assert_eq!(repeated("ab", 3), "ababab");
    }

    #[test]
    fn checks_the_parameters() {
        let params = Value::object(vec![("times", Value::Int(11))]);
        assert_eq!(
            parameter_errors(Some(&params)),
            vec!["text is required".to_string(), "times must be a whole number from 1 to 10".to_string()]
        );
    }
}
