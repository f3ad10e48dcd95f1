//! The controller's calls to the API server, checked one request at a time against a mock API
//! server (tower-test): which object it reads and writes, with which verb and body, in order. The
//! data plane's `/status` is a real HTTP server on loopback; channel topics are created on and
//! deleted from the real broker.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::ByteString;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{json, Value};
use tower_test::mock::Handle;

use kafka_bridge::controller::channel::IngressService;
use kafka_bridge::controller::cluster::Cluster;
use kafka_bridge::controller::contract_store::ContractStore;
use kafka_bridge::controller::dataplane::DataPlaneClient;
use kafka_bridge::controller::leader::{Elector, LeaseSettings};
use kafka_bridge::controller::lookup::Fetched;
use kafka_bridge::controller::reconcile::{reconcile_channel, reconcile_source, Backoff, Context};
use kafka_bridge::controller::source::desired;
use kafka_bridge::engine::contract::Contract;
use kafka_bridge::engine::plan::Plan;
use kafka_bridge::engine::report::{ChannelReport, Report, SourceReport, SubscriberReport};
use kafka_bridge::kafka::client_config::ClientSettings;
use kafka_bridge::resources::{KafkaChannel, KafkaSource};

const SYSTEM: &str = "knative-eventing";
const CONTRACT_PATH: &str = "/api/v1/namespaces/knative-eventing/secrets/kafka-bridge-contract";
const SOURCE_PATH: &str = "/apis/sources.knative.dev/v1beta1/namespaces/ns/kafkasources/s";
const SECRETS_PATH: &str = "/api/v1/namespaces/knative-eventing/secrets";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";
const CONFIG_PATH: &str = "/api/v1/namespaces/knative-eventing/configmaps/kafka-channel-config";
/// Every mock exchange is bounded.
const WAIT: Duration = Duration::from_secs(10);

/// The mock API server's side: takes the controller's requests in order.
struct ApiServer(Handle<Request<Body>, Response<Body>>);

/// One request the controller made.
struct Seen {
    method: String,
    path_and_query: String,
    content_type: String,
    body: Value,
}

impl ApiServer {
    /// Takes the next request, checks its method and path, answers `status` with what `reply`
    /// makes of the request body.
    async fn expect(
        &mut self,
        method: &str,
        path: &str,
        status: u16,
        reply: impl FnOnce(&Value) -> Value,
    ) -> Seen {
        let (request, respond) = tokio::time::timeout(WAIT, self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        let seen = Seen {
            method: request.method().to_string(),
            path_and_query: request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            content_type: request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: {
                let bytes = request.into_body().collect_bytes().await.unwrap();
                if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).unwrap()
                }
            },
        };
        assert_eq!(
            (
                seen.method.as_str(),
                seen.path_and_query.split('?').next().unwrap()
            ),
            (method, path),
            "unexpected request {} {}",
            seen.method,
            seen.path_and_query
        );
        let reply = if status >= 400 {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
                   "reason": "NotFound", "message": "not found"})
        } else {
            reply(&seen.body)
        };
        respond.send_response(
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        seen
    }

    /// Checks the controller makes no further request within a short while.
    async fn expect_nothing(&mut self) {
        if let Ok(Some((request, _))) =
            tokio::time::timeout(Duration::from_millis(300), self.0.next_request()).await
        {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

/// A data plane `/status` on loopback whose report the test sets.
async fn dataplane(report: Report) -> (String, Arc<Mutex<Report>>) {
    let shared = Arc::new(Mutex::new(report));
    let state = Arc::clone(&shared);
    let app = axum::Router::new().route(
        "/status",
        axum::routing::get(move || {
            let state = Arc::clone(&state);
            async move { serde_json::to_string(&*state.lock().unwrap()).unwrap() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/status", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, shared)
}

/// Replies: the request body itself, with a `resourceVersion` as the API server adds one.
fn stored(body: &Value) -> Value {
    let mut body = body.clone();
    body["metadata"]["resourceVersion"] = json!("1");
    body
}

/// Replies: a fixed object.
fn object(value: Value) -> impl FnOnce(&Value) -> Value {
    move |_| value
}

fn none(_: &Value) -> Value {
    Value::Null
}

fn context(status_url: &str) -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let ctx = Context {
        cluster: Cluster {
            client: client.clone(),
            system_namespace: SYSTEM.into(),
            cluster_domain: "cluster.local".into(),
        },
        contract: ContractStore::new(client.clone(), SYSTEM),
        dataplane: DataPlaneClient::new(status_url).unwrap(),
        ingress: IngressService {
            name: "kafka-bridge-ingress".into(),
            namespace: SYSTEM.into(),
            cluster_domain: "cluster.local".into(),
        },
        kafka: ClientSettings::default(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "kafka-bridge-controller".into(),
                instance: Some("test".into()),
            },
        ),
        backoff: Backoff::default(),
    };
    (Arc::new(ctx), ApiServer(handle))
}

fn source(finalizers: &[&str], deleting: bool) -> Value {
    let mut value = json!({
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": {"name": "s", "namespace": "ns", "uid": "s-uid", "generation": 4,
                     "resourceVersion": "10", "finalizers": finalizers},
        "spec": {"bootstrapServers": ["kafka:9092"], "topics": ["t"],
                 "sink": {"uri": "http://sink.ns.svc.cluster.local/in"}}
    });
    if deleting {
        value["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    value
}

fn kafka_source(value: &Value) -> Arc<KafkaSource> {
    Arc::new(serde_json::from_value(value.clone()).unwrap())
}

fn source_report(ready: bool) -> Report {
    Report {
        revision: 1,
        sources: vec![SourceReport {
            namespace: "ns".into(),
            name: "s".into(),
            generation: 4,
            ready,
        }],
        channels: vec![],
    }
}

/// The contract inside a Secret body the controller wrote.
fn contract_of(secret: &Value) -> Contract {
    let bytes: ByteString =
        serde_json::from_value(secret["data"]["contract.json"].clone()).unwrap();
    Contract::from_json(&bytes.0).unwrap()
}

fn ready_condition(status: &Value) -> (String, Option<String>) {
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    (
        ready["status"].as_str().unwrap().to_owned(),
        ready["reason"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn a_new_source_first_gets_the_finalizer() {
    let (url, _) = dataplane(source_report(true)).await;
    let (ctx, mut api) = context(&url);
    let task = tokio::spawn(reconcile_source(kafka_source(&source(&[], false)), ctx));
    let with_finalizer = source(&["kafkasources.sources.knative.dev"], false);
    let patch = api
        .expect("PATCH", SOURCE_PATH, 200, object(with_finalizer))
        .await;
    assert_eq!(patch.content_type, "application/json-patch+json");
    let ops = patch.body.as_array().unwrap();
    let add = ops.iter().find(|op| op["op"] == "add").unwrap();
    assert_eq!(add["path"], "/metadata/finalizers");
    assert_eq!(add["value"], json!(["kafkasources.sources.knative.dev"]));
    let action = task.await.unwrap().unwrap();
    assert_eq!(
        action,
        Action::await_change(),
        "the patch itself triggers the next reconcile"
    );
    api.expect_nothing().await;
}

#[tokio::test]
async fn a_source_is_published_then_its_status_written_once() {
    let (url, _) = dataplane(source_report(true)).await;
    let (ctx, mut api) = context(&url);
    let s = source(&["kafkasources.sources.knative.dev"], false);
    let task = tokio::spawn(reconcile_source(kafka_source(&s), Arc::clone(&ctx)));

    api.expect("GET", CONTRACT_PATH, 404, none).await;
    let created = api.expect("POST", SECRETS_PATH, 201, stored).await;
    assert_eq!(created.body["metadata"]["name"], "kafka-bridge-contract");
    let contract = contract_of(&created.body);
    assert_eq!(contract.revision, 1);
    assert_eq!(contract.plan.sources.len(), 1);
    let plan = &contract.plan.sources[0];
    assert_eq!(
        (plan.id.namespace.as_str(), plan.id.name.as_str()),
        ("ns", "s")
    );
    assert_eq!(plan.generation, 4);
    assert_eq!(
        plan.sink.url.as_str(),
        "http://sink.ns.svc.cluster.local/in"
    );

    let event = api.expect("POST", EVENTS_PATH, 201, stored).await;
    assert_eq!(event.body["type"], "Normal");
    assert_eq!(event.body["reason"], "Ready");
    assert_eq!(event.body["regarding"]["name"], "s");

    let status = api
        .expect(
            "PATCH",
            &format!("{SOURCE_PATH}/status"),
            200,
            object(s.clone()),
        )
        .await;
    assert_eq!(status.content_type, "application/apply-patch+yaml");
    assert!(status
        .path_and_query
        .contains("fieldManager=kafka-bridge-controller"));
    assert!(status.path_and_query.contains("force=true"));
    assert_eq!(status.body["kind"], "KafkaSource");
    let written = &status.body["status"];
    assert_eq!(ready_condition(written), ("True".into(), None));
    assert_eq!(written["observedGeneration"], 4);
    assert_eq!(written["sinkUri"], "http://sink.ns.svc.cluster.local/in");
    assert_eq!(
        written["ceAttributes"],
        json!([{"type": "dev.knative.kafka.event",
                "source": "/apis/v1/namespaces/ns/kafkasources/s#t"}])
    );
    let action = task.await.unwrap().unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));

    // The same source, now with that status: nothing to write, nothing to announce.
    let mut again = s;
    again["status"] = written.clone();
    let task = tokio::spawn(reconcile_source(kafka_source(&again), ctx));
    api.expect_nothing().await;
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_source_waiting_for_the_data_plane_is_looked_at_again_soon() {
    let (url, _) = dataplane(source_report(false)).await;
    let (ctx, mut api) = context(&url);
    let s = source(&["kafkasources.sources.knative.dev"], false);
    let task = tokio::spawn(reconcile_source(kafka_source(&s), ctx));
    api.expect("GET", CONTRACT_PATH, 404, none).await;
    api.expect("POST", SECRETS_PATH, 201, stored).await;
    let status = api
        .expect("PATCH", &format!("{SOURCE_PATH}/status"), 200, object(s))
        .await;
    assert_eq!(
        ready_condition(&status.body["status"]),
        ("Unknown".into(), Some("NotReady".into())),
        "and no Event for Unknown"
    );
    assert_eq!(
        task.await.unwrap().unwrap(),
        Action::requeue(Duration::from_secs(2))
    );
}

#[tokio::test]
async fn a_deleted_source_leaves_the_contract_before_its_finalizer_goes() {
    let (url, _) = dataplane(Report::default()).await;
    let (ctx, mut api) = context(&url);
    // The contract holds the source and another one.
    let fetched = Fetched::new("cluster.local");
    let running = desired(&kafka_source(&source(&[], false)), &fetched).unwrap();
    let mut other = running.clone();
    other.id.name = "other".into();
    let plan = Plan {
        sources: vec![Arc::new(running), Arc::new(other)],
        ..Plan::default()
    };
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "kafka-bridge-contract", "namespace": SYSTEM, "resourceVersion": "55"},
        "data": {"contract.json": ByteString(Contract::new(7, plan).to_json())}});

    let deleting = source(&["kafkasources.sources.knative.dev"], true);
    let task = tokio::spawn(reconcile_source(kafka_source(&deleting), ctx));
    api.expect("GET", CONTRACT_PATH, 200, object(secret)).await;
    let replaced = api.expect("PUT", CONTRACT_PATH, 200, stored).await;
    assert_eq!(
        replaced.body["metadata"]["resourceVersion"], "55",
        "optimistic concurrency"
    );
    let contract = contract_of(&replaced.body);
    assert_eq!(contract.revision, 8);
    let names: Vec<_> = contract
        .plan
        .sources
        .iter()
        .map(|s| s.id.name.clone())
        .collect();
    assert_eq!(names, ["other"]);
    let patch = api
        .expect("PATCH", SOURCE_PATH, 200, object(source(&[], true)))
        .await;
    let ops = patch.body.as_array().unwrap();
    assert!(
        ops.iter()
            .any(|op| op["op"] == "remove" && op["path"] == "/metadata/finalizers/0"),
        "{ops:?}"
    );
    assert_eq!(task.await.unwrap().unwrap(), Action::await_change());
}

fn channel(name: &str, deleting: bool) -> Value {
    let mut value = json!({
        "apiVersion": "messaging.knative.dev/v1beta1", "kind": "KafkaChannel",
        "metadata": {"name": name, "namespace": "ns", "uid": "ch-uid", "generation": 2,
                     "finalizers": ["kafkachannels.messaging.knative.dev"]},
        "spec": {"numPartitions": 2,
                 "subscribers": [{"uid": "u1", "generation": 1,
                                  "subscriberUri": "http://sub.ns.svc.cluster.local"}]}
    });
    if deleting {
        value["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    value
}

fn channel_config(bootstrap: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "kafka-channel-config", "namespace": SYSTEM},
           "data": {"bootstrap.servers": bootstrap}})
}

/// Partitions of `topic` on the broker; 0 when it does not exist.
async fn partitions(bootstrap: &str, topic: &str) -> usize {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("allow.auto.create.topics", "false")
            .create()
            .unwrap();
        let metadata = consumer.fetch_metadata(Some(&topic), WAIT).unwrap();
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_channel_gets_its_topic_service_plan_and_status_and_deletion_removes_them() {
    let bootstrap = common::broker().await.bootstrap();
    let name = common::unique("ch");
    let topic = format!("knative-messaging-kafka.ns.{name}");
    let channel_path =
        format!("/apis/messaging.knative.dev/v1beta1/namespaces/ns/kafkachannels/{name}");
    let report = Report {
        revision: 1,
        sources: vec![],
        channels: vec![ChannelReport {
            namespace: "ns".into(),
            name: name.clone(),
            generation: 2,
            ready: true,
            subscribers: vec![SubscriberReport {
                uid: "u1".into(),
                generation: 1,
                ready: true,
            }],
        }],
    };
    let (url, _) = dataplane(report).await;
    let (ctx, mut api) = context(&url);
    let c = channel(&name, false);
    let parsed: KafkaChannel = serde_json::from_value(c.clone()).unwrap();
    let task = tokio::spawn(reconcile_channel(Arc::new(parsed), Arc::clone(&ctx)));

    api.expect("GET", CONFIG_PATH, 200, object(channel_config(&bootstrap)))
        .await;
    let service = api
        .expect(
            "PATCH",
            &format!("/api/v1/namespaces/ns/services/{name}-kn-channel"),
            200,
            stored,
        )
        .await;
    assert_eq!(service.content_type, "application/apply-patch+yaml");
    assert_eq!(service.body["spec"]["type"], "ExternalName");
    assert_eq!(
        service.body["spec"]["externalName"],
        "kafka-bridge-ingress.knative-eventing.svc.cluster.local"
    );
    assert_eq!(
        service.body["metadata"]["ownerReferences"][0]["uid"],
        "ch-uid"
    );

    api.expect("GET", CONTRACT_PATH, 404, none).await;
    let created = api.expect("POST", SECRETS_PATH, 201, stored).await;
    let contract = contract_of(&created.body);
    let plan = &contract.plan.channels[0];
    assert_eq!(plan.topic, topic);
    assert_eq!(
        plan.subscribers[0].consumer_group,
        format!("kafka.ns.{name}.u1")
    );

    api.expect("POST", EVENTS_PATH, 201, stored).await;
    let status = api
        .expect("PATCH", &format!("{channel_path}/status"), 200, object(c))
        .await;
    let written = &status.body["status"];
    assert_eq!(ready_condition(written), ("True".into(), None), "{written}");
    assert_eq!(
        written["address"]["url"],
        format!("http://{name}-kn-channel.ns.svc.cluster.local")
    );
    assert_eq!(
        written["subscribers"],
        json!([{"uid": "u1", "observedGeneration": 1, "ready": "True"}])
    );
    task.await.unwrap().unwrap();
    assert_eq!(
        partitions(&bootstrap, &topic).await,
        2,
        "the spec's partitions"
    );

    // Deleted: out of the contract, then the topic goes, then the finalizer.
    let deleting: KafkaChannel = serde_json::from_value(channel(&name, true)).unwrap();
    let task = tokio::spawn(reconcile_channel(Arc::new(deleting), ctx));
    let replaced = api.expect("PUT", CONTRACT_PATH, 200, stored).await;
    assert!(contract_of(&replaced.body).plan.channels.is_empty());
    api.expect("GET", CONFIG_PATH, 200, object(channel_config(&bootstrap)))
        .await;
    let patch = api
        .expect("PATCH", &channel_path, 200, object(channel(&name, true)))
        .await;
    assert!(patch
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|op| op["op"] == "remove"));
    task.await.unwrap().unwrap();
    assert_eq!(
        partitions(&bootstrap, &topic).await,
        0,
        "the topic is deleted"
    );
}

#[tokio::test]
async fn an_empty_contract_is_written_once_when_there_is_none() {
    let (url, _) = dataplane(Report::default()).await;
    let (ctx, mut api) = context(&url);
    let task = tokio::spawn(async move {
        ctx.contract.ensure_written().await.unwrap();
        ctx.contract.ensure_written().await.unwrap();
    });
    api.expect("GET", CONTRACT_PATH, 404, none).await;
    let created = api.expect("POST", SECRETS_PATH, 201, stored).await;
    let contract = contract_of(&created.body);
    assert_eq!((contract.revision, contract.plan), (0, Plan::default()));
    task.await.unwrap();
    api.expect_nothing().await;
}

#[tokio::test]
async fn leader_election_creates_the_lease_then_waits_for_a_valid_holder() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut api = ApiServer(handle);
    let client = kube::Client::new(service, "default");
    let settings = LeaseSettings {
        name: "kafka-bridge-controller".into(),
        namespace: SYSTEM.into(),
        identity: "pod-a".into(),
        duration: Duration::from_secs(15),
        retry: Duration::from_secs(5),
    };
    let elector = Arc::new(Elector::new(client, settings));
    let leases = "/apis/coordination.k8s.io/v1/namespaces/knative-eventing/leases";
    let lease_path = format!("{leases}/kafka-bridge-controller");

    let e = Arc::clone(&elector);
    let task = tokio::spawn(async move { e.try_hold().await });
    api.expect("GET", &lease_path, 404, none).await;
    let created = api.expect("POST", leases, 201, stored).await;
    assert_eq!(created.body["spec"]["holderIdentity"], "pod-a");
    assert_eq!(created.body["spec"]["leaseDurationSeconds"], 15);
    assert!(task.await.unwrap().unwrap(), "took the free Lease");

    let e = Arc::clone(&elector);
    let task = tokio::spawn(async move { e.try_hold().await });
    let renewed_now = k8s_openapi::jiff::Timestamp::now().to_string();
    let held = json!({"metadata": {"name": "kafka-bridge-controller", "resourceVersion": "9"},
                      "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15,
                               "renewTime": renewed_now}});
    api.expect("GET", &lease_path, 200, object(held)).await;
    assert!(!task.await.unwrap().unwrap(), "pod-b holds a valid Lease");
    api.expect_nothing().await;
}
