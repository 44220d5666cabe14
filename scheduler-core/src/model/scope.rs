//! Scopes, the locking dimension of a job, and the limits on every name a
//! store keys rows by.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The locking dimension of a job: `(kind, id)`. Global jobs use
/// [`Scope::global`]; a per-tenant job returns one scope per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    /// The kind of thing, e.g. `tenant`.
    pub kind: String,
    /// Which one, e.g. a tenant id.
    pub id: String,
}

impl Scope {
    /// A scope of `kind` and `id`.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
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
