//! Resolving a Knative `Destination` into a delivery [`Target`], as Knative's URI resolver does:
//! `uri` alone must be an absolute http(s) URL; `ref` resolves to the referent's address; `ref`
//! plus `uri` resolves `uri` relative to that address.

use url::Url;

use crate::delivery::policy::Target;
use crate::resources::{Addressable, Destination, KReference};

use super::resolve::{FieldError, Lookup};

/// Resolves `dest`, found at `field` of an object in `namespace`.
pub(super) fn resolve(
    dest: &Destination,
    field: &str,
    namespace: &str,
    lookup: &impl Lookup,
) -> Result<Target, FieldError> {
    let dest_ca = dest.ca_certs.clone().filter(|c| !c.trim().is_empty());
    if dest.audience.as_deref().is_some_and(|a| !a.is_empty()) {
        // OIDC tokens need a cluster's token service; standalone delivery sends none.
        tracing::warn!("{field}.audience is set but OIDC authentication is not supported; ignored");
    }
    let Some(kref) = &dest.ref_ else {
        let Some(uri) = &dest.uri else {
            return Err(FieldError::new(
                field,
                "expected a `ref` or a `uri`, got neither",
            ));
        };
        return absolute(uri, dest_ca.as_deref(), &format!("{field}.uri"));
    };

    let kref = checked_ref(kref, &format!("{field}.ref"), namespace)?;
    let address = lookup
        .address(&kref)
        .map_err(|reason| FieldError::new(format!("{field}.ref"), reason))?;
    let base = address_url(&address, &kref, &format!("{field}.ref"))?;
    let url = match &dest.uri {
        None => base,
        Some(uri) => {
            relative_to(&base, uri).map_err(|p| FieldError::new(format!("{field}.uri"), p))?
        }
    };
    // The Destination's CA certificates take precedence over the Addressable's, as in Knative.
    let ca_certs = dest_ca.or(address.ca_certs.filter(|c| !c.trim().is_empty()));
    Ok(Target { url, ca_certs })
}

/// A target given as an absolute http(s) URL at `field` (a `uri` without `ref`, a channel
/// subscriber's `subscriberUri`), with the PEM CA certificates given alongside it.
pub(super) fn absolute(
    uri: &str,
    ca_certs: Option<&str>,
    field: &str,
) -> Result<Target, FieldError> {
    let url = absolute_http_url(uri).map_err(|p| FieldError::new(field, p))?;
    let ca_certs = ca_certs.filter(|c| !c.trim().is_empty()).map(str::to_owned);
    Ok(Target { url, ca_certs })
}

/// The reference with its namespace defaulted, after Knative's `KReference` validation.
fn checked_ref(kref: &KReference, field: &str, namespace: &str) -> Result<KReference, FieldError> {
    let missing = |name: &str| FieldError::new(format!("{field}.{name}"), "required");
    if kref.kind.is_empty() {
        return Err(missing("kind"));
    }
    if kref.name.is_empty() {
        return Err(missing("name"));
    }
    if kref.api_version.is_empty() && kref.group.as_deref().unwrap_or("").is_empty() {
        return Err(missing("apiVersion"));
    }
    let mut kref = kref.clone();
    match kref.namespace.as_deref() {
        None | Some("") => kref.namespace = Some(namespace.to_owned()),
        // Knative rejects references across namespaces unless a feature flag allows them.
        Some(other) if other != namespace => {
            return Err(FieldError::new(
                format!("{field}.namespace"),
                format!("{other:?} differs from the referring object's namespace {namespace:?}"),
            ))
        }
        Some(_) => {}
    }
    Ok(kref)
}

fn address_url(address: &Addressable, kref: &KReference, field: &str) -> Result<Url, FieldError> {
    let shown = describe(kref);
    let Some(text) = address.url.as_deref().filter(|u| !u.is_empty()) else {
        return Err(FieldError::new(
            field,
            format!("{shown} has no URL in its address"),
        ));
    };
    absolute_http_url(text).map_err(|p| FieldError::new(field, format!("{shown}: address {p}")))
}

/// `apiVersion Kind namespace/name`, for messages.
pub(super) fn describe(kref: &KReference) -> String {
    let version = if kref.api_version.is_empty() {
        kref.group.as_deref().unwrap_or_default()
    } else {
        &kref.api_version
    };
    let namespace = kref.namespace.as_deref().unwrap_or_default();
    format!("{version} {} {namespace}/{}", kref.kind, kref.name)
}

fn absolute_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            format!("{text:?} is relative; without a `ref` the URL must be absolute")
        }
        e => format!("{text:?} is not a valid URL: {e}"),
    })?;
    check_http(url)
}

fn check_http(url: Url) -> Result<Url, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{:?} must use http or https", url.as_str()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{:?} has no host", url.as_str()));
    }
    Ok(url)
}

fn relative_to(base: &Url, uri: &str) -> Result<Url, String> {
    if Url::parse(uri).is_ok() {
        return Err(format!(
            "{uri:?} is absolute; with a `ref` it must be a relative path"
        ));
    }
    let joined = base
        .join(uri)
        .map_err(|e| format!("{uri:?} is not a valid relative URL: {e}"))?;
    check_http(joined)
}
