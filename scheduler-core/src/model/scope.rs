//! Scopes, the locking dimension of a job, and the limits on every name a
//! store keys rows by.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The locking dimension of a job: `(kind, id)`. Global jobs use
/// [`Scope::global`]; a per-tenant job returns one scope per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    /// The kind of thing, e.g. `tenant`.
    pub kind: Name,
    /// Which one, e.g. a tenant id.
    pub id: Name,
}

impl Scope {
    /// A scope of `kind` and `id`.
    pub fn new(kind: impl Into<Name>, id: impl Into<Name>) -> Self {
        Scope {
            kind: kind.into(),
            id: id.into(),
        }
    }

    /// `("global", "global")`, the scope of a job that runs once per plan.
    pub fn global() -> Self {
        Scope::new("global", "global")
    }

    /// Why this scope can never be stored, if it cannot: a kind or id
    /// holding a NUL character or longer than [`MAX_NAME_BYTES`] (see
    /// [`name_problem`]).
    pub fn storage_problem(&self) -> Option<String> {
        name_problem("scope kind", &self.kind)
            .or_else(|| name_problem("scope id", &self.id))
            .map(|problem| format!("scope {}: {problem}", self.abbreviated()))
    }

    /// The scope for messages: each part cut to 64 characters, so refusing
    /// a 10 kB id does not print it whole.
    fn abbreviated(&self) -> String {
        format!("{}/{}", abbreviate(&self.kind), abbreviate(&self.id))
    }
}

/// The longest job name, scope kind, scope id or runner id, in bytes of
/// UTF-8.
///
/// Every store keys executions on `(job_name, scope_kind, scope_id,
/// plan_time)`, and PostgreSQL's btree refuses an index row above about
/// 2,700 bytes: three names of at most 512 bytes each, with the plan time
/// and the row overhead, always fit. The limit is enforced here, in core,
/// for every store alike, so a name that one store could keep and another
/// could not is refused everywhere, up front, as invalid input.
pub const MAX_NAME_BYTES: usize = 512;

/// Why `value`, used as `what` (a job name, scope kind, scope id or runner
/// id), can never be stored, if it cannot: a NUL character (PostgreSQL text
/// and SQLite's C strings cannot hold one) or more than [`MAX_NAME_BYTES`]
/// bytes.
pub fn name_problem(what: &str, value: &str) -> Option<String> {
    if value.contains('\0') {
        Some(format!(
            "{what} {} contains a NUL character",
            abbreviate(value)
        ))
    } else if value.len() > MAX_NAME_BYTES {
        Some(format!(
            "{what} {} is {} bytes long; the limit is {MAX_NAME_BYTES} bytes",
            abbreviate(value),
            value.len()
        ))
    } else {
        None
    }
}

/// `text` made storable as free text of at most `max_bytes`: NUL
/// characters removed (PostgreSQL text and `jsonb` refuse them), then cut
/// on a UTF-8 character boundary. For text that describes rather than keys
/// (an error message, a host name, a schedule in words), where a cut copy
/// is better than a refused write.
pub fn bound_text(text: &str, max_bytes: usize) -> String {
    let mut out: String = text.chars().filter(|&c| c != '\0').collect();
    if out.len() > max_bytes {
        let mut cut = max_bytes;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// `value` quoted and escaped for a message, cut after 64 characters.
fn abbreviate(value: &str) -> String {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.escape_debug(), self.id.escape_debug())
    }
}

/// A name rows are keyed by (a job name, a scope's kind or id, a runner
/// id): immutable text, shared rather than copied. Every claimed run,
/// planned key and stored row of a scope carries its names, so a copy is
/// a reference count, not an allocation; it reads as a `&str` (it derefs
/// to one) and compares, hashes, orders and serializes as its text.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Name::from)
    }
}

impl Name {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Name(text.into())
    }
}

impl From<String> for Name {
    fn from(text: String) -> Self {
        Name(text.into())
    }
}

impl From<&String> for Name {
    fn from(text: &String) -> Self {
        Name(text.as_str().into())
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_name_is_its_text_for_lookups_order_and_serde() {
        let mut by_name: HashMap<Name, u8> = HashMap::new();
        by_name.insert(Name::from("tenant"), 1);
        // Borrow<str> must hash and compare as the text does.
        assert_eq!(by_name.get("tenant"), Some(&1));
        let mut sorted = vec![Name::from("b"), Name::from("a")];
        sorted.sort();
        assert_eq!(sorted, ["a", "b"]);
        assert_eq!(Name::from("x"), "x");
        assert_eq!(format!("{:?}", Name::from("a\"b")), r#""a\"b""#);
        let scope = Scope::new("tenant", String::from("t1"));
        let json = serde_json::to_string(&scope).unwrap();
        assert_eq!(json, r#"{"kind":"tenant","id":"t1"}"#);
        assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
    }

    #[test]
    fn a_copied_name_shares_its_text() {
        let scope = Scope::new("tenant", "t1");
        let copy = scope.clone();
        assert!(std::ptr::eq(scope.id.as_str(), copy.id.as_str()));
    }
}
