#!/usr/bin/env bash
# cli_completion.sh - `hx completion bash` is valid bash and completes commands, options, values, recipes, kinds and
# run ids; `make install PREFIX=` installs the binary, the man page and the completion.
. "$(dirname "$0")/lib_interp.inc"

"$HX" completion bash >hx.bash
bash -n hx.bash || fail "hx completion bash: not valid bash"
"$HX" completion zsh >hx.zsh
grep -q '^autoload -U +X bashcompinit && bashcompinit$' hx.zsh && grep -q '^complete -F _hx hx$' hx.zsh ||
    fail "hx completion zsh"
if command -v zsh >/dev/null; then zsh -n hx.zsh || fail "hx completion zsh: not valid zsh"; fi

# a real run in a store, recipes and other files to complete
"$HX_TEST" run "$R/interp_chain.yaml" --store "$W/st" >/dev/null 2>&1 || fail "hx-test run"
run_id=$(ls "$W/st/runs" | grep -E "^[0-9]{8}-[0-9]{6}-")
mkdir files && cd files && touch a.yaml b.txt c.yml && mkdir sub

# complete WORDS...: the words bash would offer for the last one (as bash-completion calls _hx)
complete_words() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _hx; echo "${COMPREPLY[*]}"' \
        _ "$W/hx.bash" "$@"
}
want() { # expected-output, words...
    local e=$1 got; shift
    got=$(complete_words "$@")
    [ "$got" = "$e" ] || fail "complete '$*': got '$got', want '$e'"
}
want "run runs" hx ru
want "dag diff" hx d
want "kda" hx bench k
want "--threads" hx bench kda --th
want "--device" hx run a.yaml --dev
want "cpu cuda auto cuda:0" hx run a.yaml --device ""
want "local slurm" hx run a.yaml --executor ""
want "md json tex html csv svg pgf" hx report --format ""
want "--keep" hx gc --kee
want "a.yaml c.yml sub" hx run ""
want "a.yaml" hx plan a
want "finetune" hx help fin
want "bench" hx help ben
want "latest $run_id" hx show --store "$W/st" ""
want "$run_id" hx diff --store "$W/st" "${run_id:0:6}"
HX_STORE="$W/st" want "latest $run_id" hx report ""
want "bash zsh" hx completion ""
# every option of every command is offered after "--"
for c in run plan generate score tokenize export; do
    got=$(complete_words hx "$c" --)
    for o in $("$HX" help "$c" | grep -oE '^ +(-[A-Za-z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+'); do
        grep -qw -- "$o" <<<"$got" || fail "complete 'hx $c --': $o missing from: $got"
    done
done

# make install PREFIX=... installs the three files; the installed man page renders; make uninstall removes them
# -o: install the binary under test as it is (a sanitizer build must not be relinked with make's default flags)
# in a build folder of its own: the man page and completion are made fresh from it (never a stale one of build/)
mkdir -p "$W/build" && cp "$HX" "$W/build/hx"
make -s -C "$TOP" install BUILD="$W/build" PREFIX="$W/prefix" -o "$W/build/hx" >install.log 2>&1 || fail "make install: $(tail -5 install.log)"
for f in bin/hx share/man/man1/hx.1 share/bash-completion/completions/hx; do
    [ -s "$W/prefix/$f" ] || fail "make install: no $f"
done
[ -x "$W/prefix/bin/hx" ] || fail "bin/hx not executable"
"$W/prefix/bin/hx" version | grep -q "^hx " || fail "installed hx"
cmp -s "$W/prefix/share/bash-completion/completions/hx" "$W/hx.bash" || fail "installed completion differs"
MANWIDTH=100 man -l "$W/prefix/share/man/man1/hx.1" 2>/dev/null | grep -q "hx completion bash|zsh" || fail "installed man page"
make -s -C "$TOP" uninstall BUILD="$W/build" PREFIX="$W/prefix" >/dev/null 2>&1 || fail "make uninstall"
[ -z "$(find "$W/prefix" -type f)" ] || fail "make uninstall left: $(find "$W/prefix" -type f)"
echo "cli_completion: ok"
