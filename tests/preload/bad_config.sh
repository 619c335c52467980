#!/bin/bash
# The configuration contract (docs/DESIGN.md §3) seen from outside the process: a bad setting prints
# exactly one line on stderr, "chainalloc: ...", naming the variable and the bad token, and the
# program still runs on the default chain; with CHAINALLOC_STRICT=1 it aborts (SIGABRT) before
# main instead. A good setting prints nothing on stderr.
#
# Usage: bad_config.sh CHAINALLOC_SO
# Prints one line per failed check, one "ok" line per passed case, then "N passed, M failed";
# exits 1 on any failure.
set -u

so=${1:?usage: bad_config.sh CHAINALLOC_SO}
case $so in /*) ;; *) so=$PWD/$so ;; esac
if [ ! -r "$so" ]; then
    echo "bad_config.sh: $so: no such file" >&2
    exit 2
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" || exit 2
ulimit -c 0  # the strict cases abort on purpose: no core files

passed=0
failed=0

# Programs to run: a tiny C one and an interpreter that allocates a lot at start-up.
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || true)
programs=("/bin/echo hello")
expected_out=("hello")
if [ -n "$python" ]; then
    programs+=("$python -c print(42)")
    expected_out+=("42")
else
    echo "SKIP python3: not installed"
fi

# Bad settings: "VARIABLE|VALUE|TOKEN[,TOKEN...]". The message must contain the variable and at
# least one of the tokens (for "terminal not last", either layer may be the one named).
bad_cases=(
    "CHAINALLOC_CHAIN|fre|fre"
    "CHAINALLOC_CHAIN|freelist(foo=1) > system|foo"
    "CHAINALLOC_CHAIN|freelist(max=12Q) > system|12Q"
    "CHAINALLOC_CHAIN|system > freelist|system,freelist"
    "CHAINALLOC_CHAIN|freelist|freelist"
    "CHAINALLOC_CHAIN|freelist(classes=) > system|classes"
    "CHAINALLOC_CHAIN|freelist(classes=16,24,32) > system|24"
    "CHAINALLOC_STATS|maybe|maybe"
    "CHAINALLOC_VERBOSE|loud|loud"
    "CHAINALLOC_CHIAN|freelist > system|CHAINALLOC_CHIAN,CHAINALLOC_CHAIN"
    "CHAINALLOC_PRESET|nope|nope"
    "CHAINALLOC_CHAIN|proxy(stacks=deep) > freelist > system|deep"
)

# Good settings: "VARIABLE=VALUE[;VARIABLE=VALUE...]" ("" = nothing set). Only chains that can
# run these programs: "... > null" is valid but may starve an interpreter on purpose.
good_cases=(
    ""
    "CHAINALLOC_CHAIN=freelist > system"
    "CHAINALLOC_CHAIN=freelist(classes=16..256/16, cache=0) > system"
    "CHAINALLOC_CHAIN=freelist(classes=16,32,48, max=64M, cache=8) > system"
    "CHAINALLOC_CHAIN=system"
    "CHAINALLOC_CHAIN=proxy(log=$scratch/proxy.%p.log) > freelist > system"
    "CHAINALLOC_CHAIN=proxy(log=$scratch/proxy.%p.log, stacks=0) > freelist > system"
    "CHAINALLOC_STATS=0"
    "CHAINALLOC_STRICT=1;CHAINALLOC_CHAIN=freelist > system"
)

# launch PROGRAM VAR=VALUE...: runs PROGRAM under the preload with exactly these CHAINALLOC_*
# variables; leaves out, err and the status in $status. The subshell sets the environment and
# execs the program itself, so no helper process (env, timeout) loads the preload and adds
# lines of its own to stderr.
launch() {
    local program=$1
    shift
    {
        (
            unset CHAINALLOC_CHAIN CHAINALLOC_PRESET CHAINALLOC_LOG CHAINALLOC_STATS CHAINALLOC_STRICT \
                CHAINALLOC_VERBOSE
            local kv
            for kv in "$@"; do export "${kv%%=*}=${kv#*=}"; done
            export LD_PRELOAD=$so
            # shellcheck disable=SC2086  # the program string holds its arguments
            exec $program
        ) > out 2> err
        status=$?
    } 2> /dev/null  # bash's own "Aborted" notice for the strict cases
}

fail() {
    echo "FAIL $1"
    sed 's/^/        stderr: /' err | head -n 5
    failed=$((failed + 1))
}

for i in "${!programs[@]}"; do
    program=${programs[$i]}
    want=${expected_out[$i]}
    for case in "${bad_cases[@]}"; do
        IFS='|' read -r var value tokens <<< "$case"
        what="$program with $var='$value'"

        launch "$program" "$var=$value"
        lines=$(wc -l < err)
        first=$(head -n 1 err)
        named=0
        IFS=',' read -r -a toks <<< "$tokens"
        for t in "${toks[@]}"; do [[ $first == *"$t"* ]] && named=1; done
        if [ "$status" -ne 0 ] || [ "$(cat out)" != "$want" ]; then
            fail "$what: exit $status, stdout '$(head -c 80 out)' (want '$want' from the default chain)"
        elif [ "$lines" -ne 1 ]; then
            fail "$what: $lines lines on stderr, want exactly 1"
        elif [[ $first != "chainalloc: "* ]]; then
            fail "$what: stderr line does not start with 'chainalloc: '"
        elif [[ $first != *"$var"* ]] || [ $named = 0 ]; then
            fail "$what: stderr line does not name $var and '${tokens//,/' or '}'"
        else
            echo "ok   $what"
            passed=$((passed + 1))
        fi

        launch "$program" "$var=$value" "CHAINALLOC_STRICT=1"
        what="$program with $var='$value' CHAINALLOC_STRICT=1"
        if [ -s out ]; then
            fail "$what: main ran (stdout '$(head -c 80 out)'), want an abort before main"
        elif [ "$status" -ne $((128 + 6)) ]; then
            fail "$what: status $status, want $((128 + 6)) (SIGABRT)"
        elif ! grep -q "^chainalloc: .*$var" err; then
            fail "$what: no 'chainalloc: ... $var' line on stderr before the abort"
        else
            echo "ok   $what"
            passed=$((passed + 1))
        fi
    done

    for case in "${good_cases[@]}"; do
        settings=()
        if [ -n "$case" ]; then IFS=';' read -r -a settings <<< "$case"; fi
        what="$program with ${case:-no CHAINALLOC_* variable}"
        launch "$program" "${settings[@]}"
        if [ "$status" -ne 0 ] || [ "$(cat out)" != "$want" ]; then
            fail "$what: exit $status, stdout '$(head -c 80 out)', want '$want'"
        elif [ -s err ]; then
            fail "$what: wrote to stderr"
        else
            echo "ok   $what"
            passed=$((passed + 1))
        fi
    done
done

# Each setting fails alone: with every variable good but one, the bad one gets its line and
# the others still apply. CHAINALLOC_VERBOSE's line (or the statistics) shows the chain that
# runs; the log and the statistics file show themselves.
good=("CHAINALLOC_CHAIN=freelist(max=1G) > system" "CHAINALLOC_LOG=$scratch/alone.%p.log"
      "CHAINALLOC_STATS=$scratch/stats.%p.txt" "CHAINALLOC_VERBOSE=1" "CHAINALLOC_STRICT=0")
bad=("CHAINALLOC_CHAIN=freelist(max=1Q) > system" "CHAINALLOC_LOG=a log" "CHAINALLOC_STATS=maybe"
     "CHAINALLOC_VERBOSE=loud" "CHAINALLOC_STRICT=perhaps")
for i in "${!good[@]}"; do
    settings=("${good[@]}")
    settings[$i]=${bad[$i]}
    var=${bad[$i]%%=*}
    rm -f "$scratch"/alone.*.log "$scratch"/stats.*.txt
    launch "/bin/echo hello" "${settings[@]}"
    what="one bad setting, $var"
    problems=""
    [ "$status" -eq 0 ] && [ "$(cat out)" = hello ] || problems+=" exit $status;"
    [ "$(grep -c "^chainalloc: $var: " err)" -eq 1 ] || problems+=" no single line naming $var;"
    if [ "$var" != CHAINALLOC_CHAIN ]; then
        cat err "$scratch"/stats.*.txt 2> /dev/null | grep -q "chain.*max=1G" || problems+=" the chain's cap was dropped;"
    fi
    if [ "$var" != CHAINALLOC_LOG ]; then
        ls "$scratch"/alone.*.log > /dev/null 2>&1 || problems+=" no log;"
    fi
    if [ "$var" != CHAINALLOC_STATS ]; then
        ls "$scratch"/stats.*.txt > /dev/null 2>&1 || problems+=" no statistics file;"
    fi
    if [ "$var" != CHAINALLOC_VERBOSE ]; then
        grep -q "^chainalloc: echo (pid [0-9]*): chain " err || problems+=" no verbose line;"
    fi
    if [ -n "$problems" ]; then
        fail "$what:$problems"
    else
        echo "ok   $what: the others still apply"
        passed=$((passed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
