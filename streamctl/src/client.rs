//! The agent's HTTP API (/work/notes/api-spec.md's contract, served by `--http-listen`): blocking
//! calls that answer parsed JSON, and the errors a person running streamctl is shown.

use std::fmt;
use std::io::ErrorKind;
use std::time::Duration;

use serde_json::Value;

/// Longest a single call may take. Every endpoint answers at once (consume polls instead of holding
/// a request open), so a call that takes longer is an agent in trouble, better reported than waited on.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read: a consume page is at most 500 records, which may be large ones.
const MAX_BODY_BYTES: u64 = 512 * 1024 * 1024;

/// Why a command failed; `Display` is the line printed after "streamctl: ".
#[derive(Debug)]
pub enum Error {
    /// No HTTP answer at all: nothing listening, a wrong host, a timeout.
    Unreachable { api: String, reason: String },
    /// The API's own error answer, `{"error": {"code", "message"}}`; the code is Kafka's error name.
    Api { code: String, message: String },
    /// An answer that is not the API's JSON (a proxy's error page, another server on that port).
    Http { url: String, status: u16, body: String },
    /// Anything else, said in full: a bad --api URL, an agent that is not ready.
    Message(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unreachable { api, reason } => {
                write!(f, "cannot reach the agent at {api}: {reason} (is it running? set --api or STREAMHOUSE_ADDR)")
            }
            Error::Api { code, message } => write!(f, "{code}: {message}"),
            Error::Http { url, status, body } if body.is_empty() => {
                write!(f, "{url} answered HTTP {status} (is --api an agent's API address?)")
            }
            Error::Http { url, status, body } => write!(f, "{url} answered HTTP {status}: {body} (is --api an agent's API address?)"),
            Error::Message(message) => f.write_str(message),
        }
    }
}

/// An agent's API at one base URL.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// How a call went when it got an HTTP answer: its status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Client {
    /// A client for `api` (`http://HOST:PORT`; a bare `HOST:PORT` means http).
    pub fn new(api: &str) -> Result<Self, Error> {
        let api = api.trim().trim_end_matches('/');
        let base = if api.contains("://") { api.to_string() } else { format!("http://{api}") };
        if !base.starts_with("http://") {
            return Err(Error::Message(format!(
                "--api {base}: only http:// is supported (the agent's API has no TLS; reach a remote one through a tunnel or proxy)"
            )));
        }
        let config = ureq::Agent::config_builder()
            // 4xx and 5xx carry the API's error JSON, which is read rather than thrown away.
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .build();
        Ok(Self { base, agent: config.into() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` (with `query` pairs); a non-2xx answer is an error.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Error> {
        self.call("GET", path, query, None).and_then(|a| self.success(path, a))
    }

    /// GET `path` and hand back any HTTP answer, even an error status (`/health/ready` says 503 with a body).
    pub fn get_any(&self, path: &str) -> Result<Answer, Error> {
        self.call("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.call("POST", path, &[], Some(body)).and_then(|a| self.success(path, a))
    }

    pub fn delete(&self, path: &str) -> Result<Value, Error> {
        self.call("DELETE", path, &[], None).and_then(|a| self.success(path, a))
    }

    fn call(&self, method: &str, path: &str, query: &[(&str, String)], body: Option<&Value>) -> Result<Answer, Error> {
        let url = format!("{}{path}", self.base);
        let query = query.iter().map(|(k, v)| (*k, v.as_str()));
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).query_pairs(query).call(),
            ("DELETE", _) => self.agent.delete(&url).query_pairs(query).call(),
            (_, body) => self
                .agent
                .post(&url)
                .query_pairs(query)
                .header("content-type", "application/json")
                .send(body.map(Value::to_string).unwrap_or_default()),
        };
        let mut response = sent.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(MAX_BODY_BYTES).read_to_string().map_err(|e| self.unreachable(e))?;
        let body = serde_json::from_str(&text).map_err(|_| Error::Http { url: url.clone(), status, body: excerpt(&text) })?;
        Ok(Answer { status, body })
    }

    fn success(&self, path: &str, answer: Answer) -> Result<Value, Error> {
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let error = &answer.body["error"];
        match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), message) => Err(Error::Api { code: code.to_string(), message: message.unwrap_or("").to_string() }),
            (None, _) => {
                Err(Error::Http { url: format!("{}{path}", self.base), status: answer.status, body: excerpt(&answer.body.to_string()) })
            }
        }
    }

    fn unreachable(&self, err: ureq::Error) -> Error {
        let reason = match &err {
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".to_string(),
                ErrorKind::ConnectionReset => "connection reset".to_string(),
                ErrorKind::TimedOut => "timed out".to_string(),
                _ => io.to_string(),
            },
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::Timeout(_) => format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
            other => other.to_string(),
        };
        Error::Unreachable { api: self.base.clone(), reason }
    }
}

/// The start of an unexpected body, on one line: enough to recognise what answered.
fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

/// A topic name or group id as one URL path segment. Group ids may hold any character (a '/' or '?'
/// included), so everything outside RFC 3986's unreserved set is percent-encoded.
pub fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("orders.v1_x-y~"), "orders.v1_x-y~");
        assert_eq!(segment("a/b c?d"), "a%2Fb%20c%3Fd");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn api_urls_default_to_http() {
        assert_eq!(Client::new("127.0.0.1:3001/").unwrap().base(), "http://127.0.0.1:3001");
        assert_eq!(Client::new("http://agent:3001").unwrap().base(), "http://agent:3001");
        let err = Client::new("https://agent:3001").err().expect("https is refused");
        assert!(err.to_string().contains("only http://"), "{err}");
    }

    #[test]
    fn errors_read_as_one_line() {
        let e = Error::Unreachable { api: "http://127.0.0.1:1".into(), reason: "connection refused".into() };
        assert_eq!(
            e.to_string(),
            "cannot reach the agent at http://127.0.0.1:1: connection refused (is it running? set --api or STREAMHOUSE_ADDR)"
        );
        let e = Error::Api { code: "UNKNOWN_TOPIC_OR_PARTITION".into(), message: "no topic 'x'".into() };
        assert_eq!(e.to_string(), "UNKNOWN_TOPIC_OR_PARTITION: no topic 'x'");
        assert_eq!(excerpt("a\n  b"), "a b");
        assert_eq!(excerpt(&"x".repeat(300)).len(), 203);
    }

    #[test]
    fn connection_refused_is_reported_as_such() {
        // A port that was just free: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = client.get("/api/v1/cluster", &[]).expect_err("nothing listens");
        assert_eq!(
            err.to_string(),
            format!("cannot reach the agent at http://127.0.0.1:{port}: connection refused (is it running? set --api or STREAMHOUSE_ADDR)")
        );
    }
}
