//! [`S3Store`]: the `s3://BUCKET/PREFIX` backend, for AWS S3 and servers speaking its API (MinIO, moto),
//! through `aws-sdk-s3`.
//!
//! Object `key` is stored as `PREFIX/key` in `BUCKET`; `list` strips the prefix again, so callers see the keys
//! they put, and stores with different prefixes share a bucket without seeing each other's objects.
//!
//! - `put` is a PutObject with `If-None-Match: *`: S3 refuses (412) to replace an existing key, which maps to
//!   [`StorageError::already_exists`]. It also sends the body's CRC32C (`x-amz-checksum-crc32c`), which AWS
//!   verifies before storing, so a body damaged in transit is refused rather than stored (moto ignores it).
//! - `get_range` is a ranged GetObject (`bytes=start-(end-1)`). S3 answers 416 only when `start` is past the
//!   end and silently shortens a range that merely overruns it, so the length received is checked too: either
//!   way a range past the end is `Corrupt`, as for `file://`. An empty range is a HeadObject (a `Range` header
//!   cannot say "zero bytes").
//! - `delete` is idempotent: AWS answers 204 for a missing key, and a 404 from another server counts as done.
//! - `list` is ListObjectsV2, following continuation tokens.
//!
//! Errors: throttling (503 SlowDown, 429), 5xx, 408, timeouts and connection failures are `Unavailable`;
//! a missing object is `NotFound`; access denied, a missing bucket, a wrong region and other 4xx are `Invalid`,
//! with a message saying what to check. The SDK's own retries are off (one attempt per call) and each attempt
//! has a timeout, so a [`crate::retry::RetryingStore`] around this store owns the retry policy.

use std::error::Error as StdError;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_smithy_http_client::tls;
use bytes::Bytes;

use crate::{ObjectMeta, ObjectStore, StorageError, StorageErrorKind, validate_key, validate_list_prefix, validate_range};

/// The region used when neither the environment nor the AWS profile names one. MinIO and moto accept it.
pub const DEFAULT_REGION: &str = "us-east-1";

/// How to reach the S3 API; everything else (region, credentials) comes from the AWS default chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// A custom endpoint such as `http://127.0.0.1:9000` (MinIO, moto); `None` for AWS itself.
    pub endpoint_url: Option<String>,
    /// Address buckets as `ENDPOINT/BUCKET/KEY` instead of `BUCKET.ENDPOINT/KEY`. S3 API servers other than
    /// AWS usually need it.
    pub force_path_style: bool,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on one whole request, body upload and download included. With the SDK's retries off, this is
    /// also the limit on one call to the store; `RetryingStore` decides whether to try again.
    pub attempt_timeout: Duration,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            force_path_style: false,
            connect_timeout: Duration::from_secs(5),
            // Generous enough to upload a large segment object over a slow link; a hung request fails after it.
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl S3Settings {
    /// Reads the usual AWS variables:
    /// - `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`: a custom endpoint (MinIO, moto).
    /// - `AWS_S3_FORCE_PATH_STYLE=true`: path-style addressing. A custom endpoint turns it on as well.
    ///
    /// Region (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, else `us-east-1`) and credentials (the AWS
    /// default chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profile, web identity, container or
    /// instance role) are read when the store is built.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`S3Settings::from_env`] over any variable lookup (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let endpoint_url = set("AWS_ENDPOINT_URL_S3").or_else(|| set("AWS_ENDPOINT_URL"));
        let force_path_style = set("AWS_S3_FORCE_PATH_STYLE").is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
        Self { force_path_style: force_path_style || endpoint_url.is_some(), endpoint_url, ..Self::default() }
    }
}

/// Objects stored under one prefix of one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    /// Keys per ListObjectsV2 page; `None` lets the server choose (1000 on AWS).
    list_page_size: Option<i32>,
}

impl S3Store {
    /// Opens `s3://BUCKET` or `s3://BUCKET/PREFIX` with settings from the environment
    /// ([`S3Settings::from_env`]). Makes no network call.
    pub async fn new(url: &str) -> Result<Self, StorageError> {
        Self::with_settings(url, S3Settings::from_env()).await
    }

    /// Opens `url` with explicit endpoint settings; region and credentials still come from the AWS chains.
    pub async fn with_settings(url: &str, settings: S3Settings) -> Result<Self, StorageError> {
        let (bucket, prefix) = parse_url(url)?;
        if let Some(endpoint) = &settings.endpoint_url
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(StorageError::invalid(format!(
                "S3 endpoint '{endpoint}' is not a URL: use http://HOST:PORT or https://HOST \
                 (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL)"
            )));
        }

        // One TLS stack (rustls with ring); root certificates are the system's.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        // The instance metadata service is left out of the region chain: asking it costs a timeout off EC2.
        let region = RegionProviderChain::first_try(aws_config::environment::EnvironmentVariableRegionProvider::new())
            .or_else(aws_config::profile::ProfileFileRegionProvider::new())
            .or_else(Region::new(DEFAULT_REGION));
        let sdk_config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .region(region)
            // One attempt per call: RetryingStore owns retries, so they are not multiplied by the SDK's.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .operation_attempt_timeout(settings.attempt_timeout)
                    .operation_timeout(settings.attempt_timeout)
                    .build(),
            )
            .load()
            .await;

        let mut config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(settings.force_path_style)
            // Checksums only where an operation requires them. The default (a CRC32 trailer on every upload,
            // in aws-chunked encoding) is refused by several S3 API servers; `put` sends its own CRC32C header.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &settings.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        Ok(Self { client: Client::from_conf(config.build()), bucket, prefix, list_page_size: None })
    }

    /// Sets the number of keys asked for per ListObjectsV2 page (tests use a small one to exercise paging).
    pub fn with_list_page_size(mut self, keys: i32) -> Self {
        self.list_page_size = Some(keys.max(1));
        self
    }

    /// The SDK client, for what the [`ObjectStore`] trait does not cover (tests create buckets with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix: empty, or ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }

    /// The size of an object (HeadObject).
    async fn size(&self, key: &str) -> Result<u64, StorageError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.error(e, Op::Read, key))?;
        Ok(head.content_length().map_or(0, |n| n.max(0) as u64))
    }

    fn error<E>(&self, err: SdkError<E, HttpResponse>, op: Op, key: &str) -> StorageError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        classify(err, op, key, &self.location(key), &self.bucket)
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        validate_key(key)?;
        let crc = aws_smithy_types::base64::encode(crc32c::crc32c(&body).to_be_bytes());
        let length =
            i64::try_from(body.len()).map_err(|_| StorageError::invalid(format!("object '{key}' is too large for one PutObject")))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .if_none_match("*")
            .content_length(length)
            .content_type("application/octet-stream")
            // Both the algorithm (`x-amz-sdk-checksum-algorithm`, so the server records it) and the value: given
            // the value, the SDK sends it as a plain header instead of an aws-chunked trailer.
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .checksum_crc32_c(crc)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error(e, Op::Put, key))?;
        Ok(())
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        validate_key(key)?;
        validate_range(key, &range)?;
        let location = self.location(key);
        let past_end = |size: Option<u64>| {
            let size = size.map_or_else(|| "fewer".to_owned(), |s| s.to_string());
            StorageError::corrupt(format!(
                "range {}..{} is past the end of object {location} ({size} bytes): the segment index and the \
                 object disagree; check the object was written completely",
                range.start, range.end
            ))
        };
        if range.start == range.end {
            // Still an error if the object is missing or shorter, as for a non-empty range.
            let size = self.size(key).await?;
            return if range.end <= size { Ok(Bytes::new()) } else { Err(past_end(Some(size))) };
        }
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|e| self.error(e, Op::Read, key))?;
        let total = output.content_range().and_then(content_range_total);
        let ranged = output.content_range().is_some();
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| {
                StorageError::unavailable(
                    format!(
                        "reading {location} from S3 broke off midway; retry, and if it persists check the \
                         network to the endpoint"
                    ),
                    e,
                )
            })?
            .into_bytes();
        let wanted = range.end - range.start;
        if ranged {
            // S3 shortens a range that overruns the object instead of refusing it.
            return if bytes.len() as u64 == wanted { Ok(bytes) } else { Err(past_end(total)) };
        }
        // No Content-Range: the server ignored the Range header and sent the whole object.
        let size = bytes.len() as u64;
        if range.end > size {
            return Err(past_end(Some(size)));
        }
        Ok(bytes.slice(range.start as usize..range.end as usize))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.error(e, Op::Delete, key));
        match deleted {
            // Deleting a missing object is not an error (AWS answers 204 anyway; some servers answer 404).
            Err(e) if e.kind() == StorageErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        validate_list_prefix(prefix)?;
        let full_prefix = self.full_key(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_max_keys(self.list_page_size)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.error(e, Op::List, prefix))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: key.to_owned(),
                    size: object.size().map_or(0, |n| n.max(0) as u64),
                    last_modified_ms: object.last_modified().and_then(|t| t.to_millis().ok()).unwrap_or(0),
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        // S3 lists in UTF-8 byte order already; sorting keeps the promise for servers that do not.
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// Splits `s3://BUCKET[/PREFIX]` into the bucket and the key prefix (empty or ending in `/`).
fn parse_url(url: &str) -> Result<(String, String), StorageError> {
    let bad = |why: &str| StorageError::invalid(format!("bad S3 URL '{url}': {why}; use s3://BUCKET or s3://BUCKET/PREFIX"));
    let rest = url.strip_prefix("s3://").ok_or_else(|| bad("it must start with s3://"))?;
    if rest.contains(['?', '#']) {
        return Err(bad("query strings are not supported (set the endpoint and region through AWS_ENDPOINT_URL and AWS_REGION)"));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok =
        (3..=63).contains(&bucket.len()) && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(bad(&format!("bucket name '{bucket}' is not valid (3 to 63 characters: lowercase letters, digits, '-' and '.')")));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Ok((bucket.to_owned(), String::new()));
    }
    validate_key(prefix)
        .map_err(|_| bad(&format!("prefix '{prefix}' must be '/'-separated non-empty components, none starting with '.'")))?;
    Ok((bucket.to_owned(), format!("{prefix}/")))
}

/// The object size from a `Content-Range: bytes START-END/SIZE` header.
fn content_range_total(header: &str) -> Option<u64> {
    header.rsplit_once('/')?.1.trim().parse().ok()
}

/// What a failed request was doing: the same status means different things to different operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Read,
    Delete,
    List,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Put => "writing",
            Op::Read => "reading",
            Op::Delete => "deleting",
            Op::List => "listing",
        }
    }
}

/// Maps an SDK failure to a [`StorageError`] whose kind says whether to retry and whose message says what to
/// check. `key` is the caller's key (for `NotFound`), `location` the full `s3://` address (for messages).
fn classify<E>(err: SdkError<E, HttpResponse>, op: Op, key: &str, location: &str, bucket: &str) -> StorageError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let doing = format!("{} {location}", op.verb());
    let error = match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let detail = match service.err().message() {
                Some(message) => format!("HTTP {status} {code}: {message}"),
                None => format!("HTTP {status} {code}"),
            };
            classify_response(status, code, op, key, &doing, &detail, bucket)
        }
        SdkError::TimeoutError(_) => retriable(format!(
            "{doing} timed out; retry, and if it persists check the network to the S3 endpoint and the \
             object size against the request timeout"
        )),
        SdkError::DispatchFailure(failure) => {
            let context = causes(&err);
            match credentials_error(&err) {
                Some(CredentialsError::CredentialsNotLoaded(_) | CredentialsError::InvalidConfiguration(_)) => {
                    StorageError::invalid(format!(
                        "{doing}: no usable AWS credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                     (or a profile or role) ({context})"
                    ))
                }
                Some(_) => retriable(format!("{doing}: the AWS credential provider failed; retry ({context})")),
                None if failure.is_user() => StorageError::invalid(format!(
                    "{doing}: the request could not be sent; check the S3 endpoint URL and TLS settings \
                     ({context})"
                )),
                None => retriable(format!(
                    "{doing}: could not reach the S3 endpoint; check it is up and reachable \
                     (AWS_ENDPOINT_URL), then retry ({context})"
                )),
            }
        }
        SdkError::ResponseError(_) => retriable(format!("{doing}: the S3 response could not be read; retry ({})", causes(&err))),
        SdkError::ConstructionFailure(_) => StorageError::invalid(format!(
            "{doing}: the request could not be built; check the bucket, key and S3 settings ({})",
            causes(&err)
        )),
        _ => retriable(format!("{doing} failed; retry ({})", causes(&err))),
    };
    error.with_source(err)
}

/// The status code and S3 error code of an error response, mapped to a kind.
fn classify_response(status: u16, code: &str, op: Op, key: &str, doing: &str, detail: &str, bucket: &str) -> StorageError {
    let retriable_code = matches!(
        code,
        "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestTimeout"
            | "InternalError"
            | "ServiceUnavailable"
            | "OperationAborted"
            // A concurrent conditional write to the same key is in flight: retrying settles who won.
            | "ConditionalRequestConflict"
    );
    if retriable_code || status == 408 || status == 429 || status >= 500 {
        return retriable(format!("{doing}: S3 is throttling or failing ({detail}); retry with backoff"));
    }
    match (status, code) {
        (_, "NoSuchBucket") => StorageError::invalid(format!(
            "{doing}: bucket '{bucket}' does not exist ({detail}); check the bucket name in the URL, the \
             endpoint (AWS_ENDPOINT_URL) and the region (AWS_REGION), or create the bucket"
        )),
        (404, _) if op == Op::Read => StorageError::not_found(key),
        (404, _) if op == Op::Delete => StorageError::not_found(key),
        (412, _) if op == Op::Put => StorageError::already_exists(key),
        (416, _) => StorageError::corrupt(format!(
            "{doing}: the range is past the end of the object ({detail}); the segment index and the object \
             disagree, check the object was written completely"
        )),
        (403, "RequestTimeTooSkewed") => {
            StorageError::invalid(format!("{doing}: this host's clock is too far from S3's ({detail}); fix the clock (NTP)"))
        }
        (403, _) | (401, _) => StorageError::invalid(format!(
            "{doing}: access denied ({detail}); check the credentials (AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY, profile or role), the bucket policy, and that the endpoint is the intended \
             one"
        )),
        (301 | 307, _) | (_, "PermanentRedirect" | "AuthorizationHeaderMalformed") => StorageError::invalid(format!(
            "{doing}: the bucket lives in another region or needs another endpoint ({detail}); set \
                 AWS_REGION to the bucket's region, or check AWS_ENDPOINT_URL"
        )),
        _ => StorageError::invalid(format!(
            "{doing}: S3 refused the request ({detail}); check the bucket name, the credentials and the \
             endpoint"
        )),
    }
}

/// An `Unavailable` error; `classify` attaches the SDK error as its source.
fn retriable(message: String) -> StorageError {
    StorageError::new(StorageErrorKind::Unavailable, message)
}

/// An error and its sources, `: `-separated, for messages ("dispatch failure: io error: ... Connection refused").
fn causes(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(current) = source {
        let text = current.to_string();
        // Wrappers often repeat their source's text; say it once.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = current.source();
    }
    out
}

/// The credentials error behind a failed dispatch, if that is what it was.
fn credentials_error<E, R>(err: &SdkError<E, R>) -> Option<&CredentialsError>
where
    E: StdError + 'static,
    R: std::fmt::Debug,
{
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(current) = source {
        if let Some(found) = current.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        source = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ConnectorError;
    use aws_sdk_s3::operation::get_object::GetObjectError;

    use super::*;
    use crate::StorageErrorKind;

    #[test]
    fn parses_bucket_and_prefix() {
        let parse = |url| parse_url(url).unwrap();
        assert_eq!(parse("s3://bucket"), ("bucket".into(), "".into()));
        assert_eq!(parse("s3://bucket/"), ("bucket".into(), "".into()));
        assert_eq!(parse("s3://my.bucket-1/a"), ("my.bucket-1".into(), "a/".into()));
        assert_eq!(parse("s3://bucket/a/b/"), ("bucket".into(), "a/b/".into()));
        for bad in [
            "s3://",
            "s3:///prefix",
            "s3://ab",
            "s3://Bucket",
            "s3://bucket_x",
            "s3://bucket/a//b",
            "s3://bucket/./a",
            "s3://bucket/p?region=x",
            "file://bucket",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert_eq!(err.kind(), StorageErrorKind::Invalid, "{bad}");
            assert!(err.to_string().contains("s3://BUCKET"), "{err}");
        }
    }

    #[test]
    fn settings_from_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            S3Settings::from_lookup(move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
        };
        assert_eq!(env(&[]), S3Settings::default());
        assert!(!S3Settings::default().force_path_style);

        let custom = env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")]);
        assert_eq!(custom.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(custom.force_path_style, "a custom endpoint implies path style");

        let specific = env(&[("AWS_ENDPOINT_URL", "http://general"), ("AWS_ENDPOINT_URL_S3", "http://s3-only")]);
        assert_eq!(specific.endpoint_url.as_deref(), Some("http://s3-only"));

        assert!(env(&[("AWS_S3_FORCE_PATH_STYLE", "true")]).force_path_style);
        assert!(env(&[("AWS_S3_FORCE_PATH_STYLE", "TRUE")]).force_path_style);
        assert!(!env(&[("AWS_S3_FORCE_PATH_STYLE", "false")]).force_path_style);
        assert_eq!(env(&[("AWS_ENDPOINT_URL", " ")]).endpoint_url, None);
    }

    #[tokio::test]
    async fn rejects_an_endpoint_that_is_not_a_url() {
        let settings = S3Settings { endpoint_url: Some("127.0.0.1:9000".into()), ..S3Settings::default() };
        let err = S3Store::with_settings("s3://bucket", settings).await.unwrap_err();
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
        assert!(err.to_string().contains("http://HOST:PORT"), "{err}");
    }

    fn response(status: u16, code: &str, op: Op) -> StorageError {
        classify_response(status, code, op, "k", "doing", "detail", "bucket")
    }

    #[test]
    fn throttling_and_server_errors_are_retriable() {
        for (status, code) in [
            (503, "SlowDown"),
            (429, ""),
            (500, "InternalError"),
            (502, ""),
            (408, ""),
            (400, "RequestTimeout"),
            (409, "ConditionalRequestConflict"),
        ] {
            let err = response(status, code, Op::Put);
            assert_eq!(err.kind(), StorageErrorKind::Unavailable, "{status} {code}");
        }
    }

    #[test]
    fn client_errors_say_what_to_check() {
        let err = response(404, "NoSuchBucket", Op::Read);
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
        assert!(err.to_string().contains("bucket name"), "{err}");
        let err = response(403, "AccessDenied", Op::List);
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
        let err = response(301, "PermanentRedirect", Op::Read);
        assert!(err.to_string().contains("AWS_REGION"), "{err}");
        assert_eq!(response(400, "InvalidArgument", Op::Put).kind(), StorageErrorKind::Invalid);
    }

    #[test]
    fn statuses_that_depend_on_the_operation() {
        assert_eq!(response(404, "NoSuchKey", Op::Read).kind(), StorageErrorKind::NotFound);
        // HeadObject's 404 has no body, so no code.
        assert_eq!(response(404, "", Op::Read).kind(), StorageErrorKind::NotFound);
        assert!(response(412, "PreconditionFailed", Op::Put).is_already_exists());
        assert_eq!(response(416, "InvalidRange", Op::Read).kind(), StorageErrorKind::Corrupt);
    }

    #[test]
    fn missing_credentials_are_invalid_and_unreachable_endpoints_unavailable() {
        let no_creds: SdkError<GetObjectError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(CredentialsError::not_loaded("no providers in chain")), None));
        let err = classify(no_creds, Op::Read, "k", "s3://b/k", "b");
        assert_eq!(err.kind(), StorageErrorKind::Invalid);
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");

        let refused: SdkError<GetObjectError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))));
        let err = classify(refused, Op::Read, "k", "s3://b/k", "b");
        assert_eq!(err.kind(), StorageErrorKind::Unavailable);
        assert!(err.to_string().contains("AWS_ENDPOINT_URL"), "{err}");
    }

    #[test]
    fn content_range_total_size() {
        assert_eq!(content_range_total("bytes 0-9/100"), Some(100));
        assert_eq!(content_range_total("bytes 0-9/*"), None);
        assert_eq!(content_range_total("garbage"), None);
    }
}
