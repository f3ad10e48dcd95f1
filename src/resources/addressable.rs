//! Knative's Addressable duck type: the `status.address` a sink `ref` resolves to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One address of an Addressable (`duck/v1.Addressable`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Addressable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "CACerts", default, skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// The address part of any Addressable's status: `address` and, newer, `addresses[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Addressable>,
}

impl AddressStatus {
    /// The address Knative's resolver picks: with a name, the first of `addresses` with that
    /// name (never `address`); without, the first of `addresses`, else `address`.
    pub fn select(&self, name: Option<&str>) -> Option<&Addressable> {
        match name.filter(|n| !n.is_empty()) {
            Some(name) => self
                .addresses
                .iter()
                .find(|a| a.name.as_deref() == Some(name)),
            None => self.addresses.first().or(self.address.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, url: &str) -> Addressable {
        Addressable {
            name: name.map(Into::into),
            url: Some(url.into()),
            ..Default::default()
        }
    }

    #[test]
    fn selects_like_knative() {
        let status = AddressStatus {
            address: Some(addr(None, "http://single")),
            addresses: vec![addr(Some("a"), "http://a"), addr(Some("b"), "http://b")],
        };
        let only_address = AddressStatus {
            address: Some(addr(None, "http://single")),
            addresses: vec![],
        };
        let url = |a: Option<&Addressable>| a.and_then(|a| a.url.clone());
        assert_eq!(url(status.select(None)), Some("http://a".into()));
        assert_eq!(url(status.select(Some(""))), Some("http://a".into()));
        assert_eq!(url(status.select(Some("b"))), Some("http://b".into()));
        assert_eq!(url(status.select(Some("c"))), None);
        assert_eq!(url(only_address.select(None)), Some("http://single".into()));
        assert_eq!(url(only_address.select(Some("a"))), None);
        assert_eq!(url(AddressStatus::default().select(None)), None);
    }
}
