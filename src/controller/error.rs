//! What can stop a reconcile. Each is retried with backoff by the controller's error policy;
//! problems in a resource's own spec are not errors but conditions in its status.

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the data-plane contract in its Secret is unreadable: {0}")]
    Contract(String),
    #[error(transparent)]
    Topic(#[from] crate::kafka::topics::TopicError),
    #[error("{0}")]
    Finalizer(String),
    #[error("the object has no {0}")]
    Incomplete(&'static str),
}
