#!/usr/bin/env bash
# Fails when a rendered page of one of our crates shows an intra-doc link as
# literal text, e.g. "[StoreError::Backend]".
#
# Why this is needed beside RUSTDOCFLAGS="-D warnings": rustdoc's lint only
# fires for links it cannot resolve. A link to an item of another crate
# resolves, but rustdoc can only write its URL when that crate's docs are
# generated in the same run; `cargo doc -p one-crate --no-deps` does not
# generate them, and the link silently becomes text. CI documents the whole
# workspace, so our own cross-crate links must all render; this checks it.
# (Blanket impls of tracing's traits on our types carry tracing's own docs,
# whose links point into tracing: those are not ours and are skipped.)
#
# So this script documents our crates itself, one after the other in
# dependency order, each with RUSTDOCFLAGS="-D warnings" (a broken link is
# an error): documented in parallel on a fresh target directory, a crate may
# be rendered before the folder of the crate it links to exists, and then
# its links become text too (rustdoc 1.95).
set -euo pipefail
cd "$(dirname "$0")/.."
doc=target/doc
rm -rf "$doc"
for crate in scheduler-core scheduler-memory scheduler-sqlite scheduler-postgres \
             scheduler-conformance scheduler-cli benches; do
  RUSTDOCFLAGS="-D warnings" cargo doc -q -p "$crate" --no-deps
done
bad=$(grep -rhoE '\[<code>[A-Za-z_:]+</code>\]' \
        "$doc"/scheduler_core "$doc"/scheduler_conformance "$doc"/scheduler_memory \
        "$doc"/scheduler_sqlite "$doc"/scheduler_postgres 2>/dev/null \
      | grep -vE '\[<code>(Span|WithDispatch)</code>\]' | sort | uniq -c || true)
if [ -n "$bad" ]; then
  echo "doc-links: intra-doc links rendered as text (documented without their target?):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "doc-links: every intra-doc link of ours renders as a link" >&2
