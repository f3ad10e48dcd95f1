//! Readiness of every running resource, as `/readyz` reports it: a named check per resource,
//! asked at request time so the answer is never stale.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

type Check = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Default, Clone)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<String, Check>>>,
}

/// One resource's state in a readiness report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceReadiness {
    pub name: String,
    pub ready: bool,
}

impl Readiness {
    pub fn set(&self, name: String, check: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, Arc::new(check));
    }

    pub fn remove(&self, name: &str) {
        self.checks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Every resource's state; the process is ready when all are (and there is at least one).
    pub fn report(&self) -> (bool, Vec<ResourceReadiness>) {
        let checks = self.checks.read().unwrap_or_else(PoisonError::into_inner);
        let states: Vec<_> = checks
            .iter()
            .map(|(name, check)| ResourceReadiness {
                name: name.clone(),
                ready: check(),
            })
            .collect();
        let ready = !states.is_empty() && states.iter().all(|s| s.ready);
        (ready, states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn ready_only_when_every_check_passes() {
        let readiness = Readiness::default();
        assert!(!readiness.report().0, "nothing running is not ready");
        let flag = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&flag);
        readiness.set("KafkaSource a/b".into(), move || f.load(Ordering::Relaxed));
        readiness.set("KafkaSource a/c".into(), || true);
        assert!(!readiness.report().0);
        flag.store(true, Ordering::Relaxed);
        assert!(readiness.report().0);
        readiness.remove("KafkaSource a/c");
        assert_eq!(readiness.report().1.len(), 1);
    }
}
