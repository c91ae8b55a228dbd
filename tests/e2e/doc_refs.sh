#!/usr/bin/env bash
# doc_refs.sh - the project cites only its own files: every docs/NAME.md named anywhere in the tree exists, and
# nothing points at documents outside the repository (spec/models.md, spec/kda.md, ../shared/...).
set -euo pipefail
: "${TOP:?}"
cd "$TOP"
fail() { echo "FAIL: $*"; exit 1; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "ok: doc_refs (not a git checkout: nothing to check)"; exit 0; }
n=0
while read -r ref; do
    n=$((n + 1))
    [ -f "$ref" ] || fail "$(git grep -n -- "$ref" | head -n 3) -- cites $ref, which does not exist"
done < <(git grep -ohE 'docs/[A-Za-z0-9_-]+\.md' -- ':!third_party' ':!tests/e2e/doc_refs.sh' | sort -u)
[ "$n" -ge 10 ] || fail "only $n distinct docs/*.md citations found: is the pattern broken?"
if out=$(git grep -nE 'spec/(models|kda)\.md|shared/(spec|fixtures)|\.\./shared/' -- ':!third_party' ':!tests/e2e/doc_refs.sh'); then
    echo "$out"; fail "citations of documents outside the repository (use docs/design.md, docs/models.md, tests/fixtures/README.md)"
fi
echo "ok: doc_refs ($n documents cited, all present)"
