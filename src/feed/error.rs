//! The feed's one error type. Every message says where: the file (and document), the resource
//! (`KafkaSource ns/name`, `KafkaChannel ns/name`) and the field path (`spec.delivery.backoffDelay`).

use std::fmt;
use std::path::PathBuf;

/// One document of one file: the unit errors point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRef {
    pub path: PathBuf,
    /// 0-based position among the file's documents (empty ones included).
    pub index: usize,
}

impl fmt::Display for DocRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.path.display(), self.index + 1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML (or JSON); the message carries the line and column.
    #[error("{}: invalid {format}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        format: &'static str,
        /// 1-based, when the parser knows it.
        line: Option<usize>,
        message: String,
    },
    /// A resource that parses but that Knative would reject, or that cannot be resolved.
    #[error("{doc}: {resource}: {field}: {problem}")]
    Invalid {
        doc: DocRef,
        /// `Kind namespace/name`.
        resource: String,
        /// Dotted path from the document root.
        field: String,
        problem: String,
    },
    /// A resource needs a ConfigMap that the files do not hold.
    #[error(
        "{doc}: {resource}: needs ConfigMap {namespace}/{name} with key {key}, which is not in \
         the given files; {hint}"
    )]
    MissingConfigMap {
        doc: DocRef,
        resource: String,
        namespace: &'static str,
        name: &'static str,
        key: &'static str,
        /// What the ConfigMap is for and how to write it.
        hint: &'static str,
    },
    #[error("{doc}: {resource} is defined twice (first in {first})")]
    Duplicate {
        doc: DocRef,
        resource: String,
        first: DocRef,
    },
}
