//! Raw HTTP pushes, for what real clients refuse to send (a manifest that lies about sizes).

use http::{HeaderMap, StatusCode, header};
use url::Url;

use crate::image::{Blob, ManifestFormat, TestImage};
use crate::registry::Registry;

/// An answer to a raw request.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first distribution error code in the body (`MANIFEST_INVALID`, `DENIED`, ...).
    pub fn error_code(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body.pointer("/errors/0/code")?.as_str().map(str::to_owned)
    }

    /// The first distribution error message in the body (`errors[0].message`).
    pub fn error_message(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body.pointer("/errors/0/message")?
            .as_str()
            .map(str::to_owned)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Pushes blobs and manifests with plain HTTP requests (`reqwest`), following the distribution
/// API: `POST /v2/<name>/blobs/uploads/` then a monolithic `PUT <location>?digest=...`, and
/// `PUT /v2/<name>/manifests/<reference>` with any bytes and content type.
///
/// ```no_run
/// use testkit::{ManifestFormat, RawPusher, Registry, TestImage};
///
/// # async fn run() {
/// let registry = Registry::basic();
/// let image = TestImage::new(&[4096], 1);
/// let pusher = RawPusher::for_registry(&registry, "project-1/app");
/// // Declares 10 bytes for a 4096-byte layer; distribution stores it anyway.
/// let answer = pusher.push_image(&image, "project-1/app", "lie", ManifestFormat::Oci, Some(&[10])).await;
/// assert_eq!(answer.status.as_u16(), 201);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RawPusher {
    client: reqwest::Client,
    base: Url,
    authorization: Option<String>,
}

impl RawPusher {
    /// A pusher for the registry (or gateway) at `base` (`http://127.0.0.1:5000/`).
    pub fn new(base: Url) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("testkit: cannot build an HTTP client: {e}"));
        Self {
            client,
            base,
            authorization: None,
        }
    }

    /// A pusher for `registry` with the default user's credentials for `repository`
    /// ([`Registry::authorization`]).
    pub fn for_registry(registry: &Registry, repository: &str) -> Self {
        let pusher = Self::new(registry.base_url());
        match registry.authorization(repository) {
            Some(value) => pusher.authorization(value),
            None => pusher,
        }
    }

    /// Sends this `Authorization` value with every request.
    pub fn authorization(mut self, value: impl Into<String>) -> Self {
        self.authorization = Some(value.into());
        self
    }

    /// Sends a request, panicking only when no answer comes at all.
    pub async fn send(
        &self,
        method: http::Method,
        url: Url,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> RawResponse {
        let mut request = self.client.request(method.clone(), url.clone()).body(body);
        if let Some(value) = &self.authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        if let Some(value) = content_type {
            request = request.header(header::CONTENT_TYPE, value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("testkit: {method} {url} got no answer: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("testkit: {method} {url}: cannot read the answer: {e}"))
            .to_vec();
        RawResponse {
            status,
            headers,
            body,
        }
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .unwrap_or_else(|e| panic!("testkit: bad URL {}{path}: {e}", self.base))
    }

    /// Uploads a blob: `POST` then a monolithic `PUT ...?digest=`. Returns the `PUT`'s answer
    /// (201 on success), or the `POST`'s when that was not 202.
    pub async fn upload_blob(&self, repository: &str, blob: &Blob) -> RawResponse {
        let start = self
            .send(
                http::Method::POST,
                self.url(&format!("v2/{repository}/blobs/uploads/")),
                None,
                Vec::new(),
            )
            .await;
        if start.status != StatusCode::ACCEPTED {
            return start;
        }
        let location = start
            .header("location")
            .unwrap_or_else(|| panic!("testkit: upload start answered 202 without Location"));
        let mut url = self
            .base
            .join(location)
            .unwrap_or_else(|e| panic!("testkit: bad upload Location {location:?}: {e}"));
        url.query_pairs_mut().append_pair("digest", &blob.digest);
        self.send(
            http::Method::PUT,
            url,
            Some("application/octet-stream"),
            blob.data.clone(),
        )
        .await
    }

    /// `PUT /v2/<repository>/manifests/<reference>` with these bytes and content type.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        content_type: &str,
        body: &[u8],
    ) -> RawResponse {
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        self.send(http::Method::PUT, url, Some(content_type), body.to_vec())
            .await
    }

    /// Uploads the image's config and layers (panicking unless each is stored), then puts its
    /// manifest in `format` as `reference`, optionally declaring other layer sizes than the true
    /// ones. Returns the manifest `PUT`'s answer.
    pub async fn push_image(
        &self,
        image: &TestImage,
        repository: &str,
        reference: &str,
        format: ManifestFormat,
        declared_sizes: Option<&[u64]>,
    ) -> RawResponse {
        for blob in image.layers().iter().chain([image.config()]) {
            let answer = self.upload_blob(repository, blob).await;
            assert_eq!(
                answer.status,
                StatusCode::CREATED,
                "testkit: uploading blob {} to {repository} failed: {}",
                blob.digest,
                answer.text()
            );
        }
        let manifest = image.manifest_as(format, declared_sizes);
        self.put_manifest(repository, reference, format.media_type(), &manifest)
            .await
    }
}
