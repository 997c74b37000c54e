//! Answers kept per (query, role), each with the build stamp of the
//! relations it read: an answer is served again only while none of them
//! was rebuilt since (the stamp is the time of each one's last successful
//! build in pm's run history).

use pm_postgres::serve::Answer;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One kept answer.
pub struct Entry {
    pub answer: Arc<Answer>,
    /// The answer as JSON, made once.
    pub json: bytes::Bytes,
    pub etag: String,
    /// The nodes (unique ids) whose relations the answer read.
    pub nodes: Vec<String>,
    /// Their build stamp when the answer was read.
    pub stamp: String,
    last_used: AtomicU64,
}

/// At most `capacity` answers; the least recently used goes first.
pub struct Cache {
    capacity: usize,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    clock: AtomicU64,
}

/// The strong validator of an answer: its query, role and build stamp.
pub fn etag(key: &str, stamp: &str) -> String {
    let digest = Sha256::digest(format!("{key}\u{0}{stamp}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            capacity,
            entries: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer kept under `key`, when `stamp_of` its nodes is still
    /// the one it was read at.
    pub fn get(&self, key: &str, stamp_of: impl Fn(&[String]) -> String) -> Option<Arc<Entry>> {
        let entry = self.entries().get(key).cloned()?;
        if stamp_of(&entry.nodes) != entry.stamp {
            self.entries().remove(key);
            return None;
        }
        entry.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(entry)
    }

    /// Keeps an answer (unless the cache keeps none) and returns it.
    pub fn put(
        &self,
        key: String,
        answer: Arc<Answer>,
        json: bytes::Bytes,
        nodes: Vec<String>,
        stamp: String,
    ) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            etag: etag(&key, &stamp),
            answer,
            json,
            nodes,
            stamp,
            last_used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
        });
        if self.capacity == 0 {
            return entry;
        }
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        entries.insert(key, entry.clone());
        entry
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::{etag, Cache};
    use std::sync::Arc;

    fn put(c: &Cache, key: &str, stamp: &str) {
        c.put(
            key.into(),
            Arc::default(),
            bytes::Bytes::new(),
            vec!["model.p.m".into()],
            stamp.into(),
        );
    }

    #[test]
    fn an_answer_lives_until_a_relation_it_read_is_rebuilt() {
        let c = Cache::new(2);
        put(&c, "a", "t1");
        assert!(c.get("a", |_| "t1".into()).is_some());
        assert!(c.get("a", |_| "t2".into()).is_none());
        assert!(
            c.get("a", |_| "t1".into()).is_none(),
            "a stale answer is dropped"
        );
    }

    #[test]
    fn the_least_recently_used_goes_when_full() {
        let c = Cache::new(2);
        put(&c, "a", "t");
        put(&c, "b", "t");
        assert!(c.get("a", |_| "t".into()).is_some());
        put(&c, "c", "t");
        assert!(c.get("b", |_| "t".into()).is_none());
        assert!(c.get("a", |_| "t".into()).is_some());
        assert_eq!(c.len(), 2);
        assert_ne!(etag("a", "t1"), etag("a", "t2"));
        let none = Cache::new(0);
        put(&none, "a", "t");
        assert!(none.is_empty());
    }
}
