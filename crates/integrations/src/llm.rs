//! An OpenAI-compatible Chat Completions client (`POST {LLM_BASE_URL}/chat/completions` with
//! `Authorization: Bearer {LLM_API_KEY}`): messages, function tools, the tool calls the model
//! asks for, and its token usage. A timeout, 429 or 5xx is retried once (`crate::retry`).

use std::time::Duration;

use otto_runtime::config::Secret;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::retry::{Endpoint, RetryPolicy, from_failure, send_for_text};

#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl LlmSettings {
    /// `None` without `LLM_BASE_URL`.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let llm = &config.integrations.llm;
        Some(Self {
            base_url: llm.base_url.clone()?,
            api_key: llm.api_key.clone(),
            model: llm.model.clone(),
            timeout: llm.timeout,
            retry: RetryPolicy {
                max_retries: 1,
                base: Duration::from_millis(200),
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the model could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("the model answered something that is not a chat completion: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the model answered no choice")]
    Empty,
}

from_failure!(LlmError);

/// A function the model asked to call; `arguments` is a JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionCall,
}

/// One chat message (`system`, `user`, `assistant` with optional tool calls, or `tool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn text(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            content: Some(content.into()),
            tool_calls: None,
            tool_call_id: None,
        }
    }

    /// The answer to tool call `id`.
    pub fn tool_result(id: &str, content: &Value) -> Self {
        Self {
            role: "tool".to_owned(),
            content: Some(content.to_string()),
            tool_calls: None,
            tool_call_id: Some(id.to_owned()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub message: ChatMessage,
    pub usage: Usage,
    pub model: String,
}

#[derive(Deserialize)]
struct Choice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct CompletionAnswer {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Usage,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    settings: LlmSettings,
}

impl LlmClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// One completion of `messages`, offering `tools` (function definitions).
    ///
    /// # Errors
    /// See [`LlmError`].
    pub async fn chat(
        &self,
        messages: &[ChatMessage],
        tools: &[Value],
    ) -> Result<Completion, LlmError> {
        let mut body = serde_json::json!({
            "model": self.settings.model, "messages": messages, "temperature": 0,
        });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools.to_vec());
            body["tool_choice"] = Value::String("auto".to_owned());
        }
        self.complete(body).await
    }

    /// One completion constrained to the JSON `schema` (`response_format: json_schema`,
    /// strict). The answer's content is the JSON text; the caller still validates it.
    ///
    /// # Errors
    /// See [`LlmError`].
    pub async fn chat_json(
        &self,
        messages: &[ChatMessage],
        name: &str,
        schema: &Value,
    ) -> Result<Completion, LlmError> {
        let body = serde_json::json!({
            "model": self.settings.model, "messages": messages, "temperature": 0,
            "response_format": {"type": "json_schema",
                "json_schema": {"name": name, "strict": true, "schema": schema}},
        });
        self.complete(body).await
    }

    async fn complete(&self, body: Value) -> Result<Completion, LlmError> {
        let url = format!("{}/chat/completions", self.settings.base_url);
        let endpoint = Endpoint {
            provider: "llm",
            name: "chat_completions",
            method: &Method::POST,
        };
        let text = send_for_text(endpoint, self.settings.retry, || {
            let request = self.http.post(&url).json(&body);
            match &self.settings.api_key {
                Some(key) => request.bearer_auth(key.expose()),
                None => request,
            }
        })
        .await?;
        let answer: CompletionAnswer = serde_json::from_str(&text)?;
        let message = answer
            .choices
            .into_iter()
            .next()
            .ok_or(LlmError::Empty)?
            .message;
        Ok(Completion {
            message,
            usage: answer.usage,
            model: answer.model.unwrap_or_else(|| self.settings.model.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn client(server: &MockServer, timeout: Duration) -> Result<LlmClient, LlmError> {
        LlmClient::new(LlmSettings {
            base_url: format!("{}/v1", server.uri()),
            api_key: Some(Secret::new("sk-test")),
            model: "gpt-4o-mini".to_owned(),
            timeout,
            retry: RetryPolicy {
                max_retries: 1,
                base: Duration::from_millis(1),
            },
        })
    }

    #[tokio::test]
    async fn a_completion_is_the_documented_request_and_tool_calls_come_back() -> TestResult {
        let server = MockServer::start().await;
        let tool = json!({"type": "function", "function": {"name": "transfer",
            "description": "Transfer to a person", "parameters": {"type": "object", "properties": {}}}});
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header("authorization", "Bearer sk-test"))
            .and(body_json(json!({
                "model": "gpt-4o-mini", "temperature": 0,
                "messages": [{"role": "user", "content": "a person please"}],
                "tools": [tool], "tool_choice": "auto"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": null,
                    "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "transfer", "arguments": "{}"}}]}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let done = client(&server, Duration::from_secs(2))?
            .chat(&[ChatMessage::text("user", "a person please")], &[tool])
            .await?;
        let calls = done.message.tool_calls.ok_or("no tool calls")?;
        assert_eq!(calls[0].function.name, "transfer");
        assert_eq!(done.usage.total_tokens, 25);
        assert_eq!(done.model, "gpt-4o-mini-2024");
        Ok(())
    }

    #[tokio::test]
    async fn a_timeout_is_retried_once_then_reported() -> TestResult {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(500)))
            .expect(2)
            .mount(&server)
            .await;
        let result = client(&server, Duration::from_millis(100))?
            .chat(&[ChatMessage::text("user", "hi")], &[])
            .await;
        assert!(matches!(result, Err(LlmError::Transport(_))), "{result:?}");
        Ok(())
    }
}
