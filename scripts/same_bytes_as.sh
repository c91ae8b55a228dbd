#!/usr/bin/env bash
# same_bytes_as.sh - a refactoring's proof: the CPU outputs of this tree's hx equal those of another hx (an older
# build) byte for byte. Each binary runs the same recipes in its own fresh store with the same thread count; the
# keys (which do not depend on the binary) and every output file of every entry must be the same.
#   scripts/same_bytes_as.sh OTHER_HX [RECIPE...]     (default: tests/e2e/recipes/train_kinds.yaml, every stage kind,
#                                                      and tests/cuda/chain.yaml on the CPU)
#   e.g. git worktree add /tmp/old <commit> && make -C /tmp/old -j2 && scripts/same_bytes_as.sh /tmp/old/build/hx
set -euo pipefail
cd "$(dirname "$0")/.."
other=${1:?usage: scripts/same_bytes_as.sh OTHER_HX [RECIPE...]}
shift
[ $# -gt 0 ] || set -- tests/e2e/recipes/train_kinds.yaml tests/cuda/chain.yaml
HX=${HX:-$PWD/build/hx}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
T=$(mktemp -d /tmp/hx-same-as.XXXXXX)
trap 'rm -rf "$T"' EXIT
digests() { (cd "$1/store" && find . -type f ! -name manifest.json -print0 | sort -z | xargs -0 sha256sum); }
for r in "$@"; do
    for side in this other; do
        bin=$HX; [ $side = other ] && bin=$other
        "$bin" run "$r" --store "$T/$side" --device cpu >"$T/$side.log" 2>&1 ||
            { tail -20 "$T/$side.log"; echo "same_bytes_as: $r failed with $bin" >&2; exit 1; }
    done
done
digests "$T/this" >"$T/this.sha"
digests "$T/other" >"$T/other.sha"
if ! diff "$T/other.sha" "$T/this.sha"; then
    echo "same_bytes_as: outputs differ (< $other, > $HX)" >&2
    exit 1
fi
echo "same_bytes_as: $(find "$T/this/store" -name manifest.json | wc -l) entries, $(wc -l <"$T/this.sha") output files identical ($HX vs $other; $*)"
