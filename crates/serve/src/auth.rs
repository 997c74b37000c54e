//! Who is calling: a bearer JWT, checked (signature, `exp`, `nbf`, `iss`,
//! `aud`), and the PostgreSQL role it names, which must be one serve.yml
//! lists. The role then decides what the caller sees, in PostgreSQL.

use crate::config::{Algorithm, ServeConfig};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use pm_core::error::{Code, Problem};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// The key tokens are checked with, from the environment.
pub enum TokenKey {
    /// `PM_JWT_SECRET`: HS256.
    Secret(Vec<u8>),
    /// The PEM file `PM_JWT_PUBLIC_KEY_FILE` names: RS256 or ES256.
    PublicKeyPem(Vec<u8>),
}

/// Why a caller is not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or one that does not hold: 401.
    Unauthenticated(String),
    /// A good token whose role may not call: 403.
    Forbidden(String),
}

/// Checks tokens and names their role.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    role_claim: String,
    roles: Vec<String>,
    pinned: BTreeMap<String, String>,
}

impl Verifier {
    pub fn new(config: &ServeConfig, key: TokenKey) -> Result<Verifier, Problem> {
        let bad_key = |e: String| {
            Problem::new(Code::ServeKey, format!("cannot read the token key: {e}")).help(
                "PM_JWT_PUBLIC_KEY_FILE names a PEM file with an RSA or EC (P-256) public key",
            )
        };
        let (key, algorithm) = match (key, config.algorithm) {
            (TokenKey::Secret(s), None | Some(Algorithm::HS256)) => {
                if s.len() < 32 {
                    return Err(Problem::new(
                        Code::ServeKey,
                        "PM_JWT_SECRET is shorter than 32 bytes: HS256 tokens signed with it could be guessed",
                    )
                    .help("use a random secret of 32 bytes or more, e.g. `openssl rand -hex 32`"));
                }
                (
                    DecodingKey::from_secret(&s).map_err(|e| bad_key(e.to_string()))?,
                    jsonwebtoken::Algorithm::HS256,
                )
            }
            (TokenKey::PublicKeyPem(pem), Some(Algorithm::RS256)) => (
                DecodingKey::from_rsa_pem(&pem).map_err(|e| bad_key(e.to_string()))?,
                jsonwebtoken::Algorithm::RS256,
            ),
            (TokenKey::PublicKeyPem(pem), Some(Algorithm::ES256)) => (
                DecodingKey::from_ec_pem(&pem).map_err(|e| bad_key(e.to_string()))?,
                jsonwebtoken::Algorithm::ES256,
            ),
            (TokenKey::PublicKeyPem(pem), None) => match DecodingKey::from_rsa_pem(&pem) {
                Ok(k) => (k, jsonwebtoken::Algorithm::RS256),
                Err(_) => (
                    DecodingKey::from_ec_pem(&pem).map_err(|e| bad_key(e.to_string()))?,
                    jsonwebtoken::Algorithm::ES256,
                ),
            },
            (TokenKey::Secret(_), Some(a)) => {
                return Err(Problem::new(
                    Code::ServeKey,
                    format!("serve.yml asks for {a:?} tokens, which are checked with a public key, and PM_JWT_SECRET is set"),
                )
                .help("set PM_JWT_PUBLIC_KEY_FILE to the PEM file of the public key instead"))
            }
            (TokenKey::PublicKeyPem(_), Some(Algorithm::HS256)) => {
                return Err(Problem::new(
                    Code::ServeKey,
                    "serve.yml asks for HS256 tokens, which are checked with PM_JWT_SECRET, and only PM_JWT_PUBLIC_KEY_FILE is set",
                )
                .help("set PM_JWT_SECRET, or choose RS256 or ES256"))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &config.audience {
            Some(a) => validation.set_audience(&[a]),
            None => validation.validate_aud = false,
        }
        if let Some(i) = &config.issuer {
            validation.set_issuer(&[i]);
        }
        Ok(Verifier {
            key,
            validation,
            role_claim: config.role_claim.clone(),
            roles: config.roles.clone(),
            pinned: config.pinned_roles.clone(),
        })
    }

    /// The role of the request whose `Authorization` header is `header`.
    pub fn role_of(&self, header: Option<&str>) -> Result<String, Refusal> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Refusal::Unauthenticated("send a token: `Authorization: Bearer <jwt>`".into())
            })?;
        let claims = jsonwebtoken::decode::<Map<String, Json>>(token, &self.key, &self.validation)
            .map_err(|e| Refusal::Unauthenticated(format!("the token does not hold: {}", why(&e))))?
            .claims;
        let claimed = claims.get(&self.role_claim).and_then(Json::as_str);
        let subject = claims.get("sub").and_then(Json::as_str);
        let role = match subject.and_then(|s| self.pinned.get(s)) {
            Some(pinned) => match claimed {
                Some(c) if c != pinned => {
                    return Err(Refusal::Forbidden(format!(
                        "this token's subject is pinned to role `{pinned}`; it may not claim `{c}`"
                    )))
                }
                _ => pinned.clone(),
            },
            None => claimed
                .ok_or_else(|| {
                    Refusal::Unauthenticated(format!(
                        "the token has no `{}` claim naming a role",
                        self.role_claim
                    ))
                })?
                .to_string(),
        };
        if !self.roles.contains(&role) {
            return Err(Refusal::Forbidden(format!(
                "role `{role}` may not call this server (serve.yml lists {})",
                self.roles.join(", ")
            )));
        }
        Ok(role)
    }
}

/// What is wrong with a token, in words a caller can act on.
fn why(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "it has expired".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "it is for another audience (aud)".into(),
        ErrorKind::InvalidIssuer => "another issuer made it (iss)".into(),
        ErrorKind::InvalidSignature => "its signature does not match".into(),
        ErrorKind::InvalidAlgorithm => "it is signed with another algorithm".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("it has no `{c}` claim"),
        _ => format!("it cannot be read ({e})"),
    }
}

/// What a minted token says.
pub struct Minted<'a> {
    pub role: &'a str,
    pub subject: Option<&'a str>,
    pub expires_in_seconds: u64,
}

/// An HS256 token for `m.role`, with the configured issuer and audience:
/// what `pm serve --mint-token` prints for tests and scripts.
pub fn mint(config: &ServeConfig, secret: &[u8], m: &Minted) -> Result<String, Problem> {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert(config.role_claim.clone(), Json::from(m.role));
    claims.insert("iat".into(), Json::from(now));
    claims.insert("nbf".into(), Json::from(now));
    claims.insert(
        "exp".into(),
        Json::from(now.saturating_add(i64::try_from(m.expires_in_seconds).unwrap_or(i64::MAX / 2))),
    );
    if let Some(s) = m.subject {
        claims.insert("sub".into(), Json::from(s));
    }
    if let Some(i) = &config.issuer {
        claims.insert("iss".into(), Json::from(i.as_str()));
    }
    if let Some(a) = &config.audience {
        claims.insert("aud".into(), Json::from(a.as_str()));
    }
    let key = EncodingKey::from_secret(secret)
        .map_err(|e| Problem::new(Code::ServeToken, format!("cannot use the secret: {e}")))?;
    jsonwebtoken::encode(&Header::default(), &claims, &key)
        .map_err(|e| Problem::new(Code::ServeToken, format!("cannot sign the token: {e}")))
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
