//! Device shadows: `reported`, `desired`, `delta`, `version` (PROTOCOL.md §3), with the
//! document semantics of AWS IoT device shadows.
//!
//! - **Merge** ([`merge`]): an update is merged into the document key by key; an object merges
//!   recursively into an object; any other value (number, string, bool, array) replaces; `null`
//!   deletes the key. An object left empty by deletions is removed too (as AWS does), so
//!   `{"a":{"b":null}}` on `{"a":{"b":1}}` leaves `{}`.
//! - **Delta** ([`delta`]): the keys of `desired` whose value differs from `reported`; where both
//!   sides hold objects the comparison recurses and the delta holds only the differing sub-keys;
//!   arrays compare as whole values. Keys only in `reported` are not in the delta.
//! - **Version**: increments by one on every update that *changes* `reported` or `desired`. An
//!   update that leaves both documents as they were (a device re-sending its retained state
//!   after a reconnect) does not bump the version, so it does not make a pending desired write
//!   stale. (AWS bumps the version on every accepted update; we count changes, which is what
//!   PROTOCOL.md §3 says: "increments on every change".)

use serde::Serialize;
use serde_json::{Map, Value};

/// A JSON object, as the shadow documents are.
pub type Document = Map<String, Value>;

/// One device's shadow.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Shadow {
    /// What the device last reported (merged from its `state` messages).
    pub reported: Document,
    /// What the operators want (merged from desired writes).
    pub desired: Document,
    /// 0 for a shadow that was never written; +1 on every change to `reported` or `desired`.
    pub version: u64,
}

impl Shadow {
    /// The keys of `desired` whose value differs from `reported` (see the module docs).
    pub fn delta(&self) -> Document {
        delta(&self.desired, &self.reported)
    }

    /// Merges a reported update; returns whether `reported` changed (and the version with it).
    pub fn merge_reported(&mut self, update: &Document) -> bool {
        let changed = merge(&mut self.reported, update);
        if changed {
            self.version += 1;
        }
        changed
    }

    /// Merges a desired update; returns whether `desired` changed (and the version with it).
    /// The caller checks the expected version first (optimistic locking lives in
    /// [`Ingest::set_desired`](crate::Ingest::set_desired)).
    pub fn merge_desired(&mut self, update: &Document) -> bool {
        let changed = merge(&mut self.desired, update);
        if changed {
            self.version += 1;
        }
        changed
    }
}

/// Merges `update` into `doc` (see the module docs); returns whether `doc` changed.
pub fn merge(doc: &mut Document, update: &Document) -> bool {
    let mut changed = false;
    for (key, value) in update {
        match value {
            Value::Null => changed |= doc.remove(key).is_some(),
            Value::Object(sub) => match doc.get_mut(key) {
                Some(Value::Object(existing)) => {
                    changed |= merge(existing, sub);
                    if existing.is_empty() {
                        doc.remove(key);
                        changed = true;
                    }
                }
                _ => {
                    // A fresh object: merge into an empty one so that nulls inside it are
                    // dropped rather than stored.
                    let mut fresh = Document::new();
                    merge(&mut fresh, sub);
                    if fresh.is_empty() {
                        // `{"k":{}}` or `{"k":{"x":null}}` where `k` is absent or not an
                        // object: nothing to set (an empty object is never stored); a previous
                        // scalar is left alone.
                        continue;
                    }
                    let new = Value::Object(fresh);
                    if doc.get(key) != Some(&new) {
                        doc.insert(key.clone(), new);
                        changed = true;
                    }
                }
            },
            other => {
                if doc.get(key) != Some(other) {
                    doc.insert(key.clone(), other.clone());
                    changed = true;
                }
            }
        }
    }
    changed
}

/// The keys of `desired` whose value differs from `reported`, recursing into objects present on
/// both sides (see the module docs).
pub fn delta(desired: &Document, reported: &Document) -> Document {
    let mut out = Document::new();
    for (key, want) in desired {
        match (want, reported.get(key)) {
            (Value::Object(want_sub), Some(Value::Object(have_sub))) => {
                let sub = delta(want_sub, have_sub);
                if !sub.is_empty() {
                    out.insert(key.clone(), Value::Object(sub));
                }
            }
            (want, have) => {
                if have != Some(want) {
                    out.insert(key.clone(), want.clone());
                }
            }
        }
    }
    out
}

/// The JSON path (`/a/b/0`) of the first number in `value` that is not an integer, if any.
/// Devices have no floats (PROTOCOL.md §2), so shadows hold integers only.
pub fn first_non_integer(value: &Value) -> Option<String> {
    let mut path = String::new();
    non_integer_at(value, &mut path).then_some(path)
}

/// [`first_non_integer`] for a document.
pub fn first_non_integer_in(doc: &Document) -> Option<String> {
    let mut path = String::new();
    entries_non_integer(doc.iter(), &mut path).then_some(path)
}

/// True if `value` holds a non-integer number; `path` is then its JSON path.
fn non_integer_at(value: &Value, path: &mut String) -> bool {
    match value {
        Value::Number(n) => !(n.is_i64() || n.is_u64()),
        Value::Array(items) => {
            let keys: Vec<String> = (0..items.len()).map(|i| i.to_string()).collect();
            entries_non_integer(keys.iter().zip(items), path)
        }
        Value::Object(map) => entries_non_integer(map.iter(), path),
        _ => false,
    }
}

fn entries_non_integer<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    path: &mut String,
) -> bool {
    for (key, value) in entries {
        let len = path.len();
        path.push('/');
        path.push_str(key);
        if non_integer_at(value, path) {
            return true;
        }
        path.truncate(len);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Document {
        match v {
            Value::Object(m) => m,
            _ => panic!("test documents are objects"),
        }
    }

    #[test]
    fn merge_sets_replaces_and_deletes() {
        let mut d = doc(json!({"a":1,"b":{"x":1,"y":2},"c":[1,2]}));
        assert!(merge(&mut d, &doc(json!({"a":2,"b":{"y":null,"z":3},"c":[3],"n":null}))));
        assert_eq!(Value::Object(d), json!({"a":2,"b":{"x":1,"z":3},"c":[3]}));
    }

    #[test]
    fn merge_reports_no_change_for_same_values() {
        let mut d = doc(json!({"a":1,"b":{"x":1}}));
        assert!(!merge(&mut d, &doc(json!({"a":1,"b":{"x":1},"gone":null}))));
    }

    #[test]
    fn merge_removes_emptied_objects_and_ignores_empty_ones() {
        let mut d = doc(json!({"a":{"b":1},"s":5}));
        assert!(merge(&mut d, &doc(json!({"a":{"b":null}}))));
        assert_eq!(Value::Object(d.clone()), json!({"s":5}));
        assert!(!merge(&mut d, &doc(json!({"s":{}, "t":{"u":null}}))));
        assert_eq!(Value::Object(d), json!({"s":5}));
    }

    #[test]
    fn merge_object_replaces_scalar() {
        let mut d = doc(json!({"a":1}));
        assert!(merge(&mut d, &doc(json!({"a":{"b":2,"c":null}}))));
        assert_eq!(Value::Object(d), json!({"a":{"b":2}}));
    }

    #[test]
    fn delta_recurses_into_objects() {
        let desired = doc(json!({"a":1,"b":{"x":1,"y":2},"c":[1,2],"d":"same","e":{"k":1}}));
        let reported = doc(json!({"a":2,"b":{"x":1,"y":3},"c":[1,2],"d":"same","e":5,"r":1}));
        assert_eq!(Value::Object(delta(&desired, &reported)), json!({"a":1,"b":{"y":2},"e":{"k":1}}));
    }

    #[test]
    fn delta_is_empty_when_reported_matches() {
        let desired = doc(json!({"interval_s":60}));
        let reported = doc(json!({"interval_s":60,"slot":"a"}));
        assert!(delta(&desired, &reported).is_empty());
    }

    #[test]
    fn version_counts_changes_only() {
        let mut s = Shadow::default();
        assert!(s.merge_reported(&doc(json!({"a":1}))));
        assert!(!s.merge_reported(&doc(json!({"a":1}))));
        assert!(s.merge_desired(&doc(json!({"a":2}))));
        assert_eq!(s.version, 2);
        assert_eq!(Value::Object(s.delta()), json!({"a":2}));
    }

    #[test]
    fn non_integers_are_found_with_their_path() {
        assert_eq!(first_non_integer(&json!({"a":1,"b":[1,{"c":2.5}]})), Some("/b/1/c".into()));
        assert_eq!(first_non_integer(&json!({"a":-1,"b":[u64::MAX]})), None);
        assert_eq!(first_non_integer_in(&doc(json!({"x":{"y":[0.5]}}))), Some("/x/y/0".into()));
    }
}
