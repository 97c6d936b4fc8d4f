//! The methods of routes whose last path segment may carry a custom method (`:encrypt`,
//! `:reset`), which the router sees as one path parameter. A request with a method such a
//! route does not have gets 405 with the `Allow` header it would get from any other route,
//! before a handler tries to read it as something else.

use crate::error::Error;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sovra_proto::ErrorCode;

/// The methods `path` allows, when it is one of the routes above.
fn allowed(path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let last = segs.last().copied().unwrap_or_default();
    let verb = last.contains(':');
    match segs.as_slice() {
        ["v1", "locations", ..] if verb => Some("POST"),
        ["v1", "locations", _] => Some("GET,HEAD"),
        ["v1", "locations", _, "keyRings", _, "cryptoKeys", _]
        | [
            "v1",
            "locations",
            _,
            "keyRings",
            _,
            "cryptoKeys",
            _,
            "cryptoKeyVersions",
            _,
        ] => Some("GET,HEAD,PATCH"),
        ["v1", "locations", _, "keyRings", _, "deletedKeys", _] => Some("GET,HEAD"),
        ["policies", _] if verb => Some("POST"),
        ["policies", _] => Some("GET,HEAD,PUT"),
        _ => None,
    }
}

/// Answers 405 (with `Allow`) for a method the route does not have.
pub async fn guard(req: Request, next: Next) -> Response {
    if let Some(allow) = allowed(req.uri().path())
        && !allow.split(',').any(|m| req.method().as_str() == m)
    {
        let method = req.method().clone();
        let mut resp = Error::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "{method} is not a method of this route; it accepts {}",
                allow.replace(',', ", ")
            ),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return resp;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn custom_methods_are_post_and_resources_are_not() {
        let k = "/v1/locations/global/keyRings/r/cryptoKeys/k";
        assert_eq!(allowed(&format!("{k}:encrypt")), Some("POST"));
        assert_eq!(allowed(k), Some("GET,HEAD,PATCH"));
        assert_eq!(
            allowed(&format!("{k}/cryptoKeyVersions/1")),
            Some("GET,HEAD,PATCH")
        );
        assert_eq!(
            allowed(&format!("{k}/cryptoKeyVersions/1:destroy")),
            Some("POST")
        );
        assert_eq!(
            allowed("/v1/locations/global:generateRandomBytes"),
            Some("POST")
        );
        assert_eq!(allowed("/v1/locations/global"), Some("GET,HEAD"));
        // Collections are the router's: GET lists, POST creates.
        assert_eq!(allowed("/v1/locations/global/keyRings"), None);
        assert_eq!(allowed(&format!("{k}/cryptoKeyVersions")), None);
        assert_eq!(allowed("/policies/SevSnpVm:reset"), Some("POST"));
        assert_eq!(allowed("/policies/SevSnpVm"), Some("GET,HEAD,PUT"));
        assert_eq!(allowed("/v1/settings"), None);
        let d = "/v1/locations/global/keyRings/r/deletedKeys/k";
        assert_eq!(allowed(d), Some("GET,HEAD"));
        assert_eq!(allowed(&format!("{d}:recover")), Some("POST"));
    }
}
