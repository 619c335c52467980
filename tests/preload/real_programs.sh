#!/bin/bash
# Runs real programs from Debian packages plainly and under LD_PRELOAD=CHAINALLOC_SO with each
# chain, and requires the same stdout, stderr and exit status as the plain run.
#
# Usage: real_programs.sh CHAINALLOC_SO [CHAIN...]
#   CHAIN is a CHAINALLOC_CHAIN value; the word "default" leaves the variable unset. "@TMP@" in
#   a chain is replaced by the scratch directory (where proxy logs go). Without CHAINs, a
#   default list runs. A program that is not installed is skipped with a message.
# Prints one line per program x chain, then "N passed, M failed"; exits 1 on any failure.
#
# stderr: compared with the plain run's stderr, so a program's own messages are allowed and
# anything the preload adds is not. No noise is filtered: every program here is run so that
# its stderr is deterministic (fixed dates for git, no tty, no progress output).
set -u

so=${1:?usage: real_programs.sh CHAINALLOC_SO [CHAIN...]}
shift
case $so in /*) ;; *) so=$PWD/$so ;; esac  # the programs run in other directories
if [ ! -r "$so" ]; then
    echo "real_programs.sh: $so: no such file" >&2
    exit 2
fi

if [ $# -gt 0 ]; then
    chains=("$@")
else
    chains=(
        "default"
        "freelist > system"
        "freelist(classes=16..256/16, cache=0) > system"
        "freelist > jemalloc"
        "system"
        "proxy(log=@TMP@/proxy.%p.log) > freelist > system"
    )
fi

scratch=$(mktemp -d)
# KEEP_SCRATCH=1 keeps the outputs for a look after a failure.
trap '[ "${KEEP_SCRATCH:-0}" = 1 ] && echo "scratch kept: $scratch" || rm -rf "$scratch"' EXIT

passed=0
failed=0

# Prefers the Debian binary over shims (e.g. pyenv's python3 is a bash script).
find_program() {
    if [ -x "/usr/bin/$1" ]; then echo "/usr/bin/$1"; else command -v "$1" 2>/dev/null; fi
}

# ---------------------------------------------------------------- the workloads
# Each is a function run in a fresh empty directory as the current directory; it must print
# something deterministic that depends on the work being done right.

work_python3() {
    cat > work.py <<'EOF'
import hashlib
words = {}
rows = []
for i in range(200000):
    key = "k%d" % ((i * 7919) % 50021)
    words[key] = words.get(key, 0) + i
    if i % 10 == 0:
        rows.append([str(i), key * 3, {"n": i, "s": "x" * (i % 97)}])
text = ",".join(sorted(words))
blob = "".join(r[1] for r in rows)
h = hashlib.sha256()
h.update(text.encode())
h.update(blob.encode())
h.update(repr(sum(r[2]["n"] for r in rows)).encode())
del rows
big = [bytes(range(256)) * (i % 50) for i in range(3000)]
h.update(b"".join(big))
print(len(words), len(text), h.hexdigest())
EOF
    "$prog" work.py
}

# A multi-threaded server: python's ThreadingHTTPServer on a loopback port, 8 client threads,
# every Python object on malloc (PYTHONMALLOC=malloc), blocks freed by threads that did not
# make them. Bounded: 8 x 40 requests.
work_python3_server() {
    cat > server.py <<'EOF'
import hashlib, http.server, json, threading, urllib.request

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(self.path.strip("/"))
        body = json.dumps({"n": n, "items": [str(i) * (n % 7 + 1) for i in range(n % 50)]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]
digests = [None] * 8

def client(k):
    h = hashlib.sha256()
    for i in range(40):
        with urllib.request.urlopen("http://127.0.0.1:%d/%d" % (port, k * 100 + i), timeout=30) as r:
            h.update(r.read())
    digests[k] = h.hexdigest()

threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
for t in threads: t.start()
for t in threads: t.join()
server.shutdown()
print(hashlib.sha256("".join(digests).encode()).hexdigest())
EOF
    PYTHONMALLOC=malloc "$prog" server.py
}

work_sqlite3() {
    "$prog" work.db <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
INSERT INTO t(grp, name, val) SELECT i % 97, printf('name-%08d-%s', i, hex(i * 31)), i * 1.5 FROM n;
CREATE INDEX t_grp ON t(grp, name);
SELECT count(*), sum(val), min(name), max(name) FROM t;
SELECT grp, count(*), sum(length(name)), avg(val) FROM t GROUP BY grp ORDER BY grp LIMIT 5;
SELECT group_concat(name, '') IS NOT NULL, length(group_concat(name, '')) FROM t;
UPDATE t SET name = name || name WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
VACUUM;
SELECT count(*), sum(length(name)) FROM t;
EOF
}

work_git() {
    export GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=test@example.invalid
    export GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=test@example.invalid
    export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
    export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD  # no user or system configuration leaks in
    "$prog" init -q -b main repo || return
    cd repo || return
    local i
    for i in 1 2 3 4 5 6; do
        seq 1 $((i * 3000)) | sed "s/^/line $i /" > "file$i.txt"
        "$prog" add "file$i.txt" && "$prog" commit -q -m "commit $i" || return
    done
    sed -i 's/line 1 1/changed/' file1.txt
    "$prog" commit -q -am "change" || return
    "$prog" log --stat --format='%H %s'
    "$prog" gc -q || return
    "$prog" count-objects -v | grep -E '^(count|in-pack|packs)'
    "$prog" fsck --no-progress 2>&1
}

work_gxx() {
    cat > work.cpp <<'EOF'
#include <iostream>
#include <map>
#include <string>
#include <vector>
int main() {
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 100000; ++i) m["k" + std::to_string(i % 1000)].push_back(i);
    long sum = 0;
    for (auto& [k, v] : m) sum += static_cast<long>(v.size()) * static_cast<long>(k.size());
    std::cout << m.size() << " " << sum << std::endl;
}
EOF
    "$prog" -std=c++17 -O1 -o work work.cpp || return
    ./work
}

work_sort() {
    # A few MB of lines, generated once before the runs.
    "$prog" -S 1M --parallel=2 -t, -k2,2 -k1,1n "$scratch/sort-input.txt" | md5sum
    "$prog" -u -r "$scratch/sort-input.txt" | wc -l
}

work_perl() {
    # shellcheck disable=SC2016  # perl code, not shell
    "$prog" -e '
        my %h; my $text = "";
        for my $i (1 .. 200000) {
            my $k = sprintf("key%05d", ($i * 7919) % 65521);
            $h{$k} .= chr(65 + $i % 26);
            $text .= "$k=$i;" if $i % 7 == 0;
        }
        my @m = ($text =~ /key(\d*7\d*)=(\d+);/g);
        my $long = 0; $long += tr/A-M// for values %h;
        my @sorted = sort { length($h{$b}) <=> length($h{$a}) || $a cmp $b } keys %h;
        (my $copy = $text) =~ s/(\d+);/<$1>/g;
        print scalar(keys %h), " ", scalar(@m), " ", $long, " ", $sorted[0], " ", length($copy), "\n";
    '
}

programs=(python3 python3-server sqlite3 git g++ sort perl)
declare -A workload=([python3]=work_python3 [python3-server]=work_python3_server
                     [sqlite3]=work_sqlite3 [git]=work_git
                     [g++]=work_gxx [sort]=work_sort [perl]=work_perl)
declare -A binary=([python3-server]=python3)  # where a program's name is not its binary

awk 'BEGIN { for (i = 0; i < 120000; i++) printf "%d,%s%05d,%x\n", (i * 48271) % 99991, (i % 3 ? "b" : "a"), (i * 7) % 10007, i }' \
    > "$scratch/sort-input.txt"

# run NAME LABEL [CHAIN]: runs the workload in a fresh directory; with a CHAIN (or "default"),
# under the preload. Leaves NAME.LABEL.{out,err,rc} in $scratch. The workload runs in its own
# bash under timeout, which kills the whole process group on a hang.
run() {
    local name=$1 label=$2 dir="$scratch/$1.$2" fn=${workload[$1]}
    local -a envs=(-u LD_PRELOAD -u CHAINALLOC_CHAIN -u CHAINALLOC_PRESET -u CHAINALLOC_LOG
                   -u CHAINALLOC_STATS -u CHAINALLOC_STRICT prog="$prog" scratch="$scratch")
    if [ $# -ge 3 ]; then
        if [[ $3 == *jemalloc* ]]; then  # the jemalloc terminal's plugin, preloaded after us
            envs+=(LD_PRELOAD="$so ${so%/*}/libchainalloc-jemalloc.so")
        else
            envs+=(LD_PRELOAD="$so")
        fi
        [ "$3" = default ] || envs+=(CHAINALLOC_CHAIN="${3//@TMP@/$dir}")
    fi
    mkdir -p "$dir"
    (cd "$dir" && exec env "${envs[@]}" timeout -k 10 300 bash -c "$(declare -f "$fn"); $fn") \
        > "$scratch/$name.$label.out" 2> "$scratch/$name.$label.err"
    echo $? > "$scratch/$name.$label.rc"
}

# Shows the first differing lines of two files, indented.
show_diff() {
    diff "$1" "$2" | head -n 6 | sed 's/^/        /'
}

for name in "${programs[@]}"; do
    prog=$(find_program "${binary[$name]:-$name}")
    if [ -z "$prog" ]; then
        echo "SKIP $name: not installed"
        continue
    fi
    run "$name" plain
    plain_rc=$(cat "$scratch/$name.plain.rc")
    if [ "$plain_rc" != 0 ] || [ ! -s "$scratch/$name.plain.out" ]; then
        # The workload itself is broken here; every chain would "pass" by failing the same way.
        echo "FAIL $name (plain run): exit $plain_rc, $(wc -c < "$scratch/$name.plain.out") bytes of output"
        head -n 5 "$scratch/$name.plain.err" | sed 's/^/        /'
        failed=$((failed + 1))
        continue
    fi
    i=0
    for chain in "${chains[@]}"; do
        i=$((i + 1))
        label=chain$i
        run "$name" "$label" "$chain"
        rc=$(cat "$scratch/$name.$label.rc")
        problems=()
        [ "$rc" = "$plain_rc" ] || problems+=("exit $rc, plain $plain_rc")
        cmp -s "$scratch/$name.plain.out" "$scratch/$name.$label.out" || problems+=("stdout differs")
        cmp -s "$scratch/$name.plain.err" "$scratch/$name.$label.err" || problems+=("stderr differs")
        if [[ $chain == *proxy* && $chain == *@TMP@* ]]; then
            # The proxy must have logged somewhere we can see: at least one non-empty file.
            logs=$(find "$scratch/$name.$label" -maxdepth 1 -name 'proxy.*.log' -size +0 | wc -l)
            [ "$logs" -gt 0 ] || problems+=("no proxy log written")
        fi
        if [ ${#problems[@]} -eq 0 ]; then
            echo "ok   $name [$chain]"
            passed=$((passed + 1))
        else
            echo "FAIL $name [$chain]: $(IFS=';'; echo "${problems[*]}")"
            if [[ ${problems[*]} == *stdout* ]]; then
                show_diff "$scratch/$name.plain.out" "$scratch/$name.$label.out"
            fi
            if [[ ${problems[*]} == *stderr* || $rc != "$plain_rc" ]]; then
                show_diff "$scratch/$name.plain.err" "$scratch/$name.$label.err"
            fi
            failed=$((failed + 1))
        fi
        rm -rf "$scratch/$name.$label"  # proxy logs and repositories can be large
    done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
