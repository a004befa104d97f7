#!/usr/bin/env bash
# bench-compare.sh: the weir bench comparison of docs/benchmarks.md, in one run.
#
# Builds weir and internal/kfakeserve, then for each round runs the same
# franz-go client (weir bench; acks=all, idempotent, 6 partitions) against
# Weir (weir serve, data on disk), kfake with its on-disk data directory, and
# the ack-only no-op server, one after another (the order rotates from round
# to round), each on a fresh data directory removed after its run. Produce
# runs also drive the store floor (kfakeserve -noop -store: the no-op server
# doing only the reads, CRC checks, writes and page cache window that any
# storing broker must), which shows what storing itself costs here. Prints one line per run and the median of
# the per-round ratios, and the CPU each server used (from /proc, Linux
# only): on this shared 2-core machine a ratio of throughputs is mostly a
# ratio of CPU spent per message. The first line names the host's CPU, as the
# ratios move with it. Every server is stopped on exit.
#
#   scripts/bench-compare.sh produce SIZE [ROUNDS] [DURATION]
#   scripts/bench-compare.sh consume SIZE [ROUNDS] [COUNT]
#   scripts/bench-compare.sh e2e [ROUNDS] [DURATION]     (100 B at 10,000 msg/s; p99)
#
# Ports 127.0.0.1:19190-19192 must be free.
set -euo pipefail

mode=${1:?usage: bench-compare.sh produce|consume|e2e ...}
shift
case $mode in
produce) size=${1:?size}; rounds=${2:-3}; arg=${3:-3s}; systems="weir kfake noop store" ;;
consume) size=${1:?size}; rounds=${2:-3}; arg=${3:-2000000}; systems="weir kfake" ;;
e2e) size=100; rounds=${1:-3}; arg=${2:-10s}; systems="weir kfake" ;;
*) echo "bench-compare.sh: unknown mode $mode (produce, consume or e2e)" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server=""
cleanup() {
	if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/weir" ./cmd/weir && go build -o "$work/kfakeserve" ./internal/kfakeserve)

start() { # system port datadir
	case $1 in
	weir) "$work/weir" serve --data-dir "$3" --listen "127.0.0.1:$2" --http-listen "" >"$work/server.log" 2>&1 & ;;
	kfake) "$work/kfakeserve" -port "$2" -data-dir "$3" -partitions 6 >"$work/server.log" 2>&1 & ;;
	noop) "$work/kfakeserve" -noop -port "$2" -partitions 6 >"$work/server.log" 2>&1 & ;;
	store) "$work/kfakeserve" -noop -store "$3" -port "$2" -partitions 6 >"$work/server.log" 2>&1 & ;;
	esac
	server=$!
	for _ in $(seq 100); do
		if (echo >"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "bench-compare.sh: $1 did not start:" >&2
	cat "$work/server.log" >&2
	exit 1
}

# server_cpu prints the CPU seconds (user + system) the server has used so
# far, or - where /proc has no such figure.
server_cpu() {
	if [ -r "/proc/$server/stat" ]; then
		awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$server/stat"
	else
		echo -
	fi
}

stop() {
	kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	server=""
}

# metric prints the figure compared (msgs/s, or p99 latency in ms for e2e)
# and the records the run counted.
metric() {
	python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["latency_ms"]["p99"] if sys.argv[1] == "e2e" else round(d["msgs_per_sec"]), d["records"])' "$mode"
}

results="$work/results"
: >"$results"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
echo "host: ${cpu_model:-unknown CPU}, $(getconf _NPROCESSORS_ONLN) cores, $(uname -sr)"
port=19190
read -ra order <<<"$systems"
for round in $(seq "$rounds"); do
	# Rotate who goes first: the first run after a pause meets the coldest
	# memory (docs/benchmarks.md), so no system should always take it.
	n=${#order[@]}
	shift_by=$(((round - 1) % n))
	for i in $(seq 0 $((n - 1))); do
		sys=${order[$(((i + shift_by) % n))]}
		data="$work/data-$sys"
		mkdir -p "$data"
		start "$sys" "$port" "$data"
		b=(-b "127.0.0.1:$port" -t bench -p 6 -s "$size" --format json)
		case $mode in
		produce) out=$("$work/weir" bench produce "${b[@]}" -n 0 -d "$arg" 2>/dev/null) ;;
		consume)
			"$work/weir" bench produce "${b[@]}" -n "$arg" >/dev/null 2>&1
			out=$("$work/weir" bench consume "${b[@]}" -n "$arg" 2>/dev/null) ;;
		e2e) out=$("$work/weir" bench e2e "${b[@]}" --rate 10000 -n 0 -d "$arg" 2>/dev/null) ;;
		esac
		cpu=$(server_cpu)
		stop
		rm -rf "$data"
		read -r value records <<<"$(echo "$out" | metric)"
		echo "round $round  $sys  $value  (server CPU $cpu s)"
		echo "$round $sys $value $cpu $records" >>"$results"
		port=$((19190 + (port - 19189) % 3))
	done
done

python3 - "$results" "$mode" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by, cpu = {}, {}
for r, s, v, c, n in rows:
    by.setdefault(s, {})[r] = float(v)
    if c != "-":
        cpu.setdefault(s, []).append((float(c), int(n)))
def ratio(a, b):
    rs = [by[a][r] / by[b][r] for r in by[a] if r in by.get(b, {}) and by[b][r]]
    return ", ".join(f"{x:.2f}" for x in rs), statistics.median(rs)
what = "p99 latency" if sys.argv[2] == "e2e" else "msgs/s"
for b in ("kfake", "noop", "store"):
    if b in by:
        per, med = ratio("weir", b)
        print(f"Weir / {b} ({what}) per round: {per}; median {med:.2f}")
if "store" in by and "noop" in by:
    per, med = ratio("store", "noop")
    print(f"store / noop ({what}) per round: {per}; median {med:.2f}")
for s, runs in cpu.items():
    line = f"{s} server CPU per run: median {statistics.median(c for c, _ in runs):.2f} s"
    if sys.argv[2] == "produce":
        # The whole server run (start, topic creation) over the records
        # sent: within a percent of the produce path's own cost.
        per_msg = [c / n * 1e6 for c, n in runs if n]
        line += f", {statistics.median(per_msg):.2f} us per message"
    print(line)
PY
