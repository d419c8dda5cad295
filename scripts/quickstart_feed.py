#!/usr/bin/env python3
"""Posts generated NDJSON traffic to slaflow's ingest API as the wall clock reaches it.

Usage: quickstart_feed.py URL INGEST_TOKEN ADMIN_TOKEN FILE...

Each file is read in order; a line is posted once the wall clock has passed its
`ts` (lines without a readable `ts`, which the generator makes on purpose, go
with their neighbours and come back as dead letters). The history is posted at
once, in batches, then the rest every few seconds. Exclusions (section 13)
need an admin's approval, so they go with the admin token, the rest with the
ingest token. Standard library only.
"""

import datetime
import json
import sys
import time
import urllib.error
import urllib.request

BATCH = 5000  # lines per request: well under the 8 MiB ingest body limit


def ts_ms(line):
    """The record's `ts` in epoch milliseconds, or None when it has none readable."""
    try:
        ts = json.loads(line).get("ts")
    except (ValueError, AttributeError):
        return None
    if isinstance(ts, (int, float)):
        return ts
    if isinstance(ts, str):
        try:
            return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            return None
    return None


def post(url, token, lines):
    """Posts one batch; returns (accepted, rejected) as the API counts them."""
    req = urllib.request.Request(
        url,
        data=("\n".join(lines) + "\n").encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:  # 400: some items rejected, the rest accepted
        body = json.load(e)
        if e.code != 400:
            sys.exit(f"  feeder stopped: {url} answered {e.code}: {body}")
    except OSError as e:  # slaflow stopped (Ctrl-C reaches it and this script at once)
        sys.exit(f"  feeder stopped: {url} does not answer ({e})")
    return body.get("accepted", 0), len(body.get("rejected", []))


def main():
    url, ingest, admin, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    files = [open(p, encoding="utf-8") for p in paths]
    pending = [None] * len(files)  # a line read but not yet due, per file
    accepted = rejected = 0
    history = True
    while True:
        now = time.time() * 1000
        batch, exclusions, left = [], [], False
        for i, f in enumerate(files):
            while True:
                line = pending[i] if pending[i] is not None else f.readline()
                pending[i] = None
                if not line:  # end of file ("" only there: a blank line is "\n")
                    break
                line = line.rstrip("\n")
                ts = ts_ms(line)
                if ts is not None and ts > now:
                    pending[i], left = line, True
                    break
                (exclusions if '"exclusion"' in line else batch).append(line)
                if len(batch) >= BATCH:
                    a, r = post(url, ingest, batch)
                    accepted, rejected, batch = accepted + a, rejected + r, []
        for token, lines in ((ingest, batch), (admin, exclusions)):
            if lines:
                a, r = post(url, token, lines)
                accepted, rejected = accepted + a, rejected + r
        if history:
            print(f"  history posted: {accepted} records accepted, {rejected} rejected "
                  "(the generator makes some malformed on purpose)", flush=True)
            history = False
        if not left:
            print(f"  all generated traffic posted ({accepted} accepted); "
                  "slaflow keeps running", flush=True)
            return
        time.sleep(5)


if __name__ == "__main__":
    main()
