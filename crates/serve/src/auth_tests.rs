use super::{mint, Minted, Refusal, TokenKey, Verifier};
use crate::config::{parse, ServeConfig};
use std::sync::Arc;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

fn config() -> ServeConfig {
    let text: Arc<str> = "serve:\n  roles: [reader, analyst]\n  audience: pm\n  issuer: pulsemetrics\n  leeway_seconds: 0\n  pinned_roles:\n    dashboard-bot: reader\n".into();
    parse(&text).unwrap()
}

fn token(c: &ServeConfig, role: &str, subject: Option<&str>) -> String {
    mint(
        c,
        SECRET,
        &Minted {
            role,
            subject,
            expires_in_seconds: 60,
        },
    )
    .unwrap()
}

fn verifier(c: &ServeConfig) -> Verifier {
    Verifier::new(c, TokenKey::Secret(SECRET.to_vec())).unwrap()
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[test]
fn a_good_token_names_its_role() {
    let c = config();
    let v = verifier(&c);
    assert_eq!(
        v.role_of(Some(&bearer(&token(&c, "analyst", None))))
            .unwrap(),
        "analyst"
    );
}

#[test]
fn missing_tampered_expired_and_foreign_tokens_are_401() {
    let c = config();
    let v = verifier(&c);
    let unauthenticated = |header: Option<&str>, says: &str| match v.role_of(header) {
        Err(Refusal::Unauthenticated(m)) => assert!(m.contains(says), "{m}"),
        other => panic!("{header:?}: {other:?}"),
    };
    unauthenticated(None, "send a token");
    unauthenticated(Some("Basic abc"), "send a token");
    let good = token(&c, "reader", None);
    // Another payload under the same signature.
    let parts: Vec<&str> = good.split('.').collect();
    let other = token(&c, "analyst", None);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    unauthenticated(Some(&bearer(&forged)), "signature");
    let expired = mint(
        &c,
        SECRET,
        &Minted {
            role: "reader",
            subject: None,
            expires_in_seconds: 0,
        },
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    unauthenticated(Some(&bearer(&expired)), "expired");
    let mut elsewhere = config();
    elsewhere.audience = Some("another".into());
    unauthenticated(
        Some(&bearer(&token(&elsewhere, "reader", None))),
        "audience",
    );
    let mut issuer = config();
    issuer.issuer = Some("someone".into());
    unauthenticated(Some(&bearer(&token(&issuer, "reader", None))), "issuer");
    let other_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"role": "reader", "exp": 4102444800u64, "aud": "pm", "iss": "pulsemetrics"}),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret of enough length!!").unwrap(),
    )
    .unwrap();
    unauthenticated(Some(&bearer(&other_secret)), "signature");
    // An unsigned token ("alg": "none") is refused.
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    assert!(matches!(
        v.role_of(Some(&bearer(&unsigned))),
        Err(Refusal::Unauthenticated(_))
    ));
}

#[test]
fn roles_outside_the_list_and_pinned_subjects_are_403() {
    let c = config();
    let v = verifier(&c);
    match v.role_of(Some(&bearer(&token(&c, "postgres", None)))) {
        Err(Refusal::Forbidden(m)) => assert!(m.contains("`postgres`"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        v.role_of(Some(&bearer(&token(&c, "reader", Some("dashboard-bot")))))
            .unwrap(),
        "reader"
    );
    match v.role_of(Some(&bearer(&token(&c, "analyst", Some("dashboard-bot"))))) {
        Err(Refusal::Forbidden(m)) => assert!(m.contains("pinned"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_short_secret_is_refused() {
    assert!(Verifier::new(&config(), TokenKey::Secret(b"short".to_vec())).is_err());
}

/// Test-only key pairs, made with openssl for these tests.
fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name),
    )
    .unwrap()
}

fn signed(alg: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey, role: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &serde_json::json!({"role": role, "exp": chrono::Utc::now().timestamp() + 60, "aud": "pm", "iss": "pulsemetrics"}),
        key,
    )
    .unwrap()
}

#[test]
fn public_keys_check_rs256_and_es256_and_refuse_an_hs256_forgery() {
    let c = config();
    for (private, public, alg) in [
        (
            "es256.key.pem",
            "es256.pub.pem",
            jsonwebtoken::Algorithm::ES256,
        ),
        (
            "rs256.key.pem",
            "rs256.pub.pem",
            jsonwebtoken::Algorithm::RS256,
        ),
    ] {
        let v = Verifier::new(&c, TokenKey::PublicKeyPem(testdata(public))).unwrap();
        let key = match alg {
            jsonwebtoken::Algorithm::ES256 => {
                jsonwebtoken::EncodingKey::from_ec_pem(&testdata(private))
            }
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(&testdata(private)),
        }
        .unwrap();
        assert_eq!(
            v.role_of(Some(&bearer(&signed(alg, &key, "analyst"))))
                .unwrap(),
            "analyst"
        );
        // The public key used as an HS256 secret: the classic confusion.
        let forged = signed(
            jsonwebtoken::Algorithm::HS256,
            &jsonwebtoken::EncodingKey::from_secret(&testdata(public)).unwrap(),
            "analyst",
        );
        assert!(matches!(
            v.role_of(Some(&bearer(&forged))),
            Err(Refusal::Unauthenticated(_))
        ));
    }
    // A key that is not one.
    assert!(Verifier::new(&c, TokenKey::PublicKeyPem(b"not a key".to_vec())).is_err());
}

#[test]
fn a_token_not_valid_yet_or_without_an_end_is_401() {
    let c = config();
    let v = verifier(&c);
    let now = chrono::Utc::now().timestamp();
    let sign = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap()
    };
    let early = sign(
        serde_json::json!({"role": "reader", "nbf": now + 3600, "exp": now + 7200, "aud": "pm", "iss": "pulsemetrics"}),
    );
    match v.role_of(Some(&bearer(&early))) {
        Err(Refusal::Unauthenticated(m)) => assert!(m.contains("not valid yet"), "{m}"),
        other => panic!("{other:?}"),
    }
    let forever = sign(serde_json::json!({"role": "reader", "aud": "pm", "iss": "pulsemetrics"}));
    match v.role_of(Some(&bearer(&forever))) {
        Err(Refusal::Unauthenticated(m)) => assert!(m.contains("`exp`"), "{m}"),
        other => panic!("{other:?}"),
    }
}
