//! The one HTTP test client of both harnesses (`support` for the in-process router,
//! `process_support` for real processes): signs with the partners' client crate and reads
//! every response whole.

use reqwest::{Method, StatusCode};

use super::resp::Resp;

/// A client of one instance.
#[derive(Clone)]
pub struct Http {
    /// `http://127.0.0.1:<port>`, also the public base of launch links.
    pub base: String,
    /// A client that does not follow redirects.
    pub client: reqwest::Client,
    /// The instance's clock, when a test moves it: requests are signed at its time.
    pub clock: Option<std::sync::Arc<testkit::clock::TestClock>>,
}

impl Http {
    /// A client of the instance at `base`.
    pub fn new(base: String) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base,
            client,
            clock: None,
        }
    }

    /// A client that signs requests at `clock`'s time (a test that moves the instance's clock
    /// moves the signing clock with it).
    pub fn with_clock(mut self, clock: std::sync::Arc<testkit::clock::TestClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Sends a request and reads the response, or says why it could not be sent.
    pub async fn try_send(&self, request: reqwest::RequestBuilder) -> Result<Resp, reqwest::Error> {
        Ok(Resp::read(request.send().await?).await)
    }

    /// Sends a request and reads the response. Every response of this service carries an
    /// `x-request-id` and none is ever a `500`.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let r = self
            .try_send(request)
            .await
            .unwrap_or_else(|e| panic!("request to {} failed: {e}", self.base));
        assert!(
            r.header("x-request-id").is_some_and(|v| !v.is_empty()),
            "a {} response without x-request-id: {}",
            r.status,
            r.text
        );
        assert_ne!(
            r.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "a 500: {}",
            r.text
        );
        r
    }

    /// A request signed now with `key` and `secret` (path below `/api/v1`, with its query
    /// string), by the partners' client crate. A non-empty body is sent as
    /// `application/json`.
    pub fn signed_request(
        &self,
        key: &str,
        secret: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> reqwest::RequestBuilder {
        self.signed_request_ahead(key, secret, method, path, body, 0)
    }

    /// [`Http::signed_request`] with a timestamp `ahead_ms` ahead of now (a client whose
    /// clock runs ahead).
    pub fn signed_request_ahead(
        &self,
        key: &str,
        secret: &str,
        method: &str,
        path: &str,
        body: &str,
        ahead_ms: i64,
    ) -> reqwest::RequestBuilder {
        let method = method.to_ascii_uppercase();
        let headers = client::signing::sign(
            key,
            secret.as_bytes(),
            client::signing::fresh_unix_ms(&method, path, body.as_bytes())
                + ahead_ms
                + self
                    .clock
                    .as_ref()
                    .map_or(0, |c| c.offset().num_milliseconds()),
            &method,
            path,
            body.as_bytes(),
        );
        let url = format!("{}/api/v1{}", self.base, client::signing::signed_path(path));
        let mut builder = self
            .client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
            .header("api-key", headers.api_key)
            .header("authorization", headers.authorization);
        if !body.is_empty() {
            builder = builder
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        builder
    }

    /// A URL on this instance for a path, or the URL itself.
    pub fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        }
    }

    /// An unsigned `GET` of an absolute URL or a path on this instance.
    pub async fn get(&self, url: &str) -> Resp {
        self.send(self.client.get(self.absolute(url))).await
    }

    /// An unsigned form post (`application/x-www-form-urlencoded`) with these header values
    /// (`Origin`, `Referer`, …).
    pub async fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .client
            .post(self.absolute(url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// An unsigned `HEAD`.
    pub async fn head(&self, url: &str) -> Resp {
        self.send(self.client.head(self.absolute(url))).await
    }
}
