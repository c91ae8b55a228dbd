#!/usr/bin/env bash
# doc_refs.sh - the project cites only its own files: every docs/NAME.md named anywhere in the tree exists, and
# nothing points at documents outside the repository (DESIGN.md, spec/models.md, spec/kda.md, ../shared/...); every variable a
# C or CUDA file reads with getenv is in docs/env.md.
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
if out=$(git grep -nE '\bDESIGN\.md|spec/(models|kda)\.md|shared/(spec|fixtures)|\.\./shared/' -- ':!third_party' ':!tests/e2e/doc_refs.sh'); then
    echo "$out"; fail "citations of documents outside the repository (use docs/design.md, docs/models.md, tests/fixtures/README.md)"
fi
# docs/env.md is the one table of environment variables: every variable a C or CUDA file reads is in it
m=0
while read -r var; do
    m=$((m + 1))
    grep -q "\`$var\`\|\`$var=" docs/env.md || fail "$(git grep -n "getenv(\"$var\")" | head -n 2) -- reads $var, which docs/env.md does not list"
done < <(git grep -ohE 'getenv\("[A-Z][A-Z0-9_]*"\)' -- '*.c' '*.h' '*.cu' ':!third_party' | sed -E 's/getenv\("([^"]*)"\)/\1/' | sort -u)
[ "$m" -ge 10 ] || fail "only $m getenv variables found: is the pattern broken?"
echo "ok: doc_refs ($n documents cited, all present; $m environment variables, all in docs/env.md)"
