//! How natview authenticates to a Milvus server: a token, or a user and password, taken from
//! the environment only — never from the command line, never logged, never written to a file —
//! and, for `https://` servers, an optional CA certificate to trust.

use milvus::v2::prelude::ConnectConfig;
use std::path::PathBuf;

/// The token (`user:password`, or an API key) natview sends, when set.
pub const TOKEN_VAR: &str = "NATVIEW_MILVUS_TOKEN";
/// The user natview authenticates as (with [`PASSWORD_VAR`]), when no token is set.
pub const USER_VAR: &str = "NATVIEW_MILVUS_USER";
/// The password of [`USER_VAR`].
pub const PASSWORD_VAR: &str = "NATVIEW_MILVUS_PASSWORD";
/// A PEM file of the certificate authority an `https://` server's certificate is checked
/// against (the system's roots when unset).
pub const CA_CERT_VAR: &str = "NATVIEW_MILVUS_CA_CERT";

/// What natview proves its identity with. `Debug` shows which kind, never the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    secret: Secret,
    ca_cert: Option<PathBuf>,
}

#[derive(Clone, Default, PartialEq, Eq)]
enum Secret {
    #[default]
    None,
    Token(String),
    User {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("source", &self.source())
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

impl Credentials {
    /// From `NATVIEW_MILVUS_TOKEN`, or `NATVIEW_MILVUS_USER` with `NATVIEW_MILVUS_PASSWORD`
    /// (a token wins), and `NATVIEW_MILVUS_CA_CERT`; none set: no credentials.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).filter(|v| !v.is_empty());
        let secret = match (get(TOKEN_VAR), get(USER_VAR), get(PASSWORD_VAR)) {
            (Some(token), _, _) => Secret::Token(token),
            (None, Some(user), Some(password)) => Secret::User { user, password },
            (None, Some(_), None) => {
                return Err(format!("{USER_VAR} is set but {PASSWORD_VAR} is not"))
            }
            (None, None, Some(_)) => {
                return Err(format!("{PASSWORD_VAR} is set but {USER_VAR} is not"))
            }
            (None, None, None) => Secret::None,
        };
        Ok(Self {
            secret,
            ca_cert: get(CA_CERT_VAR).map(PathBuf::from),
        })
    }

    /// Where the credentials came from, for messages (never the secret itself).
    pub fn source(&self) -> String {
        match &self.secret {
            Secret::None => {
                format!("no credentials (set {TOKEN_VAR}, or {USER_VAR} and {PASSWORD_VAR})")
            }
            Secret::Token(_) => format!("the token in {TOKEN_VAR}"),
            Secret::User { user, .. } => format!("user `{user}` ({USER_VAR}, {PASSWORD_VAR})"),
        }
    }

    /// `config` with these credentials and CA certificate.
    pub(super) fn apply(&self, config: ConnectConfig) -> ConnectConfig {
        let config = match &self.secret {
            Secret::None => config,
            Secret::Token(token) => config.token(token.clone()),
            Secret::User { user, password } => {
                config.username(user.clone()).password(password.clone())
            }
        };
        match &self.ca_cert {
            Some(path) => config.ca_certificate(path.to_string_lossy().into_owned()),
            None => config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Credentials, String> {
        Credentials::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The authorization value the SDK sends for `credentials`.
    fn sent(credentials: &Credentials) -> Option<String> {
        let config = credentials.apply(ConnectConfig::new());
        config.get_token().clone()
    }

    /// The value the SDK sends for the token `token` (base64 of it): what Milvus checks.
    fn header(token: &str) -> Option<String> {
        ConnectConfig::new().token(token).get_token().clone()
    }

    #[test]
    fn the_token_or_user_and_password_is_what_is_sent() {
        assert_eq!(sent(&from(&[]).expect("none")), None);
        let token = from(&[(TOKEN_VAR, "root:Milvus")]).expect("token");
        assert_eq!(sent(&token), header("root:Milvus"));
        let user = from(&[(USER_VAR, "ann"), (PASSWORD_VAR, "s3cret")]).expect("user");
        assert_eq!(sent(&user), header("ann:s3cret"));
        // A token wins over a user and password.
        let both = from(&[(TOKEN_VAR, "t0k"), (USER_VAR, "ann"), (PASSWORD_VAR, "x")]);
        assert_eq!(sent(&both.expect("both")), header("t0k"));
        // Empty variables count as unset.
        assert_eq!(sent(&from(&[(TOKEN_VAR, "")]).expect("empty")), None);
    }

    #[test]
    fn half_a_login_is_refused_and_secrets_never_show() {
        let err = from(&[(USER_VAR, "ann")]).expect_err("no password");
        assert!(err.contains(PASSWORD_VAR), "{err}");
        let err = from(&[(PASSWORD_VAR, "s3cret")]).expect_err("no user");
        assert!(err.contains(USER_VAR) && !err.contains("s3cret"), "{err}");
        for c in [
            from(&[(TOKEN_VAR, "t0ps3cret")]).expect("token"),
            from(&[(USER_VAR, "ann"), (PASSWORD_VAR, "t0ps3cret")]).expect("user"),
        ] {
            let shown = format!("{c:?} {}", c.source());
            assert!(!shown.contains("t0ps3cret"), "{shown}");
        }
    }

    #[test]
    fn a_ca_certificate_is_passed_on() {
        let c = from(&[(CA_CERT_VAR, "/etc/ca.pem")]).expect("ca");
        let config = c.apply(ConnectConfig::new());
        assert_eq!(config.get_ca_certificate().as_deref(), Some("/etc/ca.pem"));
    }
}
