#!/usr/bin/env bash
# cli_help.sh - the command table drives parsing, help, docs/cli.md's option tables, hx help KIND and the man page.
. "$(dirname "$0")/lib_interp.inc"

# docs/cli.md's option tables are what the command table produces
HX="$HX" bash "$TOP/scripts/cli-docs.sh" --check || fail "docs/cli.md option tables differ from 'hx help --markdown'"

# every command in `hx help` has help, the same from `hx help CMD` and `hx CMD --help`, listing its parser's options
cmds=$("$HX" help | awk '/^commands:/{on=1; next} /^$/{on=0} on{print $1}')
[ "$(wc -w <<<"$cmds")" -ge 20 ] || fail "hx help lists $(wc -w <<<"$cmds") commands"
for c in $cmds; do
    "$HX" help "$c" >h1.txt || fail "hx help $c: exit $?"
    "$HX" "$c" --help >h2.txt || fail "hx $c --help: exit $?"
    cmp -s h1.txt h2.txt || [ "$c" = bench ] || fail "hx help $c differs from hx $c --help"
    head -1 h1.txt | grep -q "^usage: hx $c" || fail "hx help $c: $(head -1 h1.txt)"
done
# generate: every option its parser accepts is in its help (the old usage string missed six)
"$HX" help generate >gen.txt
for o in -p --prompt --file --max-new --stop --chat --no-eos --batch --tokenizer --device --threads --json --store; do
    grep -q -- "$o\b" gen.txt || fail "hx help generate lacks $o"
done
grep -q -- "--max-new N .*(default: 32)" gen.txt || fail "hx help generate: default of --max-new"
# -h anywhere on the line, and a subcommand's help
"$HX" run some.yaml -S a=1 -h | head -1 | grep -q "^usage: hx run RECIPE" || fail "hx run ... -h"
"$HX" help bench kda | grep -q -- "--kv-heads N .*(default: 8)" || fail "hx help bench kda"
"$HX" bench kda --help | head -1 | grep -q "^usage: hx bench kda" || fail "hx bench kda --help"

# errors name the option and the closest one; exit 2
err() { # expected-substring, command...
    local want=$1 rc=0; shift
    "$@" >out.txt 2>&1 || rc=$?
    [ $rc -eq 2 ] || fail "$*: exit $rc, want 2: $(cat out.txt)"
    grep -qF -- "$want" out.txt || fail "$*: want '$want' in: $(cat out.txt)"
}
err "unknown option '--kepe' (did you mean '--keep'?); see 'hx gc --help'" "$HX" gc --kepe 3 --store "$W/s"
err "unknown option '--fromat=svg' (did you mean '--format'?)" "$HX" dag r.yaml --fromat=svg
err "--jobs expects an integer >= 1, got '0'" "$HX" run r.yaml --jobs 0
err "--keep expects an integer >= 0, got 'x'" "$HX" gc --keep x
err "--format pdf: expected md, json, tex, html, csv, svg or pgf" "$HX" report --format pdf
err "--json takes no value" "$HX" runs --json=1
err "--store needs a value (DIR)" "$HX" runs --store
err "expected fewer arguments (it takes none)" "$HX" gc extra
err "a RUN goes with --metrics" "$HX" runs extra
err "expected more arguments" "$HX" why r.yaml
err "unknown subcommand 'kdd' (did you mean 'kda'?)" "$HX" bench kdd
err "'genrate' is not an hx command (did you mean 'generate'?)" "$HX" genrate
err "'finetun' is neither an hx command nor a stage kind (did you mean 'finetune'?)" "$HX" help finetun
# --name=value, -xVALUE and -- work as before
k1=$("$HX_TEST" plan "$R/interp_chain.yaml" --store="$W/s" --json | head -2 | grep -o '"key":"[0-9a-f]*"')
k2=$("$HX_TEST" plan "$R/interp_chain.yaml" -Sparams.seed=4 --store "$W/s" --json | head -2 | grep -o '"key":"[0-9a-f]*"')
k3=$("$HX_TEST" plan "$R/interp_chain.yaml" --set=params.seed=4 --json | head -2 | grep -o '"key":"[0-9a-f]*"')
[ -n "$k1" ] && [ "$k1" != "$k2" ] && [ "$k2" = "$k3" ] || fail "-SKEY=V, --set=KEY=V: keys '$k1' '$k2' '$k3'"
"$HX" grade --format mcq --choices 4 -- "-A-" | grep -q '"pred"' || fail "grade -- REPLY"

# hx help KIND: every kind of the registry, with its parameters (type, default) and input roles
kinds=$("$HX" help | sed -n 's/^stage kinds (hx help KIND)://p')
[ "$(wc -w <<<"$kinds")" -ge 9 ] || fail "stage kinds: $kinds"
for k in $kinds; do
    "$HX" help --kind "$k" >k.txt || fail "hx help --kind $k"
    head -1 k.txt | grep -Eq "^stage kind $k \(version [0-9]+\)" || fail "hx help --kind $k: $(head -1 k.txt)"
    grep -q "^parameters (with:):" k.txt && grep -q "^inputs (roles):" k.txt || fail "hx help --kind $k sections"
done
"$HX" help data | grep -Eq '^  n_facts +int +50 ' || fail "hx help data: n_facts int 50"
"$HX" help finetune | grep -Eq '^  teacher +from pretrain\|finetune \(optional\)' || fail "hx help finetune: roles"
"$HX" help bench | grep -q "also a stage kind: hx help --kind bench" || fail "hx help bench: the kind"

# the man page renders without a warning
"$HX" help --man >hx.1
groff -man -ww -z hx.1 2>warn.txt && [ ! -s warn.txt ] || fail "groff warnings: $(cat warn.txt)"
MANWIDTH=100 man -l hx.1 2>warn.txt >man.txt && [ ! -s warn.txt ] || fail "man -l: $(cat warn.txt)"
grep -q "^NAME" man.txt && grep -q "hx run RECIPE" man.txt && grep -q -- "--slurm-partition P" man.txt ||
    fail "man page content"
for c in $cmds; do grep -q "^   hx $c" man.txt || fail "man page lacks hx $c"; done
echo "cli_help: ok ($(wc -w <<<"$cmds") commands, $(wc -w <<<"$kinds") kinds)"
