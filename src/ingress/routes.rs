//! The live route table: which channel a request is for, changed by the engine while requests
//! are served. Readers never lock: the table is an immutable map behind an [`ArcSwap`], replaced
//! whole on every change (changes are rare, lookups are per request).
//!
//! Routing follows Knative's channel receiver: the path `/NS/NAME` first, then the Host header
//! `NAME-kn-channel.NS[.svc[.CLUSTER-DOMAIN]][:PORT]` with any path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use super::producer::ChannelProducer;
use crate::engine::plan::{ChannelPlan, ResourceId};
use crate::metrics::{IngressMetrics, Metrics};

/// The `kind` label of channel series.
const KIND: &str = "KafkaChannel";
/// What a channel's Service name adds to the channel name.
const SERVICE_SUFFIX: &str = "-kn-channel";

/// Where a routed request goes.
#[derive(Debug)]
pub struct Route {
    pub id: ResourceId,
    pub topic: String,
    pub producer: ChannelProducer,
    pub metrics: IngressMetrics,
}

/// namespace -> name -> route; nested so a lookup borrows `&str`s from the request.
type Table = HashMap<String, HashMap<String, Arc<Route>>>;

/// The channels the ingress serves. Cheap to clone; every clone sees the same table.
#[derive(Clone)]
pub struct Routes {
    inner: Arc<Inner>,
}

struct Inner {
    table: ArcSwap<Table>,
    /// Serialises writers so that two concurrent changes cannot lose one another.
    writer: Mutex<()>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.inner.table.load();
        let mut ids: Vec<String> = table
            .values()
            .flat_map(|names| names.values().map(|r| r.id.to_string()))
            .collect();
        ids.sort();
        f.debug_struct("Routes").field("channels", &ids).finish()
    }
}

impl Routes {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                table: ArcSwap::from_pointee(Table::new()),
                writer: Mutex::new(()),
                metrics,
            }),
        }
    }

    /// Serves `channel` (replacing an earlier route of the same channel) through `producer`.
    pub fn insert(&self, channel: &ChannelPlan, producer: ChannelProducer) {
        let route = Arc::new(Route {
            id: channel.id.clone(),
            topic: channel.topic.clone(),
            producer,
            metrics: self.inner.metrics.ingress(KIND, &channel.id),
        });
        self.update(|table| {
            table
                .entry(channel.id.namespace.clone())
                .or_default()
                .insert(channel.id.name.clone(), route);
        });
    }

    /// Stops serving `id`; requests already routed finish. Returns whether it was served.
    pub fn remove(&self, id: &ResourceId) -> bool {
        let mut removed = false;
        self.update(|table| {
            if let Some(names) = table.get_mut(&id.namespace) {
                removed = names.remove(&id.name).is_some();
                if names.is_empty() {
                    table.remove(&id.namespace);
                }
            }
        });
        removed
    }

    /// The route of `id`, if served.
    pub fn get(&self, id: &ResourceId) -> Option<Arc<Route>> {
        self.lookup(&id.namespace, &id.name)
    }

    /// The route of a request: by path first, then by host (`None`: no Host header).
    pub fn find(&self, path: &str, host: Option<&str>) -> Option<Arc<Route>> {
        let table = self.inner.table.load();
        if let Some((namespace, name)) = channel_from_path(path) {
            if let Some(route) = lookup_in(&table, namespace, name) {
                return Some(route);
            }
        }
        let host = host?;
        // Host names are case-insensitive; Kubernetes names are lowercase. Lowercasing costs an
        // allocation, so only hosts that need it pay for it.
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            let lower = host.to_ascii_lowercase();
            let (namespace, name) = channel_from_host(&lower)?;
            return lookup_in(&table, namespace, name);
        }
        let (namespace, name) = channel_from_host(host)?;
        lookup_in(&table, namespace, name)
    }

    fn lookup(&self, namespace: &str, name: &str) -> Option<Arc<Route>> {
        lookup_in(&self.inner.table.load(), namespace, name)
    }

    fn update(&self, change: impl FnOnce(&mut Table)) {
        // The guard protects no data of its own, so a panic elsewhere leaves nothing torn.
        let _writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut table = Table::clone(&self.inner.table.load());
        change(&mut table);
        self.inner.table.store(Arc::new(table));
    }
}

fn lookup_in(table: &Table, namespace: &str, name: &str) -> Option<Arc<Route>> {
    table.get(namespace)?.get(name).cloned()
}

/// `/NS/NAME` (a trailing `/` allowed) as (namespace, name).
fn channel_from_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (namespace, name) = rest.split_once('/')?;
    if namespace.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    Some((namespace, name))
}

/// `NAME-kn-channel.NS`, optionally followed by `.svc`, a cluster domain after it, and a port, as
/// (namespace, name). Any cluster domain is accepted: the ingress does not know the cluster's,
/// and the namespace and name alone identify the channel.
fn channel_from_host(host: &str) -> Option<(&str, &str)> {
    let host = strip_port(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    let (service, rest) = host.split_once('.')?;
    let (namespace, domain) = match rest.split_once('.') {
        Some((namespace, domain)) => (namespace, Some(domain)),
        None => (rest, None),
    };
    match domain {
        None | Some("svc") => {}
        Some(domain) => {
            domain.strip_prefix("svc.").filter(|d| !d.is_empty())?;
        }
    }
    let name = service.strip_suffix(SERVICE_SUFFIX)?;
    if name.is_empty() || namespace.is_empty() {
        return None;
    }
    Some((namespace, name))
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let cases = [
            ("/ns/ch", Some(("ns", "ch"))),
            ("/ns/ch/", Some(("ns", "ch"))),
            ("/ns/ch/extra", None),
            ("/ns", None),
            ("/", None),
            ("", None),
            ("//ch", None),
            ("/ns//", None),
            ("ns/ch", None),
        ];
        for (path, want) in cases {
            assert_eq!(channel_from_path(path), want, "{path:?}");
        }
    }

    #[test]
    fn hosts() {
        let cases = [
            ("ch-kn-channel.ns.svc.cluster.local", Some(("ns", "ch"))),
            (
                "ch-kn-channel.ns.svc.cluster.local:8080",
                Some(("ns", "ch")),
            ),
            ("ch-kn-channel.ns.svc.cluster.local.", Some(("ns", "ch"))),
            ("ch-kn-channel.ns.svc.example.org", Some(("ns", "ch"))),
            ("ch-kn-channel.ns.svc", Some(("ns", "ch"))),
            ("ch-kn-channel.ns.svc:80", Some(("ns", "ch"))),
            ("ch-kn-channel.ns", Some(("ns", "ch"))),
            ("ch-kn-channel.ns:80", Some(("ns", "ch"))),
            ("my-kn-channel-kn-channel.ns", Some(("ns", "my-kn-channel"))),
            ("ch-kn-channel.ns.cluster.local", None),
            ("ch-kn-channel.ns.svc.", Some(("ns", "ch"))),
            ("ch.ns.svc.cluster.local", None),
            ("-kn-channel.ns", None),
            ("ch-kn-channel", None),
            ("ch-kn-channel.", None),
            ("127.0.0.1:8080", None),
            ("localhost", None),
            ("", None),
        ];
        for (host, want) in cases {
            assert_eq!(channel_from_host(host), want, "{host:?}");
        }
    }
}
