#!/usr/bin/env bash
# Install tests: `meson install` into a fresh prefix (a temporary dir), then use only what was
# installed, the way a user would:
#   - a meson project, a CMake project and a plain g++ with pkg-config each build
#     tests/install/consumer.cpp (Fallback<FreeList<System>, System> and Jemalloc) and run it
#   - the installed `chainalloc` runs a program with --log, reads the log back with
#     `chainalloc log summary`, checks a chain, lists the presets, and still works once the
#     prefix has been moved
#   - `man chainalloc` works from the prefix
#
#   tests/install/test_install.sh [BUILD_DIR]
#
# BUILD_DIR (default: a temporary one) is configured with -Dtests=false, which also checks
# that such a build has no test in it; scripts/test passes build-install-test/ so later runs
# only rebuild what changed. The prefix is new on every run. Needs g++, meson, ninja, cmake,
# pkg-config and man (scripts/setup installs them).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
here="$src/tests/install"
jobs=${JOBS:-$(nproc)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chainalloc-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
build=${1:-$tmp/build}
[[ "$build" = /* ]] || build="$PWD/$build"

step() { echo "install test: $*"; }
fail() { echo "install test: FAILED: $*" >&2; exit 1; }

# --- build and install -------------------------------------------------------------------
step "meson install into $prefix"
if [[ -f "$build/build.ninja" ]]; then
  meson configure "$build" -Dprefix="$prefix" -Dtests=false >/dev/null
else
  meson setup "$build" "$src" -Dtests=false --prefix="$prefix" >/dev/null
fi
tests=$(meson introspect "$build" --tests)
[[ "$tests" == "[]" ]] || fail "-Dtests=false still defines tests: $tests"
ninja -C "$build" -j "$jobs" >/dev/null
meson install -C "$build" --quiet >/dev/null

# What goes where. The library dir is whatever meson's libdir is (lib/<triplet> on Debian).
lib=$(find "$prefix" -name libchainalloc.so -print -quit)
[[ -n "$lib" ]] || fail "libchainalloc.so not installed"
# The event log plugin sits next to it (the preload looks there), and the preload itself needs
# no C++ runtime: that is the plugin's, loaded only for a proxy.
[[ -e "$(dirname "$lib")/libchainalloc-log.so" ]] || fail "libchainalloc-log.so not installed next to $lib"
if readelf -d "$lib" | grep -q 'NEEDED.*libstdc++'; then fail "libchainalloc.so needs libstdc++"; fi
for f in bin/chainalloc libexec/chainalloc/chainalloc-config libexec/chainalloc/chainalloc-logscan \
         libexec/chainalloc/chainalloc_log.py \
         libexec/chainalloc/chainalloc_log/cli.py include/chainalloc/allocator.hpp \
         include/chainalloc/jemalloc.hpp share/pkgconfig/chainalloc.pc \
         share/pkgconfig/chainalloc-jemalloc.pc share/cmake/chainalloc/chainallocConfig.cmake \
         share/cmake/chainalloc/chainallocConfigVersion.cmake share/man/man1/chainalloc.1 \
         share/doc/chainalloc/LOG-FORMAT.md; do
  [[ -e "$prefix/$f" ]] || fail "$f not installed"
done
if find "$prefix" -name 'test_*' -o -name '__pycache__' | grep -q .; then
  fail "test programs or bytecode caches installed: $(find "$prefix" -name 'test_*' -o -name '__pycache__')"
fi

export PKG_CONFIG_PATH="$prefix/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CMAKE_PREFIX_PATH="$prefix${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"

run_consumer() {  # name, program: runs it and checks it says ok
  local out
  out=$("$2") || fail "$1: $2 exited with $?: $out"
  [[ "$out" == "consumer: ok" ]] || fail "$1: $2 said: $out"
}

# --- consumers -----------------------------------------------------------------------------
step "pkg-config: g++ \$(pkg-config --cflags --libs chainalloc[-jemalloc])"
mkdir "$tmp/pc"
# shellcheck disable=SC2046  # the flags are meant to split
g++ -O1 -o "$tmp/pc/consumer" "$here/consumer.cpp" $(pkg-config --cflags --libs chainalloc-jemalloc) \
  || fail "g++ with pkg-config chainalloc-jemalloc"
# shellcheck disable=SC2046
g++ -O1 -DCONSUMER_NO_JEMALLOC -o "$tmp/pc/consumer_plain" "$here/consumer.cpp" \
  $(pkg-config --cflags --libs chainalloc) || fail "g++ with pkg-config chainalloc"
run_consumer pkg-config "$tmp/pc/consumer"
run_consumer pkg-config "$tmp/pc/consumer_plain"

step "meson project: dependency('chainalloc'), dependency('chainalloc-jemalloc')"
cp -r "$here/meson" "$tmp/meson-src"
cp "$here/consumer.cpp" "$tmp/meson-src/"
meson setup "$tmp/meson-build" "$tmp/meson-src" >"$tmp/meson.log" 2>&1 || { cat "$tmp/meson.log"; fail "meson setup of the consumer"; }
ninja -C "$tmp/meson-build" -j "$jobs" >>"$tmp/meson.log" 2>&1 || { cat "$tmp/meson.log"; fail "meson build of the consumer"; }
run_consumer meson "$tmp/meson-build/consumer"
run_consumer meson "$tmp/meson-build/consumer_plain"

step "CMake project: find_package(chainalloc 0.1 CONFIG COMPONENTS jemalloc)"
cp -r "$here/cmake" "$tmp/cmake-src"
cp "$here/consumer.cpp" "$tmp/cmake-src/"
cmake -S "$tmp/cmake-src" -B "$tmp/cmake-build" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake configure of the consumer"; }
cmake --build "$tmp/cmake-build" -j "$jobs" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake build of the consumer"; }
run_consumer cmake "$tmp/cmake-build/consumer"
run_consumer cmake "$tmp/cmake-build/consumer_plain"
# A component that does not exist makes the package not found, with a message saying so.
mkdir "$tmp/cmake-bad"
cat >"$tmp/cmake-bad/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(bad CXX)
find_package(chainalloc CONFIG REQUIRED COMPONENTS nosuch)
EOF
if cmake -S "$tmp/cmake-bad" -B "$tmp/cmake-bad/build" >"$tmp/cmake-bad.log" 2>&1; then
  fail "find_package(chainalloc COMPONENTS nosuch) succeeded"
fi
grep -q "unknown component 'nosuch'" "$tmp/cmake-bad.log" || { cat "$tmp/cmake-bad.log"; fail "no message for an unknown component"; }

# --- the installed launcher ----------------------------------------------------------------
launcher_checks() {  # prefix: the launcher there runs a program with a log and reads it back
  local p=$1 logs="$tmp/logs.$RANDOM" out
  mkdir "$logs"
  # The installed bin/ only: an unrelated CHAINALLOC_LIB or PATH entry must not help.
  out=$(env -u CHAINALLOC_LIB "$p/bin/chainalloc" run --log "$logs/t.%e.%p.log" -- \
        sort "$here/consumer.cpp") || fail "chainalloc run --log exited with $?"
  [[ -n "$out" ]] || fail "chainalloc run: sort printed nothing"
  compgen -G "$logs/t.sort.*.log" >/dev/null || fail "no log written: $(ls "$logs")"
  out=$("$p/bin/chainalloc" log summary "$logs"/t.sort.*.log) \
    || fail "chainalloc log summary exited with $?"
  grep -q "sort" <<<"$out" || fail "chainalloc log summary does not name the program: $out"
  # The reader's compiled pass is found there (check: no scanner is an error) and agrees with
  # the Python pass.
  CHAINALLOC_LOG_SCANNER=check "$p/bin/chainalloc" log summary "$logs"/t.sort.*.log >/dev/null \
    || fail "chainalloc log summary with the installed chainalloc-logscan checked exited with $?"
  out=$("$p/bin/chainalloc" log summary --json "$logs"/t.sort.*.log)
  python3 -c 'import json, sys; d = json.load(sys.stdin); sys.exit(0 if "sort" in json.dumps(d) else 1)' \
    <<<"$out" || fail "chainalloc log summary --json: $out"
  # --pack: the installed scanner packs the run's log, and the reader reads the pack.
  env -u CHAINALLOC_LIB "$p/bin/chainalloc" run --log "$logs/p.%e.%p.log" --pack -- \
      sort "$here/consumer.cpp" >/dev/null 2>&1 || fail "chainalloc run --pack exited with $?"
  compgen -G "$logs/p.sort.*.log" >/dev/null && fail "run --pack left the log: $(ls "$logs")"
  out=$("$p/bin/chainalloc" log summary "$logs"/p.sort.*.zst) || fail "chainalloc log summary of a pack exited with $?"
  grep -q "sort" <<<"$out" || fail "chainalloc log summary of a pack: $out"
  # A chain that ends in jemalloc: the launcher preloads the jemalloc plugin too.
  if [[ -n "$(find "$p" -name libchainalloc-jemalloc.so -print -quit)" ]]; then
    out=$(env -u CHAINALLOC_LIB CHAINALLOC_VERBOSE=1 "$p/bin/chainalloc" run --preset jemalloc -- \
          sort "$here/consumer.cpp" 2>&1 >/dev/null) || fail "chainalloc run --preset jemalloc exited with $?"
    grep -q "> jemalloc;" <<<"$out" || fail "chainalloc run --preset jemalloc did not run jemalloc: $out"
  fi
  out=$("$p/bin/chainalloc" check 'freelist(max=64M) > system') || fail "chainalloc check exited with $?"
  grep -q "^1. freelist" <<<"$out" || fail "chainalloc check printed: $out"
  out=$("$p/bin/chainalloc" presets) || fail "chainalloc presets exited with $?"
  grep -q "^capped" <<<"$out" || fail "chainalloc presets printed: $out"
}
step "installed chainalloc: run --log (and --pack), log summary, check, presets"
launcher_checks "$prefix"

# --- the man page --------------------------------------------------------------------------
step "man chainalloc from the prefix"
page=$(MANPATH="$prefix/share/man" MANWIDTH=100 man -P cat chainalloc 2>&1) \
  || fail "man chainalloc: $page"
for word in CHAINALLOC_CHAIN CHAINALLOC_PRESET CHAINALLOC_LOG CHAINALLOC_STATS \
            CHAINALLOC_STRICT CHAINALLOC_VERBOSE 'EXIT STATUS' 'CHAIN GRAMMAR' 'mode=OCTAL'; do
  grep -q -- "$word" <<<"$page" || fail "man chainalloc does not mention $word"
done
warnings=$(groff -man -ww -z "$prefix/share/man/man1/chainalloc.1" 2>&1)
[[ -z "$warnings" ]] || fail "groff warns about the man page: $warnings"

# --- a moved prefix ------------------------------------------------------------------------
# The launcher finds its parts relative to itself before trying where they were installed.
step "installed chainalloc after moving the prefix"
mv "$prefix" "$tmp/moved"
launcher_checks "$tmp/moved"

step "all passed"
