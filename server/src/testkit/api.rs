//! A client of the real HTTP API, signed in as a staff member.

use super::server::{Credentials, TestServer};

/// A signed-in API client: the session cookie and the CSRF token its state-changing requests carry. The
/// fields are public so a test can relabel a cookie or build a client with no session.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub http: reqwest::Client,
    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// The `Cookie` header value, `loyalty_session=…`.
    pub cookie: String,
    pub csrf: String,
}

impl ApiClient {
    /// Signs `who` in to a [`TestServer`] with a plain client.
    pub async fn sign_in(server: &TestServer, who: &Credentials) -> Self {
        Self::sign_in_using(reqwest::Client::new(), &server.url, who).await
    }

    /// Signs `who` in to the server at `url` (a [`ServerProcess`], say) and keeps `http` for its requests: a
    /// client with a timeout, or one that shows redirects rather than following them.
    pub async fn sign_in_using(http: reqwest::Client, url: &str, who: &Credentials) -> Self {
        let response = http
            .post(format!("{url}/api/sign_in"))
            .form(&[
                ("email", who.email.as_str()),
                ("password", who.password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "signing in {}",
            who.email
        );
        let cookie = session_cookie(&response).expect("a session cookie");
        let session: loyalty_core::wire::StaffSession = response.json().await.unwrap();
        Self {
            http,
            url: url.to_owned(),
            cookie,
            csrf: session.csrf_token,
        }
    }

    /// A POST to `/api/<endpoint>` with this session's cookie.
    pub async fn post(&self, endpoint: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/api/{endpoint}", self.url))
            .header(reqwest::header::COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// A state-changing call, with this session's CSRF token.
    pub async fn change(&self, endpoint: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(endpoint, &all).await
    }

    /// A GET of `path` (a page, say: `/member/…`) with this session's cookie.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }
}

/// The `loyalty_session=…` cookie a response sets, as a `Cookie` header value.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("loyalty_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// A refused call's status and the domain error its JSON body carries.
pub async fn refused(
    response: reqwest::Response,
) -> (reqwest::StatusCode, loyalty_core::LoyaltyError) {
    let status = response.status();
    let body = response.text().await.unwrap();
    let err = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body}: {e}"));
    (status, err)
}
