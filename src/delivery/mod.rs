//! HTTP delivery of events to sinks and subscribers: retries, backoff, timeouts, dead letters.

pub mod policy;
