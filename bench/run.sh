#!/usr/bin/env bash
# Whole-program benchmark of mailsift on a large synthetic capture. See bench/README.md.
#
# Usage: bench/run.sh [options] [SIZE_MIB]        (SIZE_MIB default 1024)
#
#   --runs N              best of N runs of each command, interleaved (default 3; env RUNS)
#   --tshark-timeout S    seconds before tshark is stopped and reported as timed out
#                         (default 900; 0 skips tshark; env TSHARK_TIMEOUT)
#   --tshark-runs N       runs of tshark, in the first N rounds (default 1; env TSHARK_RUNS)
#   --concurrent N        connections open at once (default 500; env CONCURRENT)
#   --min-message BYTES   smallest message (default 2048; env MIN_MESSAGE)
#   --max-message BYTES   largest message (default 2097152; env MAX_MESSAGE)
#   --seed S              generator seed (default 42; env SEED)
#   --no-build            use the binaries already in target/release (env NO_BUILD=1)
#
# The capture and its manifest are written to $BENCH_DIR (default ${TMPDIR:-/tmp}/mailsift-bench),
# named after the generator settings and a hash of the generator's sources, and reused when
# already there. Needs: cargo, /usr/bin/time (GNU time), openssl, python3, timeout, and tshark
# unless skipped. Not part of CI.
set -euo pipefail

runs=${RUNS:-3}
tshark_timeout=${TSHARK_TIMEOUT:-900}
tshark_runs=${TSHARK_RUNS:-1}
concurrent=${CONCURRENT:-500}
min_message=${MIN_MESSAGE:-2048}
max_message=${MAX_MESSAGE:-2097152}
seed=${SEED:-42}
no_build=${NO_BUILD:-0}
size_mib=1024

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --tshark-timeout) tshark_timeout=$2; shift 2 ;;
        --tshark-runs) tshark_runs=$2; shift 2 ;;
        --concurrent) concurrent=$2; shift 2 ;;
        --min-message) min_message=$2; shift 2 ;;
        --max-message) max_message=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --no-build) no_build=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; usage ;;
        *) size_mib=$1; shift ;;
    esac
done
for v in runs tshark_timeout tshark_runs concurrent min_message max_message seed size_mib; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be a whole number, not '${!v}'" >&2; exit 2; }
done
[ "$runs" -ge 1 ] || { echo "run.sh: --runs must be at least 1" >&2; exit 2; }

for tool in cargo openssl python3 timeout; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "run.sh: GNU time (/usr/bin/time) is needed" >&2; exit 1; }
have_tshark=1
if [ "$tshark_timeout" -eq 0 ] || [ "$tshark_runs" -eq 0 ]; then
    have_tshark=0
elif ! command -v tshark >/dev/null; then
    echo "run.sh: tshark not found, skipped" >&2
    have_tshark=0
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bench_dir=${BENCH_DIR:-${TMPDIR:-/tmp}/mailsift-bench}
mkdir -p "$bench_dir"
work=$(mktemp -d "$bench_dir/run.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ "$no_build" != 1 ]; then
    echo "building (cargo build --release --bin mailsift --example synth_capture)..." >&2
    cargo build --release --quiet --bin mailsift --example synth_capture
fi
mailsift=$repo/target/release/mailsift
synth=$repo/target/release/examples/synth_capture

# The capture, named after its settings and the generator's sources (same name, same bytes).
gen_hash=$(cat src/capture/workload.rs src/capture/workload/*.rs src/capture/synth.rs \
    examples/synth_capture.rs | sha256sum | cut -c1-12)
name="mix-${size_mib}m-c${concurrent}-${min_message}-${max_message}-s${seed}-${gen_hash}"
pcap=$bench_dir/$name.pcap
manifest=$bench_dir/$name.json
gen_args=("$size_mib" "$pcap" --concurrent "$concurrent" --min-message "$min_message"
    --max-message "$max_message" --seed "$seed" --manifest "$manifest")
if [ -s "$pcap" ] && [ -s "$manifest" ]; then
    echo "reusing $pcap" >&2
else
    echo "generating $pcap ..." >&2
    "$synth" "$size_mib" "$pcap.tmp" --concurrent "$concurrent" --min-message "$min_message" \
        --max-message "$max_message" --seed "$seed" --manifest "$manifest.tmp"
    mv "$pcap.tmp" "$pcap"
    mv "$manifest.tmp" "$manifest"
fi
file_bytes=$(stat -c %s "$pcap")
# Into the page cache, so the first command timed does not pay for the disk.
cat "$pcap" >/dev/null

names=(openssl export-1 export-default analyze tshark)
labels=("\`openssl dgst -sha256 FILE\`"
    "\`mailsift export --ndjson --threads 1 FILE -o /dev/null\`"
    "\`mailsift export --ndjson FILE -o /dev/null\` (default threads)"
    "\`mailsift analyze FILE > /dev/null\`"
    "\`tshark -q -z credentials -r FILE\`")

# Runs command NAME once under GNU time; appends "wall cpu rss_kib status" to $work/NAME.
# Wall time from bash's clock (GNU time rounds it to 0.01 s), CPU and peak RSS from GNU time.
measure() {
    local name=$1 status=0
    local t=$work/$name.time
    local t0=$EPOCHREALTIME
    case "$name" in
        openssl) /usr/bin/time -v -o "$t" openssl dgst -sha256 "$pcap" >/dev/null || status=$? ;;
        export-1) /usr/bin/time -v -o "$t" "$mailsift" export --ndjson --threads 1 "$pcap" \
            -o /dev/null || status=$? ;;
        export-default) /usr/bin/time -v -o "$t" "$mailsift" export --ndjson "$pcap" \
            -o /dev/null || status=$? ;;
        analyze) /usr/bin/time -v -o "$t" "$mailsift" analyze "$pcap" >/dev/null || status=$? ;;
        tshark) /usr/bin/time -v -o "$t" timeout "$tshark_timeout" tshark -q -z credentials \
            -r "$pcap" >"$work/tshark.run" 2>/dev/null || status=$?
            [ "$status" -ne 0 ] || mv "$work/tshark.run" "$work/tshark.out" ;;
    esac
    local t1=$EPOCHREALTIME
    awk -v status="$status" -v t0="$t0" -v t1="$t1" '
        /User time/ { user = $NF }
        /System time/ { sys = $NF }
        /Maximum resident set size/ { rss = $NF }
        END { printf "%.3f %.3f %d %d\n", t1 - t0, user + sys, rss, status }
    ' "$t" >>"$work/$name"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date -u '+%Y-%m-%d %H:%M UTC')
for round in $(seq 1 "$runs"); do
    echo "round $round of $runs..." >&2
    for name in "${names[@]}"; do
        if [ "$name" = tshark ]; then
            [ "$have_tshark" = 1 ] && [ "$round" -le "$tshark_runs" ] || continue
        fi
        measure "$name"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# One more export, untimed, to check its content against the manifest.
echo "checking the export against the manifest..." >&2
"$mailsift" export --ndjson "$pcap" -o "$work/export.ndjson"
check=$(python3 bench/compare.py "$manifest" "$work/export.ndjson" || true)

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src examples Cargo.toml Cargo.lock 2>/dev/null || commit="$commit (with local changes)"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
totals=$(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["totals"]
print("%(sessions)d sessions (%(smtp_sessions)d SMTP, %(pop3_sessions)d POP3), %(messages)d messages, "
      "%(attachments)d attachments, %(credentials)d credentials (%(failed_credentials)d failed), "
      "%(packets)d packets; up to %(max_open)d connections open at once, %(mean_open)s on average" % t)
' "$manifest")

echo
echo "Capture: $(basename "$pcap"), $((file_bytes >> 20)) MiB ($file_bytes bytes): $totals."
echo "Generated by: \`synth_capture ${gen_args[*]/#$bench_dir\//}\`"
echo "Run: \`bench/run.sh --runs $runs --concurrent $concurrent --min-message $min_message --max-message $max_message --seed $seed $size_mib\`, $start, commit $commit."
echo "Machine: $(nproc) cores, $cpu; load average $load_before before, $load_after after."
echo
echo "| command | wall s (best of runs) | CPU s (user+sys, least) | MB/s of capture | peak RSS MiB | wall / openssl's |"
echo "| --- | --- | --- | --- | --- | --- |"
openssl_wall=$(sort -n "$work/openssl" | head -1 | cut -d' ' -f1)
for i in "${!names[@]}"; do
    name=${names[$i]}
    label=${labels[$i]}
    if [ ! -s "$work/$name" ]; then
        [ "$name" = tshark ] && echo "| $label | skipped | | | | |"
        continue
    fi
    awk -v label="$label" -v bytes="$file_bytes" -v base="$openssl_wall" -v name="$name" \
        -v limit="$tshark_timeout" '
        { n++
          if ($4 == 0 && (best == "" || $1 < best)) best = $1
          if ($4 == 0 && (cpu == "" || $2 < cpu)) cpu = $2
          if ($3 > rss) rss = $3
          if ($4 != 0) failed = $4 }
        END {
            runs = n " run" (n > 1 ? "s" : "")
            if (best == "") {
                what = (name == "tshark" && failed == 124) ? "timed out after " limit " s" : "failed (status " failed ")"
                printf "| %s | %s (%s) | | | %.0f | |\n", label, what, runs, rss / 1024
            } else {
                printf "| %s | %.2f (%s) | %.2f | %.0f | %.0f | %.2f |\n", label, best, runs, cpu,
                    bytes / 1e6 / best, rss / 1024, best / base
            }
        }' "$work/$name"
done
echo
if [ -s "$work/tshark.out" ]; then
    rows=$(awk '/^------/ { on = 1; next } /^=====/ { on = 0 }
        on && NF { n++; by[$2]++ }
        END { s = n + 0 " rows"; for (p in by) s = s ", " by[p] " " p; print s }' "$work/tshark.out")
    echo "tshark's credentials table (last run that finished): $rows."
fi
echo "Check (mailsift export, default threads, against the generator's manifest):"
echo "$check" | sed 's/^/    /'
