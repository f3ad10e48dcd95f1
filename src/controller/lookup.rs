//! What a reconcile reads besides the resource itself, gathered before the pure resolution runs:
//! [`References`] lists the Secrets and referenced objects a resource names, the controller
//! fetches them, and [`Fetched`] answers the feeds' [`Lookup`] from what was fetched. So the
//! cluster resolves resources with the same code, defaults and messages as standalone files.

use std::collections::{BTreeMap, BTreeSet};

use crate::feed::resolve::{Lookup, DEFAULT_NAMESPACE};
use crate::resources::{
    AddressStatus, Addressable, Destination, KReference, KafkaChannel, KafkaSource,
    SecretValueFromSource,
};

/// A referenced object, by `apiVersion`, `kind`, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    fn of(kref: &KReference, namespace: &str) -> Self {
        Self {
            api_version: kref.api_version.clone(),
            kind: kref.kind.clone(),
            namespace: kref
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| namespace.to_owned()),
            name: kref.name.clone(),
        }
    }

    /// A core `v1` Service: addressable by its cluster DNS name without reading it.
    pub fn is_core_service(&self) -> bool {
        self.api_version == "v1" && self.kind == "Service"
    }
}

/// The Secrets (namespace, name) and objects a resource refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub secrets: BTreeSet<(String, String)>,
    pub objects: BTreeSet<ObjectKey>,
}

impl References {
    pub fn of_source(source: &KafkaSource) -> Self {
        let ns = namespace(source.metadata.namespace.as_deref());
        let mut refs = Self::default();
        let net = &source.spec.net;
        let values: [&SecretValueFromSource; 8] = [
            &net.sasl.user,
            &net.sasl.password,
            &net.sasl.type_,
            &net.sasl.role_arn,
            &net.sasl.token_provider,
            &net.tls.cert,
            &net.tls.key,
            &net.tls.ca_cert,
        ];
        for selector in values.iter().filter_map(|v| v.secret_key_ref.as_ref()) {
            if !selector.name.is_empty() {
                refs.secrets.insert((ns.to_owned(), selector.name.clone()));
            }
        }
        refs.destination(&source.spec.sink, ns);
        if let Some(dls) = source
            .spec
            .delivery
            .as_ref()
            .and_then(|d| d.dead_letter_sink.as_ref())
        {
            refs.destination(dls, ns);
        }
        refs
    }

    pub fn of_channel(channel: &KafkaChannel) -> Self {
        let ns = namespace(channel.metadata.namespace.as_deref());
        let mut refs = Self::default();
        let deliveries = channel.spec.delivery.iter().chain(
            channel
                .spec
                .subscribers
                .iter()
                .filter_map(|s| s.delivery.as_ref()),
        );
        for dls in deliveries.filter_map(|d| d.dead_letter_sink.as_ref()) {
            refs.destination(dls, ns);
        }
        refs
    }

    fn destination(&mut self, dest: &Destination, namespace: &str) {
        if let Some(kref) = &dest.ref_ {
            if !kref.kind.is_empty() && !kref.name.is_empty() {
                self.objects.insert(ObjectKey::of(kref, namespace));
            }
        }
    }
}

/// What the controller found for the [`References`] of one resource.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Decoded values (`data`) of each Secret found.
    pub secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
    /// `status` of each object found (`Null` when it has none); absent when it does not exist.
    pub objects: BTreeMap<ObjectKey, serde_json::Value>,
    /// Objects that could not be read, with why (other than "not found").
    pub unreadable: BTreeMap<ObjectKey, String>,
    /// Cluster DNS suffix for Service addresses.
    pub cluster_domain: String,
}

impl Fetched {
    pub fn new(cluster_domain: impl Into<String>) -> Self {
        Self {
            cluster_domain: cluster_domain.into(),
            ..Self::default()
        }
    }
}

impl Lookup for Fetched {
    fn secret(&self, namespace: &str, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        self.secrets.get(&(namespace.to_owned(), name.to_owned()))
    }

    fn address(&self, kref: &KReference) -> Result<Addressable, String> {
        if kref.api_version.is_empty() {
            return Err("give `apiVersion`: resolving a `group` alone is not supported".into());
        }
        let key = ObjectKey::of(kref, DEFAULT_NAMESPACE);
        let shown = format!(
            "{} {} {}/{}",
            key.api_version, key.kind, key.namespace, key.name
        );
        if key.is_core_service() {
            return Ok(Addressable {
                url: Some(format!(
                    "http://{}.{}.svc.{}",
                    key.name, key.namespace, self.cluster_domain
                )),
                ..Addressable::default()
            });
        }
        if let Some(reason) = self.unreadable.get(&key) {
            return Err(format!("cannot read {shown}: {reason}"));
        }
        let Some(status) = self.objects.get(&key) else {
            return Err(format!("{shown} not found"));
        };
        let status: AddressStatus = match status {
            serde_json::Value::Null => AddressStatus::default(),
            status => serde_json::from_value(status.clone())
                .map_err(|e| format!("{shown} has a malformed status: {e}"))?,
        };
        match status.select(kref.address.as_deref()) {
            Some(address) if address.url.as_deref().is_some_and(|u| !u.is_empty()) => {
                Ok(address.clone())
            }
            _ => Err(format!(
                "{shown} is not addressable yet: its status has no address URL"
            )),
        }
    }
}

fn namespace(ns: Option<&str>) -> &str {
    ns.filter(|n| !n.is_empty()).unwrap_or(DEFAULT_NAMESPACE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(yaml: &str) -> KafkaSource {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn kref(api_version: &str, kind: &str, name: &str) -> KReference {
        KReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: Some("ns".into()),
            ..KReference::default()
        }
    }

    fn key(api_version: &str, kind: &str, name: &str) -> ObjectKey {
        ObjectKey::of(&kref(api_version, kind, name), "ns")
    }

    #[test]
    fn a_source_names_its_secrets_sink_and_dead_letter_sink() {
        let s = source(
            r#"
metadata: {name: s, namespace: ns}
spec:
  net:
    sasl:
      enable: true
      user: {secretKeyRef: {name: auth, key: user}}
      password: {secretKeyRef: {name: auth, key: password}}
    tls: {enable: true, caCert: {secretKeyRef: {name: tls, key: ca}}}
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: svc}}
  delivery: {deadLetterSink: {ref: {apiVersion: v1, kind: Service, name: dls}}}
"#,
        );
        let refs = References::of_source(&s);
        let secrets: Vec<_> = refs
            .secrets
            .iter()
            .map(|(n, s)| format!("{n}/{s}"))
            .collect();
        assert_eq!(secrets, ["ns/auth", "ns/tls"]);
        assert_eq!(
            refs.objects.into_iter().collect::<Vec<_>>(),
            [
                key("serving.knative.dev/v1", "Service", "svc"),
                key("v1", "Service", "dls")
            ]
        );
    }

    #[test]
    fn a_channel_names_every_dead_letter_sink() {
        let c: KafkaChannel = serde_yaml_ng::from_str(
            r#"
metadata: {name: c, namespace: ns}
spec:
  delivery: {deadLetterSink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: b}}}
  subscribers:
    - {uid: u1, subscriberUri: "http://a", delivery: {deadLetterSink: {uri: "http://x"}}}
    - {uid: u2, subscriberUri: "http://b", delivery: {deadLetterSink: {ref: {apiVersion: v1, kind: Service, name: s}}}}
"#,
        )
        .unwrap();
        let refs = References::of_channel(&c);
        assert!(refs.secrets.is_empty());
        assert_eq!(
            refs.objects.into_iter().collect::<Vec<_>>(),
            [
                key("eventing.knative.dev/v1", "Broker", "b"),
                key("v1", "Service", "s")
            ]
        );
    }

    #[test]
    fn addresses_resolve_like_knatives_resolver() {
        let mut fetched = Fetched::new("cluster.local");
        fetched.objects.insert(
            key("serving.knative.dev/v1", "Service", "ready"),
            json!({"address": {"url": "http://ready.ns.example.com"},
                   "addresses": [{"name": "https", "url": "https://ready.ns.example.com"}]}),
        );
        fetched.objects.insert(
            key("serving.knative.dev/v1", "Service", "pending"),
            json!(null),
        );
        fetched.unreadable.insert(
            key("eventing.knative.dev/v1", "Broker", "b"),
            "forbidden".into(),
        );
        let url = |r: Result<Addressable, String>| r.map(|a| a.url.unwrap_or_default());
        assert_eq!(
            url(fetched.address(&kref("v1", "Service", "plain"))),
            Ok("http://plain.ns.svc.cluster.local".into())
        );
        assert_eq!(
            url(fetched.address(&kref("serving.knative.dev/v1", "Service", "ready"))),
            Ok("https://ready.ns.example.com".into()),
            "addresses[] first, as Knative picks"
        );
        let mut named = kref("serving.knative.dev/v1", "Service", "ready");
        named.address = Some("https".into());
        assert_eq!(
            url(fetched.address(&named)),
            Ok("https://ready.ns.example.com".into())
        );
        let errors = [
            (
                kref("serving.knative.dev/v1", "Service", "pending"),
                "not addressable yet",
            ),
            (
                kref("serving.knative.dev/v1", "Service", "absent"),
                "not found",
            ),
            (
                kref("eventing.knative.dev/v1", "Broker", "b"),
                "cannot read",
            ),
            (kref("", "Broker", "b"), "apiVersion"),
        ];
        for (r, expected) in errors {
            let err = fetched.address(&r).unwrap_err();
            assert!(err.contains(expected), "{r:?}: {err}");
        }
    }
}
