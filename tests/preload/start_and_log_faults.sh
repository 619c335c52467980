#!/bin/bash
# Settings and surroundings that once crashed or hung a program under the preload, while the
# same program ran on glibc. Each case runs a real program and checks that it exits as it
# would without us, with at most the one stderr line that says what chainalloc did instead:
#  - statistics on when glibc serves the first request (the usable-size lookup recursed);
#  - a log in front of a `null` terminal (the logger's allocations were refused, and spdlog's
#    bad_alloc ended in std::terminate);
#  - a log on a full disk (a store into the mapped file was SIGBUS);
#  - a compact log in a tight address space (it fell back to text);
#  - log paths: a FIFO nobody reads (blocked the first malloc), a name too long once %e is
#    expanded, a fixed name shared by 200 processes, a program name with a space and a
#    newline (broke the header), and the file's mode (0600).
#
# Usage: start_and_log_faults.sh CHAINALLOC_SO
# Prints one line per failed check, then "N passed, M failed"; exits 1 on any failure.
set -u

so=${1:?usage: start_and_log_faults.sh CHAINALLOC_SO}
case $so in /*) ;; *) so=$PWD/$so ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
reader=$root/scripts/chainalloc_log.py
scratch=$(mktemp -d)
mounted=""
cleanup() {
    [ -n "$mounted" ] && umount "$mounted" 2> /dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
cd "$scratch" || exit 2

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() {
    echo "FAIL $*"
    failed=$((failed + 1))
}

# run NAME EXPECTED_RC STDERR_REGEX(or "" for none) -- ENV... -- COMMAND...
# Runs COMMAND with LD_PRELOAD and ENV, under a 30 s timeout; checks the exit code and that
# stderr is empty or exactly one line matching STDERR_REGEX.
run() {
    local name=$1 want_rc=$2 want_err=$3
    shift 3
    [ "$1" = -- ] && shift
    local env=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        env+=("$1")
        shift
    done
    shift
    timeout 30 env LD_PRELOAD="$so" "${env[@]}" "$@" > out.txt 2> err.txt
    local rc=$?
    if [ $rc -ne "$want_rc" ]; then
        fail "$name: exit code $rc, want $want_rc; stderr: $(head -c 300 err.txt)"
        return 1
    fi
    local lines
    lines=$(grep -c '' err.txt)
    if [ -z "$want_err" ]; then
        [ "$lines" -eq 0 ] || { fail "$name: stderr not empty: $(head -c 300 err.txt)"; return 1; }
    elif [ "$lines" -ne 1 ] || ! grep -Eq "$want_err" err.txt; then
        fail "$name: want one stderr line matching /$want_err/, got $lines: $(head -c 300 err.txt)"
        return 1
    fi
    ok
}

# The interpreter itself, not a wrapper script that execs it (each process writes its own log).
python=$(python3 -c 'import sys; print(sys.executable)')
# A program with many events (about 300 000 mallocs and frees), through malloc.
busy=(env PYTHONMALLOC=malloc "$python" -c 'x = [str(i) * 3 for i in range(300000)]; print(len(x))')

# ---- statistics with glibc serving first -------------------------------------------------
stats_re='^chainalloc: true \(pid'
for chain in "system" "freelist(max=1) > system" "proxy(log=/dev/null) > system"; do
    timeout 30 env LD_PRELOAD="$so" CHAINALLOC_CHAIN="$chain" CHAINALLOC_STATS=1 /bin/true 2> err.txt
    rc=$?
    if [ $rc -eq 0 ] && grep -Eq "$stats_re" err.txt; then ok; else fail "stats under '$chain': rc $rc: $(head -c 200 err.txt)"; fi
done
timeout 30 env LD_PRELOAD="$so" CHAINALLOC_PRESET=system CHAINALLOC_STATS=1 /bin/true 2> err.txt
rc=$?
if [ $rc -eq 0 ] && grep -Eq "$stats_re" err.txt; then ok; else fail "stats under the system preset: rc $rc"; fi
# A tight address space: the freelist can't reserve its range and steps aside, glibc serves.
(ulimit -v 300000; timeout 30 env LD_PRELOAD="$so" CHAINALLOC_STATS=1 /bin/true 2> err.txt)
rc=$?
if [ $rc -eq 0 ] && grep -Eq "$stats_re" err.txt; then ok; else fail "stats under ulimit -v 300000: rc $rc: $(head -c 200 err.txt)"; fi

# ---- a log in front of a null terminal ---------------------------------------------------
run "log + null terminal" 0 "" -- CHAINALLOC_CHAIN='freelist(max=64M) > null' CHAINALLOC_LOG="$scratch/null.log" -- /bin/true &&
    { head -1 null.log | grep -aq '^# chainalloc-log 2 ' &&
        "$python" "$reader" summary --json null.log | "$python" -c 'import json,sys; sys.exit(not json.load(sys.stdin)["files"][0]["has_footer"])' &&
        ok || fail "log + null terminal: the log has no header or no footer"; }
run "log + null terminal, python3" 0 "" -- CHAINALLOC_PRESET=capped CHAINALLOC_LOG="$scratch/null2.log" -- "${busy[@]}"

# A tight address space: the compact log maps less than its usual 1 TiB (it once fell back to
# text here), and every event is in it.
(ulimit -v 1000000; timeout 30 env LD_PRELOAD="$so" CHAINALLOC_CHAIN="proxy(log=$scratch/tight.log) > system" "${busy[@]:1}" > /dev/null 2> err.txt)
rc=$?
if [ $rc -eq 0 ] && [ ! -s err.txt ] && head -1 tight.log | grep -aq '^# chainalloc-log 2 ' &&
    "$python" "$reader" summary --json tight.log | "$python" -c '
import json, sys
f = json.load(sys.stdin)["files"][0]
sys.exit(not (f["complete"] and f["has_footer"] and f["requests"] > 300000 and f["unknown_frees"] == 0))'; then
    ok
else
    fail "compact log under ulimit -v 1000000: rc $rc, $(head -c 100 tight.log | head -1) $(head -c 200 err.txt)"
fi

# ---- log paths ---------------------------------------------------------------------------
run "log file mode" 0 "" -- CHAINALLOC_LOG="$scratch/mode.log" -- /bin/true &&
    { [ "$(stat -c %a mode.log)" = 600 ] && ok || fail "log file mode is $(stat -c %a mode.log), want 600"; }

saved_umask=$(umask)
umask 022
run "log file mode=0644" 0 "" -- CHAINALLOC_CHAIN='proxy(log=mode644.log, mode=0644) > system' -- /bin/true
umask "$saved_umask"
[ "$(stat -c %a mode644.log)" = 644 ] && ok || fail "proxy(mode=0644) made mode $(stat -c %a mode644.log)"

mkfifo fifo
run "FIFO nobody reads" 0 "cannot create the log '.*fifo': a FIFO that no process reads" -- CHAINALLOC_LOG="$scratch/fifo" -- /bin/true
# A reader that is there before the program starts: opening a FIFO read-write never blocks
# (a background `cat fifo` might not have opened it yet when the program does).
exec 3<> fifo
run "FIFO with a reader" 0 "" -- CHAINALLOC_LOG="$scratch/fifo" -- /bin/true
timeout 10 head -n 1 <&3 > fifo.out
exec 3>&-
# A FIFO can't be mapped: the log is written as text (version 1).
head -1 fifo.out | grep -q '^# chainalloc-log 1 ' && ok || fail "FIFO with a reader: no header came through"

long=$(printf 'x%.0s' $(seq 300))
run "long %e" 0 "cannot create the log .*too long once %e and %p are expanded" -- CHAINALLOC_LOG="$scratch/%e.log" -- bash -c "exec -a $long /bin/true"

run "missing directory" 0 "cannot create the log '$scratch/no/such/dir.log': No such file or directory" -- CHAINALLOC_LOG="$scratch/no/such/dir.log" -- /bin/true

# 200 processes (and bash's forks before each exec), one fixed name: every process gets a
# file of its own, nobody complains.
mkdir shared
run "fixed name, 200 processes" 0 "" -- CHAINALLOC_LOG="$scratch/shared/run.log" -- bash -c 'for i in $(seq 200); do /bin/true; done'
n=$(grep -al '^# chainalloc-log 2 .* program=true ' shared/* | wc -l)
[ "$n" -eq 200 ] && ok || fail "fixed name, 200 processes: $n logs of /bin/true"

# A program name with a space and a newline: the header stays one line, the reader reads it.
mkdir named
run "odd program name" 0 "" -- CHAINALLOC_LOG="$scratch/named/%e.%p.log" -- bash -c $'exec -a "my prog\nx" /bin/echo hi'
log=$(ls named/my_prog_x.*)  # bash's own log is there too, under the same pid
if [ "$(head -1 "$log" | grep -c '')" -eq 1 ] && head -1 "$log" | grep -q 'program=my%20prog%0Ax '; then ok; else fail "odd program name: header $(head -c 200 "$log")"; fi
prog=$("$python" "$reader" summary --json "$log" | "$python" -c 'import json,sys; d=json.load(sys.stdin)["files"][0]; print(repr(d["program"]))' 2>&1)
[ "$prog" = "'my prog\\nx'" ] && ok || fail "odd program name: the reader says $prog"

# ---- a full disk -------------------------------------------------------------------------
mkdir disk
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=5m tmpfs disk 2> /dev/null; then
    mounted=$scratch/disk
    # Room for a little over one window of log: the program starts logging, then the disk
    # fills. It must run to the end, with one line, and leave a log the reader can read.
    dd if=/dev/zero of=disk/filler bs=1M count=3 status=none
    run "disk fills while logging" 0 "the log '.*' cannot grow \(No space left on device\); logging stops here" -- CHAINALLOC_LOG="$scratch/disk/full.%p.log" -- "${busy[@]}"
    grep -q 300000 out.txt && ok || fail "disk fills while logging: the program's output is missing"
    "$python" "$reader" summary disk/full.*.log > summary.txt 2>&1
    rc=$?
    [ $rc -eq 0 ] && ok || fail "disk fills while logging: the reader exits $rc: $(head -c 300 summary.txt)"
    # Now the disk is full: a new log can't get a window at all.
    dd if=/dev/zero of=disk/filler2 bs=1M count=8 status=none 2> /dev/null
    run "full disk from the start" 0 "the log '.*' cannot grow \(No space left on device\)" -- CHAINALLOC_LOG="$scratch/disk/again.log" -- /bin/true
    umount disk && mounted=""
else
    echo "SKIP full disk: cannot mount a tmpfs here (needs root)"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
