#!/usr/bin/env bash
# Replays a capture onto a veth pair and reports what `mailsift sniff` captured and dropped.
#
# Usage (as root): bench/live-replay.sh [RATE] [PCAP]
#   RATE  Mbit/s for `tcpreplay --mbps` (default 1000), or `topspeed`
#   PCAP  capture to replay (default /tmp/live-big.pcap; make one with
#         `cargo run --release --example synth_capture -- 1024 /tmp/live-big.pcap`)
# Environment:
#   MAILSIFT    the binary (default target/release/mailsift, built with `cargo build --release --features live`)
#   SNIFF_ARGS  extra `sniff` arguments, e.g. "--buffer-size 128M"
#   OUT         where the NDJSON sessions go (default /tmp/live-replay.ndjson)
#   PERF        if set, `perf record` the sniffer into this file (PERF_ARGS: its options,
#               default "-F 999", flat: the comm column tells the capture thread apart)
#
# Both ends of the veth pair live in two network namespaces created here (no addresses, no
# routes), so nothing replayed can leave them; a trap deletes them on exit. Besides mailsift's
# own counters it prints the packets tcpreplay sent and the kernel's per-CPU backlog drops
# (/proc/net/softnet_stat), which happen before any capture socket sees the packet.
set -euo pipefail

rate=${1:-1000}
pcap=${2:-/tmp/live-big.pcap}
mailsift=${MAILSIFT:-target/release/mailsift}
out=${OUT:-/tmp/live-replay.ndjson}
rx_ns=msreplay-rx
tx_ns=msreplay-tx
rx_if=msrx0
tx_if=mstx0
work=$(mktemp -d /tmp/live-replay.XXXXXX)
sniff_pid=

cleanup() {
    if [[ -n $sniff_pid ]] && kill -0 "$sniff_pid" 2>/dev/null; then
        kill -INT "$sniff_pid" 2>/dev/null || true
        wait "$sniff_pid" 2>/dev/null || true
    fi
    ip netns del "$rx_ns" 2>/dev/null || true
    ip netns del "$tx_ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

[[ -r $pcap ]] || { echo "no capture at $pcap" >&2; exit 2; }
[[ -x $mailsift ]] || { echo "no mailsift binary at $mailsift" >&2; exit 2; }
if ip netns list | grep -qE "^($rx_ns|$tx_ns)( |$)"; then
    echo "namespace $rx_ns or $tx_ns exists already (another run?); delete it first" >&2
    exit 2
fi

ip netns add "$rx_ns"
ip netns add "$tx_ns"
ip link add "$rx_if" netns "$rx_ns" type veth peer name "$tx_if" netns "$tx_ns"
for side in "$rx_ns:$rx_if" "$tx_ns:$tx_if"; do
    ns=${side%%:*} dev=${side#*:}
    # No IPv6 autoconfiguration chatter on the link: only the replayed packets are captured.
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    ip -n "$ns" link set "$dev" mtu 9000 up
done

if [[ $rate == topspeed ]]; then
    replay_rate=(--topspeed)
else
    replay_rate=(--mbps "$rate")
fi

# Sum over CPUs of the second column of softnet_stat (hex): packets dropped because a CPU's
# input backlog was full.
backlog_drops() {
    local total=0 drops
    while read -r _ drops _; do
        total=$((total + 16#$drops))
    done </proc/net/softnet_stat
    echo "$total"
}

record=()
if [[ -n ${PERF:-} ]]; then
    # shellcheck disable=SC2206 # PERF_ARGS is a list of words
    record=(perf record ${PERF_ARGS:--F 999} -o "$PERF" --)
fi
# shellcheck disable=SC2086 # SNIFF_ARGS is a list of words
ip netns exec "$rx_ns" "${record[@]}" "$mailsift" sniff -i "$rx_if" --ndjson ${SNIFF_ARGS:-} \
    >"$out" 2>"$work/sniff.err" &
sniff_pid=$!
for _ in $(seq 100); do
    grep -q "capturing on" "$work/sniff.err" && break
    kill -0 "$sniff_pid" 2>/dev/null || { cat "$work/sniff.err" >&2; exit 1; }
    sleep 0.1
done

before=$(backlog_drops)
ip netns exec "$tx_ns" tcpreplay "${replay_rate[@]}" -i "$tx_if" "$pcap" >"$work/replay.out" 2>&1
after=$(backlog_drops)
# Let the sniffer's queue drain, then stop it the way a user would.
sleep 1
stop_at=$(date +%s.%N)
kill -INT "$sniff_pid"
wait "$sniff_pid" || true
sniff_pid=
stopped=$(date +%s.%N)

echo "== tcpreplay ${replay_rate[*]} $pcap"
grep -E "Actual|Rated|Successful|Failed" "$work/replay.out" || cat "$work/replay.out"
echo "== mailsift sniff ${SNIFF_ARGS:-}"
grep -v "capturing on" "$work/sniff.err" || true
echo "== kernel backlog drops during the replay (before any capture): $((after - before))"
printf '== exit took %.1f s after SIGINT\n' "$(echo "$stopped - $stop_at" | bc)"
sessions=$(wc -l <"$out")
complete=$(grep -c '"missing_bytes":{"client":0,"server":0}' "$out" || true)
echo "== $sessions NDJSON lines in $out, $complete sessions with no missing bytes"
