//! HTTP delivery of events to sinks and subscribers: retries, backoff, timeouts, dead letters.
//!
//! [`Dispatcher::deliver`] takes one encoded event ([`HttpMessage`](crate::event::HttpMessage))
//! and one [`Subscriber`] and returns how it settled; callers commit the Kafka offset on any
//! [`Delivery`] and never on [`Cancelled`].

mod client;
pub mod dead_letter;
mod dispatcher;
mod observer;
pub mod policy;
pub mod response;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

pub use dispatcher::{
    AcceptAll, AcceptResponse, Cancelled, Delivery, Dispatcher, DropReason, Outcome, Subscriber,
    BODY_LIMIT,
};
pub use observer::{DeliveryObserver, Leg};
pub use policy::{BackoffPolicy, DeliveryPolicy, Target};
pub use response::{Failure, Response};

/// Errors setting up delivery; failures of a delivery itself are [`Outcome`]s, not errors.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot set up TLS for delivery targets")]
    Tls(#[source] native_tls::Error),
    #[error("CA certificates (CACerts) for a delivery target are not valid PEM")]
    CaPem(#[source] pem::PemError),
    #[error("invalid CA certificate (CACerts) for a delivery target")]
    CaCerts(#[source] native_tls::Error),
    #[error("CA certificates (CACerts) for a delivery target hold no PEM certificate")]
    NoCaCerts,
    #[error("{0} cannot be sent a request")]
    InvalidUrl(url::Url),
    #[error("namespace {0:?} cannot be sent as the Kn-Namespace header")]
    InvalidNamespace(String),
}
