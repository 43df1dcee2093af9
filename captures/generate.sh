#!/usr/bin/env bash
# Produce mailsift's test captures with real mail servers and real clients
# on loopback.  See captures/README.md for what every capture holds.
#
#   bash captures/generate.sh
#   ONLY="smtp-starttls pop3-stls" bash captures/generate.sh
#
# ONLY (names of captures, with or without .pcap / .pcapng, separated by
# spaces) makes just those, in the order of CAPTURES below, and leaves every
# other file in captures/ alone; without it every capture is made.
#
# Servers (started by lab.sh, configured in a temp dir, stopped at the end):
#   Postfix  SMTP on 127.0.0.1 and ::1, ports 25 (MX-style, STARTTLS, AUTH only
#            after STARTTLS), 587 (submission, STARTTLS optional, AUTH also in
#            cleartext) and 465 (implicit TLS); SASL via Dovecot's auth socket.
#   Dovecot  POP3 on 127.0.0.1 and ::1, ports 110 (plain + STLS) and 995
#            (implicit TLS); passwd-file with plaintext passwords so APOP and
#            CRAM-MD5 work.
#   For mail-other-ports only: one more Postfix listener on 2525 (like 587)
#   and one more Dovecot POP3 listener on 8110 (like 110), plus a
#   python3 -m http.server on 8080 and an FTP look-alike on 2121.
#   For mail-via-proxy: the same extra Postfix listener on 2525, and the
#   loopback proxies of captures/proxy.py: HTTP CONNECT on 3128, SOCKS4/4a/5
#   on 1080 (only the client-to-proxy legs are captured).
# Clients: swaks, curl and Python's smtplib/poplib (captures/scenarios.py).
# Which client made which session is noted at each scenario below.
#
# KEEP_TMP=1 keeps the temp dir (configs, logs, delivered mail) for debugging.
#
# Only loopback addresses are used.  Needs root (ports < 1024, tcpdump, the
# servers' privilege separation).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE
SRC=$HERE/source
PY=${PYTHON:-python3}

# The servers (and the fake test accounts ALICE, BOB, ... they know).
# shellcheck source=captures/lab.sh
. "$HERE/lab.sh"
HELO=client.mailsift.test

die() { echo "generate.sh: $*" >&2; exit 1; }
log() { echo "== $*"; }

# ---------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (binds ports 25/110/465/587/995 and runs tcpdump)"

missing=()
for cmd in tcpdump tshark editcap capinfos swaks curl openssl "$PY" \
           dovecot doveconf postfix postconf ss mktemp unshare hostname; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[ -x /usr/lib/dovecot/pop3 ] || missing+=("dovecot pop3 server (/usr/lib/dovecot/pop3)")
if [ ${#missing[@]} -gt 0 ]; then
    die "missing: ${missing[*]}
On Debian/Ubuntu: apt-get install tcpdump tshark swaks curl openssl python3 \\
    dovecot-core dovecot-pop3d postfix libnet-ssleay-perl"
fi
getent passwd postfix >/dev/null || die "user 'postfix' missing (install the postfix package)"
getent passwd dovenull >/dev/null || die "user 'dovenull' missing (install dovecot-core)"
getent passwd mail >/dev/null || die "user 'mail' missing"

# ---------------------------------------------------------------------------
# What to make: every capture, in this order (each is made by the function
# capture_NAME below, NAME with "_" for "-"), or those named in ONLY
# ---------------------------------------------------------------------------
CAPTURES=(
    smtp-plain smtp-auth-plain smtp-auth-login smtp-auth-cram-md5 smtp-auth-fail
    smtp-pipelining smtp-multi-message smtp-dotstuff smtp-refused smtp-starttls smtps-465
    smtp-mime smtp-ipv6 tls-smtp-matrix tls-smtp-clear
    pop3-user-pass pop3-apop pop3-auth-plain pop3-stls pop3s-995
    tls-pop3-matrix tls-pop3-clear
    sll2-mixed mixed mail-other-ports mail-via-proxy
    pop3-mailbox   # last: it deletes mail
)
WANTED=()
if [ -n "${ONLY:-}" ]; then
    for name in $ONLY; do
        name=${name%.pcapng}; name=${name%.pcap}
        case " ${CAPTURES[*]} " in
            *" $name "*) WANTED+=("$name") ;;
            *) die "ONLY: no capture named '$name' (known: ${CAPTURES[*]})" ;;
        esac
    done
else
    WANTED=("${CAPTURES[@]}")
fi
wanted() { case " ${WANTED[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------------------
# Temp state and cleanup
# ---------------------------------------------------------------------------
T=$(mktemp -d /tmp/mailsift-captures.XXXXXX)
lab_vars "$T"
TCPDUMP_PID=
SIDE_PIDS=()   # non-mail servers of mail-other-ports, if one is still running

cleanup() {
    local rc=$?
    set +e
    if [ -n "$TCPDUMP_PID" ]; then kill -INT "$TCPDUMP_PID" 2>/dev/null; wait "$TCPDUMP_PID" 2>/dev/null; fi
    for pid in "${SIDE_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    lab_stop "$T"
    if [ $rc -ne 0 ]; then
        echo "generate.sh: failed; server logs follow" >&2
        tail -n 30 "$T/postfix/postfix.log" "$T/dovecot/dovecot.log" 2>/dev/null >&2
    fi
    if [ -n "${KEEP_TMP:-}" ]; then echo "temp state kept in $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# Test inputs
# ---------------------------------------------------------------------------
log "writing source messages and attachments to $SRC"
"$PY" "$HERE/scenarios.py" sources "$SRC"

# ---------------------------------------------------------------------------
# Servers: self-signed certificate, Dovecot (POP3 + SASL for Postfix) and
# Postfix (SMTP), configured in $T (see lab.sh)
# ---------------------------------------------------------------------------
# mail-other-ports needs one more Postfix listener (like 587) and one more
# Dovecot POP3 listener (like 110) on non-standard ports.
OTHER_SMTP_PORT=2525 OTHER_POP3_PORT=8110 OTHER_HTTP_PORT=8080 OTHER_FTP_PORT=2121
PROXY_HTTP_PORT=3128 PROXY_SOCKS_PORT=1080
if wanted mail-other-ports || wanted mail-via-proxy; then
    LAB_EXTRA_SMTP_PORT=$OTHER_SMTP_PORT LAB_EXTRA_POP3_PORT=$OTHER_POP3_PORT
fi
lab_start "$T" "$SRC"

# ---------------------------------------------------------------------------
# Capturing
# ---------------------------------------------------------------------------
CAP_FILE=
cap_start() {   # cap_start FILE IFACE FILTER [tcpdump options...]
    CAP_FILE=$1; local iface=$2 filter=$3; shift 3
    : >"$T/tcpdump.err"
    # No --immediate-mode: with it, libpcap 1.10 on "any" loses packets under
    # bursts.  Buffered mode plus -U and the pause in cap_stop (longer than
    # the 1 s ring-buffer timeout) writes everything.
    tcpdump -i "$iface" -n -U -s 0 "$@" -w "$T/$CAP_FILE" "$filter" \
        2>"$T/tcpdump.err" &
    TCPDUMP_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$T/tcpdump.err" && return 0
        kill -0 "$TCPDUMP_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$T/tcpdump.err" >&2
    die "tcpdump did not start for $CAP_FILE"
}
cap_stop() {   # cap_stop EXPECTED_TCP_SESSIONS; CAP_CHECK=FUNCTION: one more check of the file
    local sessions=$1
    sleep 2   # let the last FIN/ACKs reach the file
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    grep -E "captured|dropped" "$T/tcpdump.err" | sed 's/^/   tcpdump: /'
    if grep -qE "^[1-9][0-9]* packets dropped by kernel" "$T/tcpdump.err"; then
        die "tcpdump dropped packets for $CAP_FILE"
    fi
    check_sessions "$T/$CAP_FILE" "$sessions"
    if [ -n "${CAP_CHECK:-}" ]; then "$CAP_CHECK" "$T/$CAP_FILE"; fi
    # tcpdump drops to its own user after opening the file; hand it over.
    chown --reference="$OUT" "$T/$CAP_FILE"
    chmod 644 "$T/$CAP_FILE"
    mv "$T/$CAP_FILE" "$OUT/$CAP_FILE"
}
count() { tshark -r "$1" -Y "$2" 2>/dev/null | wc -l; }
check_sessions() {   # every session complete: one SYN, two FINs, no RST, no gaps
    local f=$1 n=$2 syn fin rst lost streams
    streams=$(tshark -r "$f" -T fields -e tcp.stream 2>/dev/null | sort -u | wc -l)
    syn=$(count "$f" 'tcp.flags.syn == 1 && tcp.flags.ack == 0')
    fin=$(count "$f" 'tcp.flags.fin == 1')
    rst=$(count "$f" 'tcp.flags.reset == 1')
    lost=$(count "$f" 'tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment')
    echo "   check: $streams TCP sessions, $syn SYN, $fin FIN, $rst RST, $lost gaps"
    [ "$streams" -eq "$n" ] && [ "$syn" -eq "$n" ] && [ "$fin" -eq $((2 * n)) ] \
        && [ "$rst" -eq 0 ] && [ "$lost" -eq 0 ] \
        || die "$(basename "$f"): expected $n complete TCP sessions"
}
pause() { sleep 0.3; }   # keeps sessions apart in time inside one capture

SWAKS=(swaks --silent 2 --helo "$HELO" --timeout 30)
# swaks ends DATA with CRLF "." CRLF after the text, so a file that ends in a
# newline would arrive with an extra empty line.  Pass the text without its
# final newline (as an argument with newlines, which swaks uses verbatim apart
# from dot-stuffing and LF -> CRLF).
swaks_data() { printf '%s' "$(<"$SRC/$1")"; }
pyclient() {   # pyclient NAME [options of scenarios.py client]
    local name=$1; shift
    "$PY" "$HERE/scenarios.py" client "$name" --src "$SRC" --ca "$CA" "$@"
}
# TLS clients write their session secrets (NSS key log format, which
# Wireshark and tshark read) so tests can decrypt the TLS captures:
# captures/NAME.keys next to captures/NAME.pcap.
pyclient_keylog() {   # pyclient_keylog KEYFILE CLIENT
    SSLKEYLOGFILE=$T/$1 pyclient "$2"
}
keys_done() {   # keys_done KEYFILE
    chown --reference="$OUT" "$T/$1"; chmod 644 "$T/$1"
    mv "$T/$1" "$OUT/$1"
}

# The TLS decryption matrix (tls-smtp-matrix, tls-pop3-matrix): one
# scenarios.py client per session (two with --resume), all writing their
# secrets to one key log.  tls_session also notes what tshark must find for
# the session (port, TLS version, suite, encrypt-then-mac, resumed) and
# tls_matrix_check compares that with the capture.
TLS_KEYS= TLS_EXPECT=
tls_matrix_begin() {   # tls_matrix_begin NAME
    TLS_KEYS=$T/$1.keys; TLS_EXPECT=$T/$1.expect
    : >"$TLS_KEYS"; : >"$TLS_EXPECT"
}
tls13_only() {   # tls13_only SUITE: prints the path of an OpenSSL config offering only SUITE
    local f=$T/openssl-$1.cnf
    # Python's ssl cannot choose TLS 1.3 suites; OpenSSL's system_default
    # section, read at start-up from OPENSSL_CONF, can.
    cat >"$f" <<EOF
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Ciphersuites = $1
EOF
    echo "$f"
}
tls_session() {   # tls_session smtp|pop3 PORT 1.2|1.3 SUITE [--no-etm] [--resume] [--auth LOGIN]
    local proto=$1 port=$2 version=$3 suite=$4; shift 4
    local opts=" $* " etm=n/a
    if [ "$version" = 1.3 ]; then
        OPENSSL_CONF=$(tls13_only "$suite") SSLKEYLOGFILE=$TLS_KEYS \
            pyclient "tls-$proto" --port "$port" --tls "$version" --cipher "$suite" "$@"
    else
        SSLKEYLOGFILE=$TLS_KEYS \
            pyclient "tls-$proto" --port "$port" --tls "$version" --cipher "$suite" "$@"
    fi
    # encrypt-then-mac only exists for CBC suites (TLS 1.2); AEAD ones: n/a
    case $version/$suite in
        1.2/*GCM*|1.2/*CHACHA*|1.3/*) ;;
        *) if [[ $opts == *" --no-etm "* ]]; then etm=no; else etm=yes; fi ;;
    esac
    echo "$port $version $suite $etm no" >>"$TLS_EXPECT"
    if [[ $opts == *" --resume "* ]]; then echo "$port $version $suite $etm yes" >>"$TLS_EXPECT"; fi
    pause
}
tls_matrix_check() {   # tls_matrix_check PCAP: tshark finds the expected sessions, all decrypted
    if ! "$PY" "$HERE/scenarios.py" tls-table "$1" --keys "$TLS_KEYS" --expect "$TLS_EXPECT" \
            | sed 's/^/   /'; then   # (pipefail)
        die "$(basename "$1"): the TLS sessions are not the expected ones"
    fi
}

# ---------------------------------------------------------------------------
# SMTP scenarios
# ---------------------------------------------------------------------------
capture_smtp_plain() {   # swaks, port 25, no auth, two recipients
    cap_start smtp-plain.pcap lo 'tcp port 25'
    "${SWAKS[@]}" --server 127.0.0.1 --port 25 --from "$ALICE" \
        --to "bob@mailsift.test,$ALICE" --data "$(swaks_data plain.eml)"
    cap_stop 1
}

capture_smtp_auth_plain() {   # 1: swaks (initial response)  2: smtplib (no initial response)
    cap_start smtp-auth-plain.pcap lo 'tcp port 587'
    "${SWAKS[@]}" --server 127.0.0.1 --port 587 --auth PLAIN --auth-user "$ALICE" \
        --auth-password "$ALICE_PW" --from "$ALICE" --to bob@mailsift.test --data "$(swaks_data short.eml)"
    pause
    pyclient smtp-auth-plain-no-ir
    cap_stop 2
}

capture_smtp_auth_login() {   # 1: swaks (username after 334)  2: smtplib (username inline)
    cap_start smtp-auth-login.pcap lo 'tcp port 587'
    "${SWAKS[@]}" --server 127.0.0.1 --port 587 --auth LOGIN --auth-user "$BOB" \
        --auth-password "$BOB_PW" --from bob@mailsift.test --to "$ALICE" --data "$(swaks_data short.eml)"
    pause
    pyclient smtp-auth-login-inline
    cap_stop 2
}

capture_smtp_auth_cram_md5() {   # curl
    cap_start smtp-auth-cram-md5.pcap lo 'tcp port 587'
    # --crlf: curl uploads the file as-is otherwise, i.e. with bare LF line ends.
    curl -sS --max-time 30 --crlf "smtp://127.0.0.1:587/$HELO" --login-options AUTH=CRAM-MD5 \
        -u "$ALICE:$ALICE_PW" --mail-from "$ALICE" --mail-rcpt bob@mailsift.test \
        --upload-file "$SRC/short.eml"
    cap_stop 1
}

capture_smtp_auth_fail() {   # 1: smtplib bad then good PLAIN  2: swaks bad LOGIN only
    cap_start smtp-auth-fail.pcap lo 'tcp port 587'
    pyclient smtp-auth-fail-then-ok
    pause
    if "${SWAKS[@]}" --server 127.0.0.1 --port 587 --auth LOGIN --auth-user "$BOB" \
        --auth-password "$WRONG_PW" --from bob@mailsift.test --to "$ALICE" \
        --data "$(swaks_data short.eml)" >/dev/null 2>&1; then
        die "swaks logged in with the wrong password"
    fi
    cap_stop 2
}

capture_smtp_pipelining() {   # swaks --pipeline; one RCPT unknown user, one relay denied
    cap_start smtp-pipelining.pcap lo 'tcp port 25'
    "${SWAKS[@]}" --pipeline --server 127.0.0.1 --port 25 --from "$ALICE" \
        --to "bob@mailsift.test,nobody@mailsift.test,carol@elsewhere.example,$ALICE" \
        --data "$(swaks_data plain.eml)" || true
    cap_stop 1
}

capture_smtp_multi_message() {   # smtplib
    cap_start smtp-multi-message.pcap lo 'tcp port 25'
    pyclient smtp-multi
    cap_stop 1
}

capture_smtp_dotstuff() {   # smtplib
    cap_start smtp-dotstuff.pcap lo 'tcp port 25'
    pyclient smtp-dotstuff
    cap_stop 1
}

capture_smtp_refused() {   # smtplib: refused sender, recipients, DATA and message
    cap_start smtp-refused.pcap lo 'tcp port 25'
    pyclient smtp-refused
    cap_stop 1
}

# TLS sessions use smtplib/poplib with a close that waits for the server's
# close_notify: swaks (and a plain quit()) close with that alert unread, so
# the kernel answers the server's FIN with an RST.
capture_smtp_starttls() {   # smtplib: 25 (AUTH PLAIN) then 587 (AUTH LOGIN)
    cap_start smtp-starttls.pcap lo 'tcp port 25 or tcp port 587'
    pyclient_keylog smtp-starttls.keys smtp-starttls
    pause
    pyclient_keylog smtp-starttls.keys smtp-starttls-submission
    cap_stop 2
    keys_done smtp-starttls.keys
}

capture_smtps_465() {   # smtplib SMTP_SSL
    cap_start smtps-465.pcap lo 'tcp port 465'
    pyclient_keylog smtps-465.keys smtps
    cap_stop 1
    keys_done smtps-465.keys
}

capture_smtp_mime() {   # smtplib; MIME test message then the ISO-8859-1 one
    cap_start smtp-mime.pcap lo 'tcp port 25'
    pyclient smtp-mime
    cap_stop 1
}

capture_smtp_ipv6() {   # swaks over ::1
    cap_start smtp-ipv6.pcap lo 'tcp port 25'
    "${SWAKS[@]}" --server ::1 --port 25 --from "$ALICE" --to bob@mailsift.test \
        --data "$(swaks_data plain.eml)"
    cap_stop 1
}

# TLS decryption matrix: STARTTLS on 25 and 587, implicit TLS on 465; TLS 1.3
# and 1.2 with AES-GCM, ChaCha20-Poly1305 and CBC (with and without
# encrypt-then-mac), one resumed session of each version.  Every session
# logs in as alice (AUTH PLAIN on 25 and 465, AUTH LOGIN on 587) and sends
# mime-mixed.eml to bob.  The certificate is ECDSA, hence ECDHE-ECDSA suites.
capture_tls_smtp_matrix() {   # smtplib, 20 sessions
    cap_start tls-smtp-matrix.pcap lo 'tcp port 25 or tcp port 587 or tcp port 465'
    tls_matrix_begin tls-smtp-matrix
    tls_session smtp 25 1.3 TLS_AES_128_GCM_SHA256
    tls_session smtp 25 1.3 TLS_CHACHA20_POLY1305_SHA256
    tls_session smtp 25 1.2 ECDHE-ECDSA-AES128-GCM-SHA256
    tls_session smtp 25 1.2 ECDHE-ECDSA-CHACHA20-POLY1305
    tls_session smtp 25 1.2 ECDHE-ECDSA-AES128-SHA
    tls_session smtp 25 1.2 ECDHE-ECDSA-AES128-SHA --no-etm
    tls_session smtp 587 1.3 TLS_AES_128_GCM_SHA256 --auth LOGIN
    tls_session smtp 587 1.3 TLS_CHACHA20_POLY1305_SHA256 --auth LOGIN
    tls_session smtp 587 1.2 ECDHE-ECDSA-AES256-GCM-SHA384 --auth LOGIN --resume
    tls_session smtp 587 1.2 ECDHE-ECDSA-CHACHA20-POLY1305 --auth LOGIN
    tls_session smtp 587 1.2 ECDHE-ECDSA-AES128-SHA256 --auth LOGIN
    tls_session smtp 465 1.3 TLS_AES_128_GCM_SHA256
    tls_session smtp 465 1.3 TLS_AES_256_GCM_SHA384 --resume
    tls_session smtp 465 1.3 TLS_CHACHA20_POLY1305_SHA256
    tls_session smtp 465 1.2 ECDHE-ECDSA-AES128-GCM-SHA256
    tls_session smtp 465 1.2 ECDHE-ECDSA-CHACHA20-POLY1305
    tls_session smtp 465 1.2 ECDHE-ECDSA-AES256-SHA384
    tls_session smtp 465 1.2 ECDHE-ECDSA-AES256-SHA384 --no-etm
    CAP_CHECK=tls_matrix_check cap_stop 20
    keys_done tls-smtp-matrix.keys
}

capture_tls_smtp_clear() {   # smtplib, 587 without STARTTLS: 1: AUTH PLAIN  2: AUTH LOGIN
    cap_start tls-smtp-clear.pcap lo 'tcp port 587'
    pyclient tls-smtp --port 587 --tls none --auth PLAIN
    pause
    pyclient tls-smtp --port 587 --tls none --auth LOGIN
    cap_stop 2
}

# ---------------------------------------------------------------------------
# POP3 scenarios (none deletes mail except pop3-mailbox, which runs last)
# ---------------------------------------------------------------------------
capture_pop3_user_pass() {   # poplib
    cap_start pop3-user-pass.pcap lo 'tcp port 110'
    pyclient pop3-user-pass
    cap_stop 2
}

capture_pop3_apop() {   # poplib
    cap_start pop3-apop.pcap lo 'tcp port 110'
    pyclient pop3-apop
    cap_stop 1
}

capture_pop3_auth_plain() {   # 1: curl AUTH PLAIN  2: poplib AUTH list + AUTH PLAIN ir  3: curl CRAM-MD5
    cap_start pop3-auth-plain.pcap lo 'tcp port 110'
    curl -sS --max-time 30 "pop3://127.0.0.1:110/" --login-options AUTH=PLAIN -u "$ALICE:$ALICE_PW" >/dev/null
    pause
    pyclient pop3-auth-list-plain-ir
    pause
    curl -sS --max-time 30 "pop3://127.0.0.1:110/" --login-options AUTH=CRAM-MD5 -u "$ALICE:$ALICE_PW" >/dev/null
    cap_stop 3
}

capture_pop3_stls() {   # poplib
    cap_start pop3-stls.pcap lo 'tcp port 110'
    pyclient_keylog pop3-stls.keys pop3-stls
    cap_stop 1
    keys_done pop3-stls.keys
}

capture_pop3s_995() {   # poplib POP3_SSL (curl pop3s:// ends with an RST, see above)
    cap_start pop3s-995.pcap lo 'tcp port 995'
    pyclient_keylog pop3s-995.keys pop3s
    cap_stop 1
    keys_done pop3s-995.keys
}

# TLS decryption matrix, POP3: STLS on 110, implicit TLS on 995, the suites
# of the SMTP matrix.  Every session logs in as alice (USER/PASS) and RETRs
# message 2 (mime-mixed.eml).
capture_tls_pop3_matrix() {   # poplib, 15 sessions
    cap_start tls-pop3-matrix.pcap lo 'tcp port 110 or tcp port 995'
    tls_matrix_begin tls-pop3-matrix
    tls_session pop3 110 1.3 TLS_AES_128_GCM_SHA256
    tls_session pop3 110 1.3 TLS_AES_256_GCM_SHA384 --resume
    tls_session pop3 110 1.3 TLS_CHACHA20_POLY1305_SHA256
    tls_session pop3 110 1.2 ECDHE-ECDSA-AES128-GCM-SHA256
    tls_session pop3 110 1.2 ECDHE-ECDSA-CHACHA20-POLY1305
    tls_session pop3 110 1.2 ECDHE-ECDSA-AES128-SHA
    tls_session pop3 110 1.2 ECDHE-ECDSA-AES128-SHA --no-etm
    tls_session pop3 995 1.3 TLS_AES_128_GCM_SHA256
    tls_session pop3 995 1.3 TLS_CHACHA20_POLY1305_SHA256
    tls_session pop3 995 1.2 ECDHE-ECDSA-AES256-GCM-SHA384 --resume
    tls_session pop3 995 1.2 ECDHE-ECDSA-CHACHA20-POLY1305
    tls_session pop3 995 1.2 ECDHE-ECDSA-AES256-SHA384
    tls_session pop3 995 1.2 ECDHE-ECDSA-AES128-SHA256 --no-etm
    CAP_CHECK=tls_matrix_check cap_stop 15
    keys_done tls-pop3-matrix.keys
}

capture_tls_pop3_clear() {   # poplib, 110 without STLS
    cap_start tls-pop3-clear.pcap lo 'tcp port 110'
    pyclient tls-pop3 --port 110 --tls none
    cap_stop 1
}

# ---------------------------------------------------------------------------
# Link types / file formats
# ---------------------------------------------------------------------------
capture_sll2_mixed() {   # -i any, LINUX_SLL2; swaks + poplib
    cap_start sll2-mixed.pcap any 'tcp port 25 or tcp port 110' -y LINUX_SLL2
    "${SWAKS[@]}" --server 127.0.0.1 --port 25 --from "$ALICE" --to bob@mailsift.test \
        --data "$(swaks_data plain.eml)"
    pause
    pyclient pop3-bob-list
    cap_stop 2
}

capture_mixed() {   # captured as pcap on lo, converted with editcap; curl + curl
    cap_start mixed-lo.pcap lo 'tcp port 25 or tcp port 110'
    curl -sS --max-time 30 --crlf "smtp://127.0.0.1:25/$HELO" --mail-from "$ALICE" \
        --mail-rcpt bob@mailsift.test --upload-file "$SRC/plain.eml"
    pause
    curl -sS --max-time 30 "pop3://127.0.0.1:110/1" -u "$BOB:$BOB_PW" >/dev/null
    cap_stop 2
    mv "$OUT/mixed-lo.pcap" "$T/mixed-lo.pcap"
    editcap -F pcapng --capture-comment "mailsift test capture: one SMTP and one POP3 session on loopback" \
        "$T/mixed-lo.pcap" "$T/mixed.pcapng"
    chown --reference="$OUT" "$T/mixed.pcapng"; chmod 644 "$T/mixed.pcapng"
    mv "$T/mixed.pcapng" "$OUT/mixed.pcapng"
}

# Mail on non-standard ports next to non-mail traffic, in one capture:
# 1. swaks, 2525 (Postfix, extra listener like 587): EHLO, AUTH PLAIN alice,
#    one message, QUIT
# 2. poplib, 8110 (Dovecot, extra listener like 110): USER/PASS bob, STAT, LIST, QUIT
# 3. curl, 8080: GET / from python3 -m http.server
# 4. Python socket client, 2121: an FTP look-alike (220 greeting, USER
#    anonymous, 331, server closes) that is not mail
capture_mail_other_ports() {
    for port in $OTHER_HTTP_PORT $OTHER_FTP_PORT; do
        [ -z "$(ss -Hltn "sport = :$port")" ] || die "something already listens on TCP port $port"
    done
    mkdir -p "$T/www"
    printf '<html><body>mailsift test page, not mail</body></html>\n' >"$T/www/index.html"
    "$PY" -m http.server "$OTHER_HTTP_PORT" --bind 127.0.0.1 --directory "$T/www" \
        >"$T/http.log" 2>&1 &
    SIDE_PIDS+=($!)
    "$PY" - "$OTHER_FTP_PORT" >"$T/ftp.log" 2>&1 <<'EOF' &
import socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
conn, _ = srv.accept()
conn.sendall(b"220 ftp.example FTP ready\r\n")
line = b""
while not line.endswith(b"\r\n"):
    chunk = conn.recv(1)
    if not chunk:
        break
    line += chunk
print("ftp look-alike got", line)
conn.sendall(b"331 ok\r\n")
conn.close()
srv.close()
EOF
    SIDE_PIDS+=($!)
    lab_wait_listen "$OTHER_HTTP_PORT"; lab_wait_listen "$OTHER_FTP_PORT"

    cap_start mail-other-ports.pcap lo "tcp port $OTHER_SMTP_PORT or tcp port $OTHER_POP3_PORT or tcp port $OTHER_HTTP_PORT or tcp port $OTHER_FTP_PORT"
    "${SWAKS[@]}" --server 127.0.0.1 --port "$OTHER_SMTP_PORT" --auth PLAIN --auth-user "$ALICE" \
        --auth-password "$ALICE_PW" --from "$ALICE" --to bob@mailsift.test --data "$(swaks_data short.eml)"
    pause
    pyclient pop3-bob-list --port-map "110=$OTHER_POP3_PORT"
    pause
    curl -sS --max-time 30 "http://127.0.0.1:$OTHER_HTTP_PORT/" >/dev/null
    pause
    "$PY" - "$OTHER_FTP_PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
f = s.makefile("rb")
print("  ", f.readline())
s.sendall(b"USER anonymous\r\n")
print("  ", f.readline())
assert f.read() == b""  # the server closes first
f.close()
s.close()
EOF
    cap_stop 4
    for pid in "${SIDE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    SIDE_PIDS=()
}

# Mail through proxies: only the client <-> proxy legs are captured, so every
# session opens with a tunnel handshake (captures/proxy.py is the proxy):
# 1. curl, HTTP CONNECT 127.0.0.1:587 with Proxy-Authorization Basic
#    proxyuser: AUTH PLAIN alice, one message
# 2. curl, HTTP CONNECT 127.0.0.1:110 without proxy credentials: 407, no mail
# 3. curl, SOCKS5 (username/password proxyuser, target by name localhost:110):
#    POP3 login bob, LIST
# 4. curl, SOCKS5 (no authentication, IPv4 target 127.0.0.1:25): one message
#    without AUTH
# 5. curl, SOCKS4 127.0.0.1:110: POP3 login alice, LIST
# 6. curl, SOCKS4a localhost:2525 (a mail port only content shows): AUTH
#    PLAIN alice, one message
# 7. curl, SOCKS5 with a wrong proxy password (target 127.0.0.1:110): refused
#    at the username/password step
# 8. curl, SOCKS5 to mail.example:25: refused by the proxy's rules (reply 2)
capture_mail_via_proxy() {
    for port in $PROXY_HTTP_PORT $PROXY_SOCKS_PORT; do
        [ -z "$(ss -Hltn "sport = :$port")" ] || die "something already listens on TCP port $port"
    done
    "$PY" "$HERE/proxy.py" http "$PROXY_HTTP_PORT" >"$T/proxy-http.log" 2>&1 &
    SIDE_PIDS+=($!)
    "$PY" "$HERE/proxy.py" socks "$PROXY_SOCKS_PORT" >"$T/proxy-socks.log" 2>&1 &
    SIDE_PIDS+=($!)
    lab_wait_listen "$PROXY_HTTP_PORT"; lab_wait_listen "$PROXY_SOCKS_PORT"
    local puser=proxyuser ppw=Proxy-Pass-9   # the fake proxy account of proxy.py
    local mail=(--crlf --mail-from "$ALICE" --mail-rcpt bob@mailsift.test --upload-file "$SRC/short.eml")

    cap_start mail-via-proxy.pcap lo "tcp port $PROXY_HTTP_PORT or tcp port $PROXY_SOCKS_PORT"
    curl -sS --max-time 30 -p -x "http://127.0.0.1:$PROXY_HTTP_PORT" --proxy-user "$puser:$ppw" \
        "smtp://127.0.0.1:587/$HELO" --login-options AUTH=PLAIN -u "$ALICE:$ALICE_PW" "${mail[@]}"
    pause
    if curl -sS --max-time 30 -p -x "http://127.0.0.1:$PROXY_HTTP_PORT" \
        "pop3://127.0.0.1:110/" -u "$ALICE:$ALICE_PW" >/dev/null 2>&1; then
        die "the HTTP proxy let a client without credentials through"
    fi
    pause
    curl -sS --max-time 30 -x "socks5h://$puser:$ppw@127.0.0.1:$PROXY_SOCKS_PORT" \
        "pop3://localhost:110/" -u "$BOB:$BOB_PW" >/dev/null
    pause
    curl -sS --max-time 30 -x "socks5://127.0.0.1:$PROXY_SOCKS_PORT" \
        "smtp://127.0.0.1:25/$HELO" "${mail[@]}"
    pause
    curl -sS --max-time 30 -x "socks4://127.0.0.1:$PROXY_SOCKS_PORT" \
        "pop3://127.0.0.1:110/" -u "$ALICE:$ALICE_PW" >/dev/null
    pause
    curl -sS --max-time 30 -x "socks4a://127.0.0.1:$PROXY_SOCKS_PORT" \
        "smtp://localhost:$OTHER_SMTP_PORT/$HELO" --login-options AUTH=PLAIN -u "$ALICE:$ALICE_PW" "${mail[@]}"
    pause
    if curl -sS --max-time 30 -x "socks5h://$puser:$WRONG_PW@127.0.0.1:$PROXY_SOCKS_PORT" \
        "pop3://127.0.0.1:110/" -u "$BOB:$BOB_PW" >/dev/null 2>&1; then
        die "the SOCKS proxy took a wrong password"
    fi
    pause
    if curl -sS --max-time 30 -x "socks5h://127.0.0.1:$PROXY_SOCKS_PORT" \
        "smtp://mail.example:25/$HELO" "${mail[@]}" 2>/dev/null; then
        die "the SOCKS proxy connected to a name it should refuse"
    fi
    cap_stop 8
    for pid in "${SIDE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    SIDE_PIDS=()
}

# Last: this one deletes messages 4 and 5 from alice's mailbox.
capture_pop3_mailbox() {   # poplib
    cap_start pop3-mailbox.pcap lo 'tcp port 110'
    pyclient pop3-mailbox >/dev/null
    cap_stop 1
}

# ---------------------------------------------------------------------------
# Making them
# ---------------------------------------------------------------------------
made=()
for name in "${CAPTURES[@]}"; do
    wanted "$name" || continue
    fn=capture_${name//-/_}
    declare -F "$fn" >/dev/null || die "no function $fn for capture $name"
    log "$name"
    "$fn"
    for f in "$OUT/$name.pcap" "$OUT/$name.pcapng"; do
        if [ -f "$f" ]; then made+=("$f"); fi
    done
done

# ---------------------------------------------------------------------------
# Sanity checks
# ---------------------------------------------------------------------------
postfix -c "$PF_CONF" flush >/dev/null 2>&1 || true
delivered=$(find "$T/delivered" -type f -path '*/new/*' | wc -l)
log "Postfix delivered $delivered messages into the temp maildirs"
if wanted pop3-mailbox; then
    left=$(find "$T/pop/alice/Maildir/cur" "$T/pop/alice/Maildir/new" -type f | wc -l)
    [ "$left" -eq 3 ] || die "alice should have 3 POP3 messages left after pop3-mailbox, has $left"
fi

log "done; ${#made[@]} captures in $OUT"
capinfos -T -c -l -E "${made[@]}"
