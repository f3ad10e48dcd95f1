//! What the data plane reports about a resource, as the reconcilers read it: whether it runs the
//! resource's current generation, and whether that is ready (consumers joined with partitions,
//! subscribers' offsets initialised).

/// The data plane's view of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed<T> {
    /// The data plane could not be asked; the reason is shown in the condition.
    Unavailable(String),
    /// The data plane does not run the resource (yet).
    Absent,
    Running(T),
}

/// A source or channel as the data plane runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningResource {
    pub generation: i64,
    pub ready: bool,
    /// A channel's subscribers; empty for a source.
    pub subscribers: Vec<RunningSubscriber>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningSubscriber {
    pub uid: String,
    pub generation: i64,
    pub ready: bool,
}
