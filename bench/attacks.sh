#!/usr/bin/env bash
# Memory and time of mailsift on the hostile captures of examples/hostile_capture.rs, at full
# scale, and whether the control session inside each came out whole. See bench/README.md.
#
# Usage: bench/attacks.sh [--no-build] [--quick]
#   --no-build   use the binaries already in target/release
#   --quick      a tenth of the flows (a smoke run)
#
# Captures go to $BENCH_DIR (default ${TMPDIR:-/tmp}/mailsift-bench) and are reused. Needs
# cargo, python3 and GNU time (/usr/bin/time). Not part of CI.
set -euo pipefail

no_build=0
scale=1
for arg in "$@"; do
    case "$arg" in
        --no-build) no_build=1 ;;
        --quick) scale=10 ;;
        *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "attacks.sh: GNU time (/usr/bin/time) is needed" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bench_dir=${BENCH_DIR:-${TMPDIR:-/tmp}/mailsift-bench}
mkdir -p "$bench_dir"
if [ "$no_build" != 1 ]; then
    echo "building (cargo build --release --bin mailsift --example hostile_capture)..." >&2
    cargo build --release --quiet --bin mailsift --example hostile_capture
fi
mailsift=$repo/target/release/mailsift
hostile=$repo/target/release/examples/hostile_capture
gen_hash=$(cat examples/hostile_capture.rs src/capture/synth.rs | sha256sum | cut -c1-12)

# name | arguments (FLOWS first where there is one) | what it is
attacks=(
    "noops|noops 130000 1000|130 000 SMTP flows, each pipelining 1 000 NOOPs no reply answers"
    "unanswered|unanswered 10000 300|10 000 client-only sessions, EHLO, MAIL and 300 recipients with 100-byte paths"
    "long-lines|long-lines 200000 1|200 000 open flows, each holding an unterminated 1.4 KB line"
    "open-headers|open-headers 16000 60|16 000 flows, each inside DATA with 60 KiB of header lines and no end to them"
    "replies|replies 130000 100|130 000 flows whose server sends 100 replies no command asked for"
    "half-open|half-open 250000|250 000 open, half-finished SMTP flows"
    "big-attachment|big-attachment 50|one message with a 50 MiB base64 attachment"
    "client-only|client-only 40 2|40 client-only sessions, each an unanswered 2 MiB message"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "| attack (\`hostile_capture\` arguments) | file | peak RSS | wall | control intact |"
echo "| --- | --- | --- | --- | --- |"
for entry in "${attacks[@]}"; do
    IFS='|' read -r name args what <<<"$entry"
    read -r -a argv <<<"$args"
    # Scale the flow count (the first number) down for a smoke run.
    if [ "$scale" -ne 1 ] && [ "${#argv[@]}" -ge 2 ] && [ "$name" != big-attachment ]; then
        argv[1]=$(( argv[1] / scale ))
    fi
    pcap=$bench_dir/attack-${argv[*]// /-}-$gen_hash.pcap
    pcap=${pcap// /-}
    if [ ! -s "$pcap" ]; then
        "$hostile" "${argv[@]}" "$pcap.tmp" 2>/dev/null
        mv "$pcap.tmp" "$pcap"
    fi
    cat "$pcap" >/dev/null
    t0=$EPOCHREALTIME
    /usr/bin/time -v -o "$work/time" "$mailsift" export --ndjson "$pcap" -o "$work/out.ndjson" \
        2>"$work/stderr" || true
    t1=$EPOCHREALTIME
    rss=$(awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$work/time")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    size=$(du -m "$pcap" | cut -f1)
    intact=$(python3 - "$work/out.ndjson" <<'PY'
import json, sys
found = []
for line in open(sys.argv[1]):
    s = json.loads(line)
    if s.get("type", "session") != "session":
        continue
    if any(c.get("username") == "control" for c in s.get("credentials", [])):
        found.append(s)
if len(found) != 1:
    print(f"no ({len(found)} control sessions)")
    sys.exit()
s = found[0]
cred = s["credentials"][0]
msgs = s.get("messages", [])
missing = sum(s.get("missing_bytes", {}).values())
ok = (cred.get("success") is True and len(msgs) == 1 and msgs[0].get("complete")
      and (msgs[0].get("reply") or {}).get("code") == 250 and missing == 0
      and (s.get("smtp") or {}).get("quit"))
print("yes" if ok else "no: " + json.dumps({"credential": cred, "messages": len(msgs), "missing": missing}))
PY
)
    echo "| \`${argv[*]}\`: $what | $size MB | $rss MiB | $wall s | $intact |"
done
