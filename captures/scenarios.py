#!/usr/bin/env python3
"""Helper for captures/generate.sh.

Three jobs:

  scenarios.py sources DIR
      Write the deterministic test inputs (attachments and .eml messages)
      into DIR.  Running it twice gives byte-identical files, so the
      committed copies under captures/source/ never drift.

  scenarios.py client NAME [--src DIR] [--ca FILE]
      Run one Python client session (smtplib / poplib from the standard
      library) against the real servers that generate.sh started on
      loopback.  The shell script captures the traffic; this only talks.

  scenarios.py tls-table FILE.pcap [--keys FILE.keys] [--expect FILE]
      List the TLS sessions of a capture as tshark decrypts them (version,
      suite, encrypt-then-mac, resumed) and check them against a list.

Everything here is test data: the users, passwords and domains are fake
(mailsift.test and .example are reserved names) and only 127.0.0.1 / ::1
are ever contacted.
"""

import argparse
import base64
import hashlib
import os
import poplib
import quopri
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib

# ---------------------------------------------------------------------------
# Fake test accounts (documented in captures/README.md).  Keep in sync with
# the USERS block in generate.sh.
ALICE = "alice@mailsift.test"
ALICE_PW = "Wonderland-42"
BOB = "bob"
BOB_PW = "Builder-7"
WRONG_PW = "Not-The-Password-0"

HOST4 = "127.0.0.1"
HELO = "client.mailsift.test"

# Standard port -> port the lab's server really listens on (--port-map, for
# servers moved to free high ports; generate.sh uses the standard ones).
PORT_MAP = {}


def port(standard):
    return PORT_MAP.get(standard, standard)


# ---------------------------------------------------------------------------
# Source files
# ---------------------------------------------------------------------------

def make_png(width=32, height=32):
    """A small RGB PNG: colour gradient plus deterministic noise."""
    state = 0x1234_5678

    def noise():
        nonlocal state  # xorshift32, fixed seed
        state ^= (state << 13) & 0xFFFF_FFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFF_FFFF
        return state & 0x1F

    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type None
        for x in range(width):
            raw += bytes(((x * 8 + noise()) & 0xFF,
                          (y * 8 + noise()) & 0xFF,
                          ((x ^ y) * 8 + noise()) & 0xFF))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFF_FFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def make_blob(size=1536):
    """Pseudo-random bytes: SHA-256 in counter mode over a fixed seed."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"mailsift-attachment-%d" % counter).digest()
        counter += 1
    return bytes(out[:size])


def b64_lines(data):
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def encoded_word_b(text):
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


# Decoded values, also listed in README.md.
MIME_SUBJECT = "Grüße aus Köln – Test mit Anhängen"
MIME_TEXT = (
    "Hallo Bob,\n"
    "\n"
    "anbei die Übersicht der Messdaten und unser Logo. Grüße aus Köln – die "
    "Straße vor dem Büro ist heute gesperrt, wir treffen uns später im Café.\n"
    "\n"
    "Alice\n"
)
MIME_HTML = (
    "<html><body>\n"
    "<p>Hallo Bob,</p>\n"
    "<p>anbei die &Uuml;bersicht der Messdaten. Details unter\n"
    "<a href=\"https://www.mailsift.test/docs/messdaten?id=42&amp;lang=de\">"
    "https://www.mailsift.test/docs/messdaten</a>\n"
    "und <a href=\"http://example.com/report.html\">http://example.com/report.html</a>.</p>\n"
    "<p>Alice</p>\n"
    "</body></html>\n"
)
RFC2231_NAME = "Übersicht der Messdaten – Größe & Gewicht.bin"


def mime_message(png, blob):
    qp_text = quopri.encodestring(MIME_TEXT.encode("utf-8")).decode("ascii")
    assert "=\n" in qp_text, "the text/plain part must contain a soft line break"
    # RFC 2231: one parameter with charset + percent encoding (name*=) and
    # the same value split into encoded continuations (filename*0*, *1*).
    pct = "".join(
        chr(b) if (b < 0x80 and (chr(b).isalnum() or chr(b) in "-._")) else "%%%02X" % b
        for b in RFC2231_NAME.encode("utf-8"))
    cut = pct.index("Gr%C3%B6")
    return f"""From: Alice Liddell <alice@mailsift.test>
To: Bob Builder <bob@mailsift.test>
Subject: {encoded_word_b(MIME_SUBJECT)}
Date: Tue, 07 Jan 2025 09:30:00 +0100
Message-ID: <mime-0001@mailsift.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_mixed_7f3a"

This is a multi-part message in MIME format.

--=_mixed_7f3a
Content-Type: multipart/alternative; boundary="=_alt_19c2"

--=_alt_19c2
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

{qp_text}
--=_alt_19c2
Content-Type: text/html; charset=us-ascii
Content-Transfer-Encoding: 7bit

{MIME_HTML}
--=_alt_19c2--

--=_mixed_7f3a
Content-Type: image/png; name="logo.png"
Content-Disposition: attachment; filename="logo.png"
Content-Transfer-Encoding: base64

{b64_lines(png)}
--=_mixed_7f3a
Content-Type: application/octet-stream; name*=utf-8''{pct}
Content-Disposition: attachment;
 filename*0*=utf-8''{pct[:cut]};
 filename*1*={pct[cut:]}
Content-Transfer-Encoding: base64

{b64_lines(blob)}
--=_mixed_7f3a
Content-Type: message/rfc822
Content-Disposition: attachment; filename="meeting-notes.eml"

From: Bob Builder <bob@mailsift.test>
To: Alice Liddell <alice@mailsift.test>
Subject: Meeting notes
Date: Fri, 03 Jan 2025 16:45:00 +0000
Message-ID: <inner-0001@mailsift.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Notes from Friday:
- ship the parser
- write more tests

--=_mixed_7f3a--
"""


LATIN1_MESSAGE = """From: =?ISO-8859-1?Q?Fran=E7ois_Dupr=E9?= <francois@mailsift.test>
To: Alice Liddell <alice@mailsift.test>
Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= =?ISO-8859-1?Q?_=E0_la_gare?=
Date: Wed, 08 Jan 2025 14:05:00 +0100
Message-ID: <latin1-0001@mailsift.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Bonjour Alice,

rendez-vous au caf=E9 de la gare =E0 15 h, pr=E8s du quai n=B0 2.

Fran=E7ois
"""

PLAIN_MESSAGE = """From: Alice Liddell <alice@mailsift.test>
To: Bob Builder <bob@mailsift.test>, Alice Liddell <alice@mailsift.test>
Subject: Lunch on Friday?
Date: Mon, 06 Jan 2025 10:15:00 +0000
Message-ID: <plain-0001@mailsift.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hi Bob,

are we still on for lunch on Friday at noon?

Alice
"""

SHORT_MESSAGE = """From: Alice Liddell <alice@mailsift.test>
To: Bob Builder <bob@mailsift.test>
Subject: mailsift auth test
Date: Mon, 06 Jan 2025 11:00:00 +0000
Message-ID: <short-0001@mailsift.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

This message was sent by an authenticated client.
"""

# Refused after its end of data by the lab's header check (lab.sh).
REFUSED_MESSAGE = """From: Alice Liddell <alice@mailsift.test>
To: Bob Builder <bob@mailsift.test>
Subject: mailsift refused message REJECT-ME
Date: Mon, 06 Jan 2025 11:05:00 +0000
Message-ID: <refused-0001@mailsift.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

The server refuses this message after its end of data.
"""

# The body has lines that start with "." and one line that is only ".".
# On the wire SMTP clients double the leading dot (RFC 5321 4.5.2) and
# POP3 servers do the same in RETR/TOP (RFC 1939 3).
DOTSTUFF_MESSAGE = """From: Alice Liddell <alice@mailsift.test>
To: Bob Builder <bob@mailsift.test>
Subject: Lines that start with a dot
Date: Thu, 09 Jan 2025 08:00:00 +0000
Message-ID: <dotstuff-0001@mailsift.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

The next lines start with dots and are dot-stuffed on the wire.
.profile
..two leading dots
.
The line above is a single dot; the message does not end there.
. dot and space
Last line.
"""


def multi_message(n, subject, body):
    return f"""From: Alice Liddell <alice@mailsift.test>
To: Bob Builder <bob@mailsift.test>
Subject: {subject}
Date: Fri, 10 Jan 2025 12:0{n}:00 +0000
Message-ID: <multi-000{n}@mailsift.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

{body}
"""


MULTI = [
    multi_message(1, "Batch message 1 of 3", "First message of the batch."),
    multi_message(2, "Batch message 2 of 3", "Second message of the batch."),
    multi_message(3, "Batch message 3 of 3", "Third message of the batch."),
]


def write_sources(outdir):
    os.makedirs(outdir, exist_ok=True)
    png = make_png()
    blob = make_blob()
    files = {
        "logo.png": png,
        "measurements.bin": blob,
        "mime-mixed.eml": mime_message(png, blob).encode("ascii"),
        "latin1-subject.eml": LATIN1_MESSAGE.encode("ascii"),
        "plain.eml": PLAIN_MESSAGE.encode("ascii"),
        "short.eml": SHORT_MESSAGE.encode("ascii"),
        "refused.eml": REFUSED_MESSAGE.encode("ascii"),
        "dotstuff.eml": DOTSTUFF_MESSAGE.encode("ascii"),
    }
    for i, text in enumerate(MULTI, 1):
        files[f"multi-{i}.eml"] = text.encode("ascii")
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


# ---------------------------------------------------------------------------
# Python clients (standard library smtplib / poplib)
# ---------------------------------------------------------------------------

def read_eml(src, name):
    """An .eml file as bytes with CRLF line ends (smtplib leaves bytes alone
    apart from dot-stuffing, so convert here)."""
    with open(os.path.join(src, name), "rb") as f:
        return f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def smtp(std_port=25, host=HOST4):
    s = smtplib.SMTP(host, port(std_port), local_hostname=HELO, timeout=30)
    s.ehlo()
    return s


def expect_auth_failure(s, user, password, mechanism="PLAIN"):
    s.user, s.password = user, password
    try:
        s.auth(mechanism, getattr(s, "auth_" + mechanism.lower().replace("-", "_")))
    except smtplib.SMTPAuthenticationError as e:
        print(f"  expected failure: {e.smtp_code} {e.smtp_error!r}")
    else:
        raise SystemExit("authentication with the wrong password succeeded")


def c_smtp_auth_plain_no_ir(a):
    # AUTH PLAIN without initial response: server answers "334 " and the
    # client sends the base64 credentials on their own line.
    s = smtp(587)
    s.user, s.password = BOB, BOB_PW
    s.auth("PLAIN", s.auth_plain, initial_response_ok=False)
    s.sendmail("bob@mailsift.test", ["alice@mailsift.test"], read_eml(a.src, "short.eml"))
    s.quit()


def c_smtp_auth_login_inline(a):
    # AUTH LOGIN with the username as initial response ("AUTH LOGIN dXNl...").
    s = smtp(587)
    s.user, s.password = ALICE, ALICE_PW
    s.auth("LOGIN", s.auth_login, initial_response_ok=True)
    s.sendmail(ALICE, ["bob@mailsift.test"], read_eml(a.src, "short.eml"))
    s.quit()


def c_smtp_auth_fail_then_ok(a):
    s = smtp(587)
    expect_auth_failure(s, ALICE, WRONG_PW, "PLAIN")
    s.user, s.password = ALICE, ALICE_PW
    s.auth("PLAIN", s.auth_plain)
    s.sendmail(ALICE, ["bob@mailsift.test"], read_eml(a.src, "short.eml"))
    s.quit()


def c_smtp_multi(a):
    # Several transactions in one session with RSET in between; the third
    # transaction is abandoned after RCPT.
    s = smtp(25)

    def transaction(name):
        code, _ = s.mail(ALICE)
        assert code == 250
        code, _ = s.rcpt("bob@mailsift.test")
        assert code == 250
        code, _ = s.data(read_eml(a.src, name))
        assert code == 250

    transaction("multi-1.eml")
    s.rset()
    transaction("multi-2.eml")
    s.rset()
    s.mail(ALICE)
    s.rcpt("alice@mailsift.test")
    s.rset()  # abandoned: no DATA
    transaction("multi-3.eml")
    s.quit()


def c_smtp_mime(a):
    s = smtp(25)
    s.sendmail(ALICE, ["bob@mailsift.test"], read_eml(a.src, "mime-mixed.eml"))
    s.sendmail("francois@mailsift.test", [ALICE], read_eml(a.src, "latin1-subject.eml"))
    s.quit()


def c_smtp_dotstuff(a):
    s = smtp(25)
    s.sendmail(ALICE, ["bob@mailsift.test"], read_eml(a.src, "dotstuff.eml"))
    s.quit()


def c_smtp_refused(a):
    # Every way the lab's Postfix refuses a transaction (lab.sh: the sender
    # map, the recipient map and the header check), one after the other.
    s = smtplib.SMTP(HOST4, port(25), local_hostname=HELO, timeout=30)
    s.ehlo()

    def expect(reply, code):
        got, text = reply
        print(f"  {got} {text.decode(errors='replace')}")
        assert got == code, f"expected {code}, got {got}"

    # A refused sender (smtpd_delay_reject = no: refused at MAIL).
    expect(s.docmd("MAIL", "FROM:<spammer@bad.mailsift.test>"), 554)
    # A refused and an accepted recipient; the message refused after its end
    # of data by the header check.
    expect(s.docmd("MAIL", f"FROM:<{ALICE}>"), 250)
    expect(s.docmd("RCPT", "TO:<nobody@mailsift.test>"), 550)
    expect(s.docmd("RCPT", "TO:<bob@mailsift.test>"), 250)
    expect(s.docmd("DATA"), 354)
    s.send(read_eml(a.src, "refused.eml") + b".\r\n")
    expect(s.getreply(), 550)
    # Every recipient refused: DATA is refused with them.
    expect(s.docmd("MAIL", f"FROM:<{ALICE}>"), 250)
    expect(s.docmd("RCPT", "TO:<nobody@mailsift.test>"), 550)
    expect(s.docmd("DATA"), 554)
    expect(s.docmd("RSET"), 250)
    # A recipient deferred (4xx), another accepted, then abandoned by RSET.
    expect(s.docmd("MAIL", f"FROM:<{ALICE}>"), 250)
    expect(s.docmd("RCPT", "TO:<later@mailsift.test>"), 451)
    expect(s.docmd("RCPT", "TO:<bob@mailsift.test>"), 250)
    expect(s.docmd("RSET"), 250)
    # Delivered.
    expect(s.docmd("MAIL", f"FROM:<{ALICE}>"), 250)
    expect(s.docmd("RCPT", "TO:<bob@mailsift.test>"), 250)
    expect(s.docmd("DATA"), 354)
    s.send(read_eml(a.src, "short.eml") + b".\r\n")
    expect(s.getreply(), 250)
    # DATA outside any transaction.
    expect(s.docmd("DATA"), 503)
    s.quit()


def tls_context(a):
    # Verifies the server against the throw-away certificate of this run
    # (its subjectAltName holds IP:127.0.0.1).  create_default_context also
    # honours SSLKEYLOGFILE, which generate.sh sets to record the TLS secrets.
    return ssl.create_default_context(cafile=a.ca)


def drain_and_close(client):
    """End a TLS session with FIN/FIN: after QUIT was answered, read until the
    server's close_notify and FIN arrive, then close.  Closing with that
    alert still unread makes the kernel send an RST instead of a FIN (which
    is what swaks and a bare smtplib.quit() do)."""
    sock = client.sock
    sock.settimeout(10)
    try:
        while sock.recv(4096):
            pass
    except (ssl.SSLError, OSError):
        pass
    client.close()


def smtp_tls_quit(s):
    code, _ = s.docmd("QUIT")
    assert code == 221, code
    drain_and_close(s)


def pop3_tls_quit(p):
    print("  ", p._shortcmd("QUIT"))
    drain_and_close(p)


def c_smtp_starttls(a):
    # Port 25: AUTH is only offered after STARTTLS there.
    s = smtp(25)
    assert "auth" not in s.esmtp_features, "port 25 offers AUTH before TLS"
    s.starttls(context=tls_context(a))
    s.ehlo()
    s.user, s.password = ALICE, ALICE_PW
    s.auth("PLAIN", s.auth_plain)
    s.sendmail(ALICE, ["bob@mailsift.test"], read_eml(a.src, "short.eml"))
    smtp_tls_quit(s)


def c_smtp_starttls_submission(a):
    s = smtp(587)
    s.starttls(context=tls_context(a))
    s.ehlo()
    s.user, s.password = BOB, BOB_PW
    s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    s.sendmail("bob@mailsift.test", [ALICE], read_eml(a.src, "short.eml"))
    smtp_tls_quit(s)


def c_smtps(a):
    s = smtplib.SMTP_SSL(HOST4, port(465), local_hostname=HELO, timeout=30, context=tls_context(a))
    s.ehlo()
    s.user, s.password = ALICE, ALICE_PW
    s.auth("PLAIN", s.auth_plain)
    s.sendmail(ALICE, ["bob@mailsift.test"], read_eml(a.src, "short.eml"))
    smtp_tls_quit(s)


def c_pop3_user_pass(a):
    p = poplib.POP3(HOST4, port(110), timeout=30)
    p.user(ALICE)
    p.pass_(ALICE_PW)
    print("  ", p.stat())
    p.quit()
    p = poplib.POP3(HOST4, port(110), timeout=30)
    p.user(BOB)
    try:
        p.pass_(WRONG_PW)
    except poplib.error_proto as e:
        print(f"  expected failure: {e}")
    else:
        raise SystemExit("POP3 login with the wrong password succeeded")
    p.quit()


def c_pop3_apop(a):
    p = poplib.POP3(HOST4, port(110), timeout=30)
    assert p.timestamp.search(p.welcome), "no APOP timestamp in the greeting"
    p.apop(ALICE, ALICE_PW)
    print("  ", p.stat())
    p.quit()


def c_pop3_auth_list_plain_ir(a):
    # Old-style mechanism discovery ("AUTH" without argument, RFC 1734 era,
    # answered with a dot-terminated list), then AUTH PLAIN with an initial
    # response (RFC 5034).  poplib has no public AUTH API, so this uses its
    # command helpers.
    p = poplib.POP3(HOST4, port(110), timeout=30)
    resp, mechs, _ = p._longcmd("AUTH")
    print("  ", resp, mechs)
    ir = base64.b64encode(f"\0{BOB}\0{BOB_PW}".encode()).decode()
    print("  ", p._shortcmd("AUTH PLAIN " + ir))
    print("  ", p.stat())
    p.quit()


def c_pop3_mailbox(a):
    p = poplib.POP3(HOST4, port(110), timeout=30)
    print("  ", p.capa())
    p.user(ALICE)
    p.pass_(ALICE_PW)
    print("  ", p.stat())
    print("  ", p.list())
    print("  ", p.list(2))
    print("  ", p.uidl())
    print("  ", p.uidl(2))
    print("  ", p.top(2, 5)[0])  # message 2: 5 of its many body lines
    for n in (1, 2, 3, 4):
        print("  ", p.retr(n)[0])
    p.dele(4)
    p.dele(5)
    p.rset()
    p.dele(4)
    p.dele(5)
    print("  ", p.quit())


def c_pop3_stls(a):
    p = poplib.POP3(HOST4, port(110), timeout=30)
    p.stls(context=tls_context(a))  # sends CAPA itself to check for STLS
    print("  ", p.capa())
    p.user(ALICE)
    p.pass_(ALICE_PW)
    print("  ", p.stat())
    pop3_tls_quit(p)


def c_pop3s(a):
    p = poplib.POP3_SSL(HOST4, port(995), timeout=30, context=tls_context(a))
    p.user(ALICE)
    p.pass_(ALICE_PW)
    print("  ", p.stat(), p.list())
    pop3_tls_quit(p)


def c_pop3_bob_list(a):
    p = poplib.POP3(HOST4, port(110), timeout=30)
    p.user(BOB)
    p.pass_(BOB_PW)
    print("  ", p.stat(), p.list())
    p.quit()


# ---------------------------------------------------------------------------
# TLS decryption matrix (tls-smtp-*.pcap, tls-pop3-*.pcap): every session logs
# in and moves the same MIME message (mime-mixed.eml, with attachments), so a
# test can compare what comes out of each decrypted session with the
# cleartext reference sessions.  The TLS version, cipher suite, encrypt-then-
# mac and resumption are chosen per session on the command line:
#
#   scenarios.py client tls-smtp --port 587 --tls 1.2 \
#       --cipher ECDHE-ECDSA-AES128-SHA --no-etm [--resume] [--auth LOGIN]
#
# --tls none: no STARTTLS/STLS (the cleartext references).  For TLS 1.2
# --cipher is an OpenSSL cipher name, offered alone.  For TLS 1.3 it is the
# suite name the session must end up with; Python's ssl cannot choose TLS 1.3
# suites, so generate.sh runs the client with OPENSSL_CONF pointing at a
# config that offers only that suite.  --resume makes a second connection
# with the same settings that resumes the first one's TLS session (ticket or
# session id), with the same login and message.

OP_NO_ENCRYPT_THEN_MAC = 0x00080000  # SSL_OP_NO_ENCRYPT_THEN_MAC (OpenSSL 3); not in Python's ssl
MATRIX_MESSAGE = "mime-mixed.eml"
MATRIX_POP3_MSG = 2  # mime-mixed.eml is message 2 of alice's maildir (lab.sh)


def matrix_context(a):
    ctx = tls_context(a)
    if a.tls == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(a.cipher)
    if a.no_etm:
        ctx.options |= OP_NO_ENCRYPT_THEN_MAC
    return ctx


def matrix_check_tls(a, sock, resumed):
    """The session has the version and suite asked for, and is resumed
    exactly when it should be."""
    got = (sock.version(), sock.cipher()[0], sock.session_reused)
    want = ("TLSv" + a.tls, a.cipher, resumed)
    print(f"   port {a.port}: {got[0]} {got[1]} resumed={got[2]}")
    if got != want:
        hint = " (TLS 1.3 suites come from OPENSSL_CONF)" if a.tls == "1.3" else ""
        raise SystemExit(f"negotiated {got}, wanted {want}{hint}")


def matrix_sessions(a, one_session):
    """Run one session, or with --resume two, the second resuming the first."""
    if a.port is None:
        raise SystemExit("--port is required")
    if a.tls == "none":
        if a.port not in (587, 110) or a.resume or a.no_etm:
            raise SystemExit("--tls none: port 587 or 110 only, without --resume / --no-etm")
    elif not a.cipher:
        raise SystemExit("--cipher is required with --tls 1.2 / 1.3")
    ctx = matrix_context(a) if a.tls != "none" else None
    session = one_session(a, ctx, None)
    if a.resume:
        if session is None:
            raise SystemExit("the first session left nothing to resume")
        time.sleep(0.3)  # generate.sh's pause between sessions
        one_session(a, ctx, session)


def smtp_matrix_session(a, ctx, session):
    msg = read_eml(a.src, MATRIX_MESSAGE)
    if a.port == 465:
        s = SMTPSWithSession(HOST4, port(465), ctx, session)
        matrix_check_tls(a, s.sock, session is not None)
    else:
        s = smtp(a.port)
        if ctx is not None:
            # smtplib's starttls() has no session= parameter; this is it
            # with one.
            code, resp = s.docmd("STARTTLS")
            assert code == 220, (code, resp)
            s.sock = ctx.wrap_socket(s.sock, server_hostname=HOST4, session=session)
            s.file = None
            s.helo_resp = s.ehlo_resp = None
            s.esmtp_features = {}
            s.does_esmtp = False
            matrix_check_tls(a, s.sock, session is not None)
    if s.ehlo_resp is None:  # at the start of TLS (the cleartext one was answered)
        s.ehlo()
    s.user, s.password = ALICE, ALICE_PW
    if a.auth == "LOGIN":
        s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    else:
        s.auth("PLAIN", s.auth_plain)
    s.sendmail(ALICE, ["bob@mailsift.test"], msg)
    # The same end with and without TLS: QUIT, then wait for the server to
    # close first.
    code, _ = s.docmd("QUIT")
    assert code == 221, code
    tls_session = s.sock.session if ctx is not None else None  # now with the TLS 1.3 tickets
    drain_and_close(s)
    return tls_session


class SMTPSWithSession(smtplib.SMTP_SSL):
    """SMTP_SSL that can resume a TLS session."""

    def __init__(self, host, port_, context, session):
        self.tls_session = session
        super().__init__(host, port_, local_hostname=HELO, timeout=30, context=context)

    def _get_socket(self, host, port_, timeout):
        sock = socket.create_connection((host, port_), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=host, session=self.tls_session)


class POP3SWithSession(poplib.POP3_SSL):
    """POP3_SSL that can resume a TLS session."""

    def __init__(self, host, port_, context, session):
        self.tls_session = session
        super().__init__(host, port_, timeout=30, context=context)

    def _create_socket(self, timeout):
        sock = poplib.POP3._create_socket(self, timeout)
        return self.context.wrap_socket(sock, server_hostname=self.host, session=self.tls_session)


def pop3_matrix_session(a, ctx, session):
    if a.port == 995:
        p = POP3SWithSession(HOST4, port(995), ctx, session)
        matrix_check_tls(a, p.sock, session is not None)
    else:
        p = poplib.POP3(HOST4, port(110), timeout=30)
        caps = p.capa()
        if ctx is not None:
            # poplib's stls() (CAPA, STLS, handshake) with session=.
            assert "STLS" in caps, caps
            print("  ", p._shortcmd("STLS"))
            p.sock = ctx.wrap_socket(p.sock, server_hostname=HOST4, session=session)
            p.file = p.sock.makefile("rb")
            p._tls_established = True
            matrix_check_tls(a, p.sock, session is not None)
    p.user(ALICE)
    p.pass_(ALICE_PW)
    resp, lines, octets = p.retr(MATRIX_POP3_MSG)
    body = b"".join(line + b"\r\n" for line in lines)
    if body != read_eml(a.src, MATRIX_MESSAGE):
        raise SystemExit(f"RETR {MATRIX_POP3_MSG} is not {MATRIX_MESSAGE}: {resp!r}")
    print("  ", resp)
    print("  ", p._shortcmd("QUIT"))
    tls_session = p.sock.session if ctx is not None else None
    drain_and_close(p)
    return tls_session


def c_tls_smtp(a):
    if a.port not in (25, 587, 465):
        raise SystemExit("tls-smtp: --port 25, 587 or 465")
    matrix_sessions(a, smtp_matrix_session)


def c_tls_pop3(a):
    if a.port not in (110, 995):
        raise SystemExit("tls-pop3: --port 110 or 995")
    matrix_sessions(a, pop3_matrix_session)


# ---------------------------------------------------------------------------
# The TLS sessions of a capture as tshark sees them (generate.sh's check of
# the TLS matrix, and the tables in README.md):
#
#   scenarios.py tls-table FILE.pcap [--keys FILE.keys] [--expect FILE]
#
# One line per TCP session: stream, server port, mode (clear, STARTTLS,
# STLS, implicit), TLS version, cipher suite, encrypt-then-mac (yes/no; n/a
# for AEAD suites, which have no MAC of their own), resumed, and the client
# commands tshark decrypted inside TLS.  --expect FILE holds one line
# "PORT VERSION SUITE ETM RESUMED" per session, in order; any difference, or
# a session whose dialogue inside TLS was not decrypted up to its QUIT, makes
# the exit status 1.
# ---------------------------------------------------------------------------

SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC009: "ECDHE-ECDSA-AES128-SHA",
    0xC00A: "ECDHE-ECDSA-AES256-SHA",
    0xC023: "ECDHE-ECDSA-AES128-SHA256",
    0xC024: "ECDHE-ECDSA-AES256-SHA384",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS_VERSIONS = {0x0303: "1.2", 0x0304: "1.3"}
EXT_ETM, EXT_PSK = 22, 41
HS_SERVER_HELLO, HS_CERTIFICATE = 2, 11

TABLE_FIELDS = [
    "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
    "frame.protocols", "tls.handshake.type", "tls.handshake.version",
    "tls.handshake.ciphersuite", "tls.handshake.extension.type",
    "tls.handshake.extensions.supported_version", "smtp.req.command",
    "pop.request.command", "imf.message_id",
]


def tshark_fields(pcap, keys, display_filter, fields):
    cmd = ["tshark", "-n", "-r", pcap, "-Y", display_filter, "-T", "fields",
           "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"]
    if keys:
        cmd += ["-o", "tls.keylog_file:" + keys]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    for line in out.splitlines():
        yield {f: [v for v in value.split(",") if v] for f, value in zip(fields, line.split("|"))}


def tls_table(pcap, keys):
    sessions = {}
    rows = tshark_fields(pcap, keys, "(tcp.flags.syn == 1 && tcp.flags.ack == 0) || tls.handshake"
                         " || smtp.req || pop.request || imf", TABLE_FIELDS)
    for r in rows:
        stream = int(r["tcp.stream"][0])
        s = sessions.setdefault(stream, {"port": None, "proto": None, "clear": [], "tls": [],
                                         "hello": None, "cert": False, "msgids": []})
        if r["tcp.flags.syn"] == ["1"] and r["tcp.flags.ack"] == ["0"]:
            s["port"] = int(r["tcp.dstport"][0])
            continue
        from_server = s["port"] is not None and int(r["tcp.srcport"][0]) == s["port"]
        types = [int(t) for t in r["tls.handshake.type"]]
        if from_server and HS_SERVER_HELLO in types:
            s["hello"] = r
        if from_server and HS_CERTIFICATE in types:
            s["cert"] = True
        layers = r["frame.protocols"][0].split(":") if r["frame.protocols"] else []
        cmds = r["smtp.req.command"] + r["pop.request.command"]
        if cmds:
            s["proto"] = "smtp" if r["smtp.req.command"] else "pop3"
            (s["tls"] if "tls" in layers else s["clear"]).extend(cmds)
        s["msgids"] += r["imf.message_id"]
    table = []
    for stream in sorted(sessions):
        s = sessions[stream]
        row = {"stream": stream, "port": s["port"], "mode": "clear", "version": "-", "suite": "-",
               "etm": "-", "resumed": "-", "inside": s["tls"], "msgids": s["msgids"],
               "decrypted": "-"}
        h = s["hello"]
        if h is not None:
            supported = [int(v, 16) for v in h["tls.handshake.extensions.supported_version"]]
            legacy = [int(v, 16) for v in h["tls.handshake.version"]]
            version = TLS_VERSIONS.get(supported[0] if supported else legacy[0], "?")
            suite = int(h["tls.handshake.ciphersuite"][0], 16)
            exts = [int(e) for e in h["tls.handshake.extension.type"]]
            name = SUITES.get(suite, "0x%04X" % suite)
            aead = version == "1.3" or "GCM" in name or "CHACHA" in name
            row.update(version=version, suite=name)
            row["etm"] = "yes" if EXT_ETM in exts else ("n/a" if aead else "no")
            if version == "1.3":
                row["resumed"] = "yes" if EXT_PSK in exts else "no"
            else:
                row["resumed"] = "no" if s["cert"] else "yes"
            if s["clear"]:
                row["mode"] = "STARTTLS" if s["proto"] == "smtp" else "STLS"
            else:
                row["mode"] = "implicit"
            row["decrypted"] = "yes" if s["tls"] and s["tls"][-1].upper() == "QUIT" else "NO"
        table.append(row)
    return table


def c_tls_table(a):
    table = tls_table(a.pcap, a.keys)
    print("stream port mode     TLS suite                         ETM resumed decrypted inside TLS")
    for r in table:
        print(f"{r['stream']:>6} {r['port']:>4} {r['mode']:<8} {r['version']:<3} {r['suite']:<29} "
              f"{r['etm']:<3} {r['resumed']:<7} {r['decrypted']:<9} {' '.join(r['inside'])}")
    if not a.expect:
        return 0
    with open(a.expect) as f:
        want = [line.split() for line in f if line.strip()]
    got = [[str(r["port"]), r["version"], r["suite"], r["etm"], r["resumed"]] for r in table]
    ok = True
    if got != want:
        ok = False
        print(f"sessions differ from {a.expect}:")
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else None
            w = want[i] if i < len(want) else None
            if g != w:
                print(f"  stream {i}: got {g}, wanted {w}")
    for r in table:
        if r["decrypted"] != "yes":
            ok = False
            print(f"  stream {r['stream']}: the dialogue inside TLS was not decrypted up to QUIT")
        elif r["inside"][0].upper() not in ("EHLO", "USER", "CAPA"):
            ok = False
            print(f"  stream {r['stream']}: first command inside TLS is {r['inside'][0]}")
    return 0 if ok else 1


CLIENTS = {
    "smtp-auth-plain-no-ir": c_smtp_auth_plain_no_ir,
    "smtp-auth-login-inline": c_smtp_auth_login_inline,
    "smtp-auth-fail-then-ok": c_smtp_auth_fail_then_ok,
    "smtp-multi": c_smtp_multi,
    "smtp-mime": c_smtp_mime,
    "smtp-dotstuff": c_smtp_dotstuff,
    "smtp-refused": c_smtp_refused,
    "smtp-starttls": c_smtp_starttls,
    "smtp-starttls-submission": c_smtp_starttls_submission,
    "smtps": c_smtps,
    "pop3s": c_pop3s,
    "pop3-user-pass": c_pop3_user_pass,
    "pop3-apop": c_pop3_apop,
    "pop3-auth-list-plain-ir": c_pop3_auth_list_plain_ir,
    "pop3-mailbox": c_pop3_mailbox,
    "pop3-stls": c_pop3_stls,
    "pop3-bob-list": c_pop3_bob_list,
    "tls-smtp": c_tls_smtp,
    "tls-pop3": c_tls_pop3,
}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sources")
    s.add_argument("dir")
    c = sub.add_parser("client")
    c.add_argument("name", choices=sorted(CLIENTS))
    c.add_argument("--src", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "source"))
    c.add_argument("--ca")
    c.add_argument("--port-map", default="", metavar="STD=PORT,...",
                   help="connect to PORT where the standard port STD is meant, e.g. 25=2525,110=2110")
    m = c.add_argument_group("tls-smtp / tls-pop3 (the TLS decryption matrix)")
    m.add_argument("--port", type=int, choices=(25, 587, 465, 110, 995),
                   help="standard port: 25/587 STARTTLS, 465 implicit TLS, 110 STLS, 995 implicit TLS")
    m.add_argument("--tls", choices=("none", "1.2", "1.3"), default="1.3")
    m.add_argument("--cipher", help="TLS 1.2: OpenSSL cipher name; TLS 1.3: the suite expected")
    m.add_argument("--no-etm", action="store_true", help="do not offer encrypt-then-mac (TLS 1.2 CBC)")
    m.add_argument("--resume", action="store_true",
                   help="a second session that resumes the first one's TLS session")
    m.add_argument("--auth", choices=("PLAIN", "LOGIN"), default="PLAIN", help="SMTP AUTH mechanism")
    t = sub.add_parser("tls-table", help="the TLS sessions of a capture as tshark sees them")
    t.add_argument("pcap")
    t.add_argument("--keys", help="NSS key log for decryption")
    t.add_argument("--expect", help='file of "PORT VERSION SUITE ETM RESUMED" lines, one per session')
    a = ap.parse_args()
    if a.cmd == "client":
        for item in filter(None, a.port_map.split(",")):
            std, real = item.split("=")
            PORT_MAP[int(std)] = int(real)
    if a.cmd == "sources":
        write_sources(a.dir)
    elif a.cmd == "tls-table":
        return c_tls_table(a)
    else:
        CLIENTS[a.name](a)


if __name__ == "__main__":
    sys.exit(main())
