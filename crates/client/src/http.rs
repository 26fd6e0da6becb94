//! The typed async client.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use crate::error::{ApiProblem, Error, ProblemBody, ProblemCode};
use crate::signing;
use crate::types::{
    CreateEndpoint, CreateSession, DataList, Declaration, Endpoint, Event, ListSessions,
    OwnershipChallenge, Session, SessionPage,
};

/// The session resources, below `/api/v1`.
const SESSIONS: &str = "/travel-rule/widget-sessions";

/// The webhook endpoints, below `/api/v1`.
const ENDPOINTS: &str = "/webhook-endpoints";

/// A signed, typed client of one service for one application.
///
/// Cheap to clone (the connection pool is shared). `Debug` never shows the secret.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: String,
    secret: SecretString,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// An answer read as it came, for [`Client::send`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Client {
    /// A client of the service at `base_url` (e.g. `https://sessions.example.com`), for the
    /// application with these credentials. Requests time out after 30 s and redirects are
    /// not followed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `base_url` is not an http(s) URL;
    /// [`Error::Transport`] when the HTTP client cannot be built.
    pub fn new(
        base_url: &str,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
    ) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(Error::Transport)?;
        Self::with_http_client(http, base_url, api_key, api_secret)
    }

    /// Like [`Client::new`] with an HTTP client of your own (proxies, timeouts, TLS roots).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `base_url` is not an http(s) URL.
    pub fn with_http_client(
        http: reqwest::Client,
        base_url: &str,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
    ) -> Result<Self, Error> {
        let base = Url::parse(base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::InvalidArgument(format!("{base_url:?} is not an http(s) URL")))?;
        Ok(Self {
            http,
            base,
            api_key: api_key.into(),
            secret: SecretString::from(api_secret.into()),
        })
    }

    /// The full URL of a path below `/api/v1`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}/api/v1{}",
            self.base.as_str().trim_end_matches('/'),
            signing::signed_path(path_and_query)
        )
    }

    /// The headers that sign a request now: `api-key` and `Authorization`.
    pub fn sign(&self, method: &str, path_and_query: &str, body: &[u8]) -> signing::SignedHeaders {
        signing::sign(
            &self.api_key,
            self.secret.expose_secret().as_bytes(),
            signing::fresh_unix_ms(method, path_and_query, body),
            method,
            path_and_query,
            body,
        )
    }

    /// Signs and sends any request to a path below `/api/v1` (with its query string) and
    /// returns the answer as it came, whatever its status. A body is sent as
    /// `application/json`.
    ///
    /// # Errors
    ///
    /// [`Error::Transport`] when the service cannot be reached;
    /// [`Error::InvalidArgument`] for a method that is not a method.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<RawResponse, Error> {
        let method_upper = method.to_ascii_uppercase();
        let m = reqwest::Method::from_bytes(method_upper.as_bytes())
            .map_err(|_| Error::InvalidArgument(format!("{method:?} is not an HTTP method")))?;
        let bytes = body.unwrap_or_default();
        let signed = self.sign(&method_upper, path_and_query, bytes);
        let mut request = self
            .http
            .request(m, self.url(path_and_query))
            .header("api-key", signed.api_key)
            .header(AUTHORIZATION, signed.authorization);
        if let Some(b) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let response = request.send().await.map_err(Error::Transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(Error::Transport)?.to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let raw = self.send(method, path_and_query, body.as_deref()).await?;
        read(raw)
    }

    /// Creates a session for the request, or returns the application's session for the same
    /// key (`reused` tells which).
    ///
    /// # Errors
    ///
    /// [`Error::Api`] with [`ProblemCode::ValidationFailed`] (every problem listed),
    /// [`ProblemCode::UpstreamUnavailable`], … — see [`ProblemCode`].
    pub async fn create_session(&self, request: &CreateSession) -> Result<Session, Error> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::InvalidArgument(format!("the request cannot be sent: {e}")))?;
        self.call("POST", SESSIONS, Some(body)).await
    }

    /// One of the application's sessions.
    ///
    /// # Errors
    ///
    /// [`ProblemCode::SessionNotFound`] for unknown ids and other applications' sessions.
    pub async fn get_session(&self, id: Uuid) -> Result<Session, Error> {
        self.call("GET", &format!("{SESSIONS}/{id}"), None).await
    }

    /// A page of the application's sessions, newest first.
    ///
    /// # Errors
    ///
    /// [`ProblemCode::ValidationFailed`] for invalid parameters.
    pub async fn list_sessions(&self, query: &ListSessions) -> Result<SessionPage, Error> {
        let q = query.query();
        let path = if q.is_empty() {
            SESSIONS.to_string()
        } else {
            format!("{SESSIONS}?{q}")
        };
        self.call("GET", &path, None).await
    }

    /// Cancels an ACTIVE session (idempotent); its link stops working.
    ///
    /// # Errors
    ///
    /// [`ProblemCode::SessionNotFound`], [`ProblemCode::SessionNotActive`].
    pub async fn cancel_session(&self, id: Uuid) -> Result<Session, Error> {
        self.call("POST", &format!("{SESSIONS}/{id}/cancel"), None)
            .await
    }

    /// Records the customer's declaration about the counterparty (replaceable until the
    /// travel-rule record is complete, final after).
    ///
    /// # Errors
    ///
    /// [`ProblemCode::ValidationFailed`] (every problem listed),
    /// [`ProblemCode::DeclarationAlreadyRecorded`], [`ProblemCode::SessionCancelled`],
    /// [`ProblemCode::TravelRuleWindowClosed`], [`ProblemCode::SessionNotFound`].
    pub async fn declare(&self, id: Uuid, declaration: &Declaration) -> Result<Session, Error> {
        let body = serde_json::to_vec(declaration)
            .map_err(|e| Error::InvalidArgument(format!("the declaration cannot be sent: {e}")))?;
        self.call("PUT", &format!("{SESSIONS}/{id}/declaration"), Some(body))
            .await
    }

    /// The ownership challenge: the exact message the customer's wallet must sign.
    ///
    /// # Errors
    ///
    /// [`ProblemCode::OwnershipProofUnavailable`] for a counterparty that cannot sign,
    /// [`ProblemCode::SessionCancelled`], [`ProblemCode::TravelRuleWindowClosed`],
    /// [`ProblemCode::SessionNotFound`].
    pub async fn ownership_challenge(&self, id: Uuid) -> Result<OwnershipChallenge, Error> {
        self.call("GET", &format!("{SESSIONS}/{id}/ownership-challenge"), None)
            .await
    }

    /// Submits the wallet's signature over the challenge; the service verifies it against
    /// the counterparty.
    ///
    /// # Errors
    ///
    /// [`ProblemCode::SignatureMalformed`], [`ProblemCode::SignatureMismatch`] (the answer
    /// says why), [`ProblemCode::OwnershipProofUnavailable`],
    /// [`ProblemCode::SessionCancelled`], [`ProblemCode::TravelRuleWindowClosed`].
    pub async fn prove_ownership(&self, id: Uuid, signature: &str) -> Result<Session, Error> {
        let body = serde_json::to_vec(&serde_json::json!({ "signature": signature }))
            .map_err(|e| Error::InvalidArgument(format!("the signature cannot be sent: {e}")))?;
        self.call(
            "POST",
            &format!("{SESSIONS}/{id}/ownership-proof"),
            Some(body),
        )
        .await
    }

    /// A session's events, oldest first, each with its deliveries.
    ///
    /// # Errors
    ///
    /// [`ProblemCode::SessionNotFound`].
    pub async fn session_events(&self, id: Uuid) -> Result<Vec<Event>, Error> {
        let list: DataList<Event> = self
            .call("GET", &format!("{SESSIONS}/{id}/events"), None)
            .await?;
        Ok(list.data)
    }

    /// Registers a webhook endpoint; the answer carries its secret, shown only this once.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] when the URL is refused (its code says why) or the application has as
    /// many endpoints as allowed.
    pub async fn create_endpoint(&self, request: &CreateEndpoint) -> Result<Endpoint, Error> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::InvalidArgument(format!("the request cannot be sent: {e}")))?;
        self.call("POST", ENDPOINTS, Some(body)).await
    }

    /// The application's webhook endpoints, oldest first (without secrets).
    ///
    /// # Errors
    ///
    /// [`Error::Api`], [`Error::Transport`].
    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>, Error> {
        let list: DataList<Endpoint> = self.call("GET", ENDPOINTS, None).await?;
        Ok(list.data)
    }

    /// Deletes a webhook endpoint: nothing more is sent to it.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] when there is no such endpoint; [`Error::InvalidArgument`] when `id`
    /// is not an endpoint id.
    pub async fn delete_endpoint(&self, id: &str) -> Result<(), Error> {
        endpoint_id(id)?;
        let raw = self
            .send("DELETE", &format!("{ENDPOINTS}/{id}"), None)
            .await?;
        if (200..300).contains(&raw.status) {
            Ok(())
        } else {
            Err(problem(raw))
        }
    }

    /// Gives an endpoint a new secret (the answer carries it). The secret it replaces (the
    /// one last handed out) keeps signing alongside it for `previous_secret_expires_in`:
    /// `None` for the service's default (24 hours), `Some(Duration::ZERO)` to end it at
    /// once, at most 24 hours, in whole seconds. Any older secret stops at once.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] when there is no such endpoint or the service refuses the duration;
    /// [`Error::InvalidArgument`] when `id` is not an endpoint id or the duration is not a
    /// whole number of seconds.
    pub async fn rotate_endpoint_secret(
        &self,
        id: &str,
        previous_secret_expires_in: Option<Duration>,
    ) -> Result<Endpoint, Error> {
        endpoint_id(id)?;
        let body = rotate_body(previous_secret_expires_in)?;
        self.call("POST", &format!("{ENDPOINTS}/{id}/rotate-secret"), body)
            .await
    }
}

/// The body of a rotation: none for the default, else `{"previousSecretExpiresInSecs": N}`.
fn rotate_body(previous_secret_expires_in: Option<Duration>) -> Result<Option<Vec<u8>>, Error> {
    let Some(d) = previous_secret_expires_in else {
        return Ok(None);
    };
    if d.subsec_nanos() != 0 {
        return Err(Error::InvalidArgument(format!(
            "the previous secret's lifetime is in whole seconds, not {d:?}"
        )));
    }
    serde_json::to_vec(&serde_json::json!({ "previousSecretExpiresInSecs": d.as_secs() }))
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("the request cannot be sent: {e}")))
}

/// An endpoint id as the service makes them (`we_` and a UUID): nothing else goes into a
/// path.
fn endpoint_id(id: &str) -> Result<(), Error> {
    let plain = id.strip_prefix("we_").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    });
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{id:?} is not a webhook endpoint id (we_…)"
        )))
    }
}

/// Reads an answer: the typed body on success, the problem document otherwise.
fn read<T: DeserializeOwned>(raw: RawResponse) -> Result<T, Error> {
    if (200..300).contains(&raw.status) {
        return serde_json::from_slice(&raw.body).map_err(|e| Error::UnexpectedResponse {
            status: raw.status,
            reason: format!("the body is not what this client expects: {e}"),
        });
    }
    Err(problem(raw))
}

fn problem(raw: RawResponse) -> Error {
    let header = |name| {
        raw.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header(RETRY_AFTER.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let request_id = header("x-request-id");
    match serde_json::from_slice::<ProblemBody>(&raw.body) {
        Ok(body) => Error::Api(Box::new(ApiProblem {
            status: raw.status,
            code: ProblemCode::parse(&body.code),
            title: body.title,
            detail: body.detail,
            errors: body.errors,
            retry_after,
            request_id,
        })),
        Err(_) => Error::UnexpectedResponse {
            status: raw.status,
            reason: "the answer is not a problem document".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_endpoint_ids_go_into_a_path() {
        assert!(endpoint_id("we_0193a1b2-0000-7000-8000-000000000001").is_ok());
        for bad in [
            "",
            "we_",
            "0193a1b2",
            "we_../../x",
            "we_1?x=1",
            "we_1/rotate-secret",
            "we_1#",
        ] {
            assert!(
                matches!(endpoint_id(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_rotation_sends_the_previous_secrets_lifetime_only_when_given() {
        assert_eq!(rotate_body(None).unwrap(), None);
        let body = rotate_body(Some(Duration::ZERO)).unwrap().unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"previousSecretExpiresInSecs": 0})
        );
        let body = rotate_body(Some(Duration::from_secs(3600)))
            .unwrap()
            .unwrap();
        assert_eq!(body, br#"{"previousSecretExpiresInSecs":3600}"#);
        assert!(matches!(
            rotate_body(Some(Duration::from_millis(1500))),
            Err(Error::InvalidArgument(_))
        ));
    }

    fn raw(status: u16, body: &str, headers: &[(&'static str, &'static str)]) -> RawResponse {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, reqwest::header::HeaderValue::from_static(v));
        }
        RawResponse {
            status,
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn problems_become_typed_errors() {
        let e = read::<Session>(raw(
            400,
            r#"{"type":"t","title":"The request is invalid","status":400,"detail":"d",
                "code":"validation_failed","errors":[{"field":"userId","code":"invalid_uuid","message":"m"}]}"#,
            &[("x-request-id", "r-1")],
        ))
        .unwrap_err();
        let p = e.problem().unwrap();
        assert_eq!(p.code, ProblemCode::ValidationFailed);
        assert_eq!(p.errors[0].code, "invalid_uuid");
        assert_eq!(p.request_id.as_deref(), Some("r-1"));
        assert!(!e.is_retryable());

        let e = read::<Session>(raw(
            503,
            r#"{"code":"upstream_unavailable","detail":"down"}"#,
            &[("retry-after", "3")],
        ))
        .unwrap_err();
        assert_eq!(e.code(), Some(&ProblemCode::UpstreamUnavailable));
        assert_eq!(
            e.problem().unwrap().retry_after,
            Some(Duration::from_secs(3))
        );
        assert!(e.is_retryable());

        let e = read::<Session>(raw(502, "<html>", &[])).unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse { status: 502, .. }));
    }

    #[test]
    fn urls_are_below_api_v1_and_debug_hides_the_secret() {
        let c = Client::new("http://127.0.0.1:8080/", "wsk_k", "wss_very_secret").unwrap();
        assert_eq!(
            c.url("/travel-rule/widget-sessions?limit=1"),
            "http://127.0.0.1:8080/api/v1/travel-rule/widget-sessions?limit=1"
        );
        assert_eq!(c.url("/api/v1/x"), "http://127.0.0.1:8080/api/v1/x");
        assert!(!format!("{c:?}").contains("very_secret"));
        assert!(Client::new("ftp://x", "k", "s").is_err());
        assert!(Client::new("not a url", "k", "s").is_err());
    }
}
