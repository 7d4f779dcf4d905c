//! The JSON Web Key Set of the managed signing keys (`GET /.well-known/jwks.json`): the
//! public JWK of every pending ("next"), current and previous version whose `public` holds
//! one, current first. Only public members are copied out, so a private member (`d`) or
//! anything else stored beside a key can never be published.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

/// The members of a public JWK that are published; everything else is dropped.
const PUBLIC_MEMBERS: &[&str] = &["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"];

/// `{"keys": [...]}`: current keys first, then pending ("next"), then previous.
pub async fn document(pool: &PgPool) -> sqlx::Result<serde_json::Value> {
    let jwks: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT public->'jwk' FROM secret_versions
         WHERE public ? 'jwk' AND state IN ('pending', 'current', 'previous')
         ORDER BY CASE state WHEN 'current' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END,
                  secret, version DESC",
    )
    .fetch_all(pool)
    .await?;
    let keys: Vec<serde_json::Value> = jwks.iter().filter_map(public_only).collect();
    Ok(serde_json::json!({ "keys": keys }))
}

/// The public members of a JWK, or `None` if it is not an asymmetric key (a symmetric
/// `oct` key or anything without a key type is never published).
fn public_only(jwk: &serde_json::Value) -> Option<serde_json::Value> {
    let object = jwk.as_object()?;
    let kty = object.get("kty")?.as_str()?;
    if !matches!(kty, "OKP" | "EC" | "RSA") {
        return None;
    }
    let kept: serde_json::Map<String, serde_json::Value> = object
        .iter()
        .filter(|(k, _)| PUBLIC_MEMBERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(serde_json::Value::Object(kept))
}

/// The HTTP answer: the document with `Cache-Control: max-age=300`, or 503 without detail.
pub async fn response(pool: &PgPool) -> Response {
    match document(pool).await {
        Ok(doc) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            doc.to_string(),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "jwks: the key set could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, "no-store")],
                "key set unavailable\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_members_and_symmetric_keys_are_never_published() {
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": "pub", "d": "PRIVATE", "kid": "k1",
            "alg": "EdDSA", "use": "sig", "extra": "x"
        });
        let out = public_only(&jwk).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "pub", "kid": "k1",
                               "alg": "EdDSA", "use": "sig"})
        );
        assert!(public_only(&serde_json::json!({"kty": "oct", "k": "secret"})).is_none());
        assert!(public_only(&serde_json::json!({"x": "no kty"})).is_none());
    }
}
