//! The controller's reads from and writes to the API server, kept apart from the reconcile logic:
//! fetching what a resource refers to, the channels' cluster configuration, applying a channel's
//! Service and applying status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap as CoreConfigMap, Secret as CoreSecret, Service};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::feed::channel_config::{self, CONFIG_MAP_NAME};
use crate::resources::{ConfigMap, DocumentMeta};

use super::error::ControllerError;
use super::lookup::{Fetched, ObjectKey, References};

/// Field manager of every server-side apply and patch the controller makes.
pub const FIELD_MANAGER: &str = "kafka-bridge-controller";

#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// Where kafka-channel-config, the contract and the Lease live.
    pub system_namespace: String,
    pub cluster_domain: String,
}

impl Cluster {
    /// Reads every Secret and object in `refs`. A missing one is simply absent from the result
    /// (resolution then says what is missing); other failures are kept per object.
    pub async fn fetch(&self, refs: &References) -> Result<Fetched, ControllerError> {
        let mut fetched = Fetched::new(self.cluster_domain.clone());
        for (namespace, name) in &refs.secrets {
            if let Some(values) = self.secret(namespace, name).await? {
                fetched
                    .secrets
                    .insert((namespace.clone(), name.clone()), values);
            }
        }
        for key in refs.objects.iter().filter(|k| !k.is_core_service()) {
            match self.object_status(key).await {
                Ok(Some(status)) => {
                    fetched.objects.insert(key.clone(), status);
                }
                Ok(None) => {}
                Err(e) => {
                    fetched.unreadable.insert(key.clone(), e.to_string());
                }
            }
        }
        Ok(fetched)
    }

    /// `kafka-channel-config` and the auth Secret it names, into `fetched`; `None` when the
    /// ConfigMap does not exist.
    pub async fn channel_config(
        &self,
        fetched: &mut Fetched,
    ) -> Result<Option<ConfigMap>, ControllerError> {
        let api: Api<CoreConfigMap> = Api::namespaced(self.client.clone(), &self.system_namespace);
        let Some(core) = api.get_opt(CONFIG_MAP_NAME).await? else {
            return Ok(None);
        };
        let config = ConfigMap {
            metadata: DocumentMeta {
                name: core.metadata.name.clone(),
                namespace: core.metadata.namespace.clone(),
                ..DocumentMeta::default()
            },
            data: core.data.clone().unwrap_or_default(),
            ..ConfigMap::default()
        };
        if let Ok(Some(id)) = channel_config::auth_secret_id(&config) {
            if let Some(values) = self.secret(&id.namespace, &id.name).await? {
                fetched.secrets.insert((id.namespace, id.name), values);
            }
        }
        Ok(Some(config))
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ControllerError> {
        let api: Api<CoreSecret> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?.map(|secret| {
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
    }

    /// The `status` of a referenced object (`Null` when it has none), `None` when it does not
    /// exist. The resource's plural is derived from its kind, as Knative's own kinds follow.
    async fn object_status(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<serde_json::Value>, kube::Error> {
        let (group, version) = match key.api_version.rsplit_once('/') {
            Some((group, version)) => (group, version),
            None => ("", key.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &key.kind);
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &key.namespace, &resource);
        Ok(api.get_opt(&key.name).await?.map(|object| {
            object
                .data
                .get("status")
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        }))
    }

    /// Creates or updates a channel's Service with server-side apply.
    pub async fn apply_service(&self, service: &Service) -> Result<(), kube::Error> {
        let namespace = service.metadata.namespace.as_deref().unwrap_or_default();
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let mut body = serde_json::to_value(service).map_err(kube::Error::SerdeError)?;
        body["apiVersion"] = "v1".into();
        body["kind"] = "Service".into();
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await?;
        Ok(())
    }

    /// Writes `status` on `object` by server-side apply of the status subresource: a field the
    /// controller set before and leaves out now (a sink URI that no longer resolves) is removed.
    pub async fn patch_status<K>(
        &self,
        object: &K,
        status: &impl Serialize,
    ) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let namespace = object.namespace().unwrap_or_default();
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        Ok(())
    }
}
