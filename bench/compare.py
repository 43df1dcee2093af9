#!/usr/bin/env python3
"""Compares a mailsift NDJSON export with the manifest of the capture it was made from.

Usage: compare.py MANIFEST.json EXPORT.ndjson [--json]

Matches sessions by client address, messages by SHA-256 (mailsift hashes the whole message
even when it keeps only part of it), attachments by the SHA-256 of their decoded bytes, and
credentials by (mechanism, user, password, outcome). Prints one line per kind, found/expected,
and the sessions carrying a `memory_budget` anomaly; with --json, one JSON object instead.
Exit status 0 when every expected item was found, 1 otherwise. Python 3 standard library only.
"""
import collections
import json
import sys


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    as_json = "--json" in sys.argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    with open(args[0]) as f:
        man = json.load(f)
    want_sessions = {s["client"]: s for s in man["sessions"]}
    want_msgs = collections.Counter()
    want_atts = collections.Counter()
    want_creds = collections.Counter()
    for s in man["sessions"]:
        for c in s["credentials"]:
            want_creds[(c["mechanism"], c["username"], c["password"], c["success"])] += 1
        for m in s["messages"]:
            want_msgs[m["sha256"]] += 1
            for a in m["attachments"]:
                want_atts[a["sha256"]] += 1

    got_sessions = set()
    got_msgs = collections.Counter()
    got_atts = collections.Counter()
    got_creds = collections.Counter()
    n_sessions = n_msgs = n_incomplete = n_undecoded = n_atts = n_creds = 0
    budget_sessions = 0
    anomaly_kinds = collections.Counter()
    with open(args[1]) as f:
        for line in f:
            rec = json.loads(line)
            if "run_findings" in rec:
                continue
            n_sessions += 1
            client = "%s:%d" % (rec["client"]["ip"], rec["client"]["port"])
            if client in want_sessions:
                got_sessions.add(client)
            kinds = {a["kind"] for a in rec.get("anomalies", [])}
            anomaly_kinds.update(kinds)
            if "memory_budget" in kinds:
                budget_sessions += 1
            for c in rec.get("credentials", []):
                n_creds += 1
                got_creds[(c["mechanism"], c.get("username"), c.get("password"), c.get("success"))] += 1
            for m in rec.get("messages", []):
                n_msgs += 1
                if not m.get("complete", True):
                    n_incomplete += 1
                if "parts" not in m:
                    # Recorded with envelope, size and hash only (no MIME decoding).
                    n_undecoded += 1
                got_msgs[m.get("sha256")] += 1
                for a in m.get("attachments") or []:
                    n_atts += 1
                    got_atts[a.get("sha256")] += 1

    def found(want, got):
        return sum(min(n, got[k]) for k, n in want.items())

    out = {
        "sessions": {"expected": len(want_sessions), "found": len(got_sessions), "exported": n_sessions},
        "messages": {"expected": sum(want_msgs.values()), "found": found(want_msgs, got_msgs),
                     "exported": n_msgs, "incomplete": n_incomplete, "undecoded": n_undecoded},
        "attachments": {"expected": sum(want_atts.values()), "found": found(want_atts, got_atts),
                        "exported": n_atts},
        "credentials": {"expected": sum(want_creds.values()), "found": found(want_creds, got_creds),
                        "exported": n_creds},
        "memory_budget_sessions": budget_sessions,
        "anomaly_kinds": dict(sorted(anomaly_kinds.items())),
    }
    ok = all(out[k]["found"] == out[k]["expected"] for k in ("sessions", "messages", "attachments", "credentials"))
    out["all_found"] = ok
    if as_json:
        print(json.dumps(out))
    else:
        for k in ("sessions", "messages", "attachments", "credentials"):
            v = out[k]
            extra = ", %d incomplete, %d not MIME-decoded" % (v["incomplete"], v["undecoded"]) if k == "messages" else ""
            print("%s: %d of %d found (%d exported%s)" % (k, v["found"], v["expected"], v["exported"], extra))
        print("sessions with a memory_budget anomaly: %d" % budget_sessions)
        print("anomaly kinds (sessions): %s" % (", ".join("%s %d" % kv for kv in sorted(anomaly_kinds.items())) or "none"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
