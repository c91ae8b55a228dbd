#!/usr/bin/env bash
# layers.sh - the include rule of docs/architecture.md ("What may include what"): every quoted #include of the
# source tree goes to the file's own folder or one its layer's row allows. The table is read from the doc, so
# the doc is the rule. First a tree with known violations must fail, then the real tree must pass.
set -euo pipefail
: "${TOP:?}"
T=$(mktemp -d /tmp/hx-e2e-layers.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$T/check.py" <<'PY'
import os, re, subprocess, sys
root = sys.argv[1]
doc = open(os.path.join(root, "docs/architecture.md")).read()
sec = doc.split("## What may include what", 1)
if len(sec) < 2: sys.exit("docs/architecture.md has no section 'What may include what'")
rows = []  # (patterns, allowed folders)
for line in sec[1].split("\n## ", 1)[0].splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 3 or not cells[0].startswith("`"): continue
    pats = re.findall(r"`([^`]+)`", cells[0])
    rows.append((pats, set(re.findall(r"`([^`]+)`", cells[2]))))
if len(rows) < 5: sys.exit("the include table of docs/architecture.md has %d rows" % len(rows))

def match(pat, path):  # "dir/*": files directly in dir; "dir/name*" and "dir/name.c": that prefix or file
    d, name = os.path.split(pat)
    pd, pn = os.path.split(path)
    if d != pd: return False
    return pn.startswith(name[:-1]) if name.endswith("*") else pn == name

def layer(path):
    for pats, allowed in rows:
        if any(match(p, path) for p in pats): return pats, allowed
    return None, None

files = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, text=True, check=True).stdout.split()
src = [f for f in files if f.endswith((".c", ".h", ".cu", ".cuh")) and not f.startswith(("tests/", "third_party/"))
       and os.path.exists(os.path.join(root, f))]
bad, n = [], 0
for f in sorted(src):
    pats, allowed = layer(f)
    if pats is None:
        bad.append("%s: in no layer of docs/architecture.md (add its folder to the include table)" % f)
        continue
    own = os.path.dirname(f)
    for ln, line in enumerate(open(os.path.join(root, f), errors="replace"), 1):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if not m: continue
        n += 1
        inc = m.group(1)
        rel = os.path.normpath(os.path.join(own, inc))
        target = rel if os.path.exists(os.path.join(root, rel)) else inc
        if not os.path.exists(os.path.join(root, target)):
            bad.append("%s:%d: cannot resolve \"%s\"" % (f, ln, inc))
            continue
        tdir = os.path.dirname(target)
        if tdir != own and tdir not in allowed:
            bad.append("%s:%d: includes %s (layer %s may include: %s)" % (f, ln, target, " ".join(pats),
                       " ".join(sorted(allowed))))
for b in bad: print(b)
print("%d files, %d includes, %d violations" % (len(src), n, len(bad)))
sys.exit(1 if bad else 0)
PY

# a tree with three violations: base includes the engine, the engine includes a CPU header, a file in no layer
mk() { mkdir -p "$T/tree/$(dirname "$1")"; printf '%s\n' "$2" >"$T/tree/$1"; }
mkdir -p "$T/tree/docs" && cp "$TOP/docs/architecture.md" "$T/tree/docs/"
mk base/base.h '/* base.h */'
mk base/base.c '#include "base.h"'
mk kernels/kernels.h '#include "base/base.h"'
mk kernels/cpu/kda.h '#include "kernels/kernels.h"'
mk nn/model.h '#include "kernels/kernels.h"'
mk nn/kda_layer.c '#include "kernels/cpu/kda.h"'
mk base/up.c '#include "nn/model.h"'
mk misc/x.c '#include "base/base.h"'
git -C "$T/tree" init -q
if python3 "$T/check.py" "$T/tree" >"$T/bad.log" 2>&1; then cat "$T/bad.log"; fail "violations were not found"; fi
grep -q '^base/up.c:1: includes nn/model.h' "$T/bad.log" || { cat "$T/bad.log"; fail "base -> nn not found"; }
grep -q '^nn/kda_layer.c:1: includes kernels/cpu/kda.h' "$T/bad.log" || { cat "$T/bad.log"; fail "CPU header outside kernels/cpu not found"; }
grep -q '^misc/x.c: in no layer' "$T/bad.log" || { cat "$T/bad.log"; fail "a file in no layer not found"; }
grep -q ' 3 violations$' "$T/bad.log" || { cat "$T/bad.log"; fail "expected exactly 3 violations"; }

# the real tree
python3 "$T/check.py" "$TOP" || fail "include rule of docs/architecture.md broken (above)"
echo "ok: layers"
