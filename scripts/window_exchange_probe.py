#!/usr/bin/env python3
"""Probe of the window exchange's cost in Redis (issue 24), outside the app.

Calls `src/logins/windows/exchange.lua` (and, to compare, other versions of it) on the
local Redis the way one detector batch does, and prints the median call time:

- `few CALLS [OTHER.lua ...]`: an attack from 1,000 addresses growing old: one new failure
  per address in the address rules' shared state (cap 256, 24 h) and one new account per
  address in a spray window (cap 256, 10 min), CALLS times; medians of the first and the
  last 100 calls. The current script is sent the version of the last call, as one replica
  holding what it exchanged is.
- `spread CALLS [OTHER.lua ...]`: an attack from millions of addresses: every call 1,000
  new addresses, each with one failure in the address state, one in its spray window and
  one new account key; median call and the Redis memory the keys took. Run twice, in turn.

An older script (before versions: no `~seq` in it) is sent (field, entries) pairs. Needs
`pip install redis`; keys live under a random prefix and are removed afterwards.

    python3 scripts/window_exchange_probe.py few 1200 <(git show main~1:src/logins/windows/exchange.lua)
    python3 scripts/window_exchange_probe.py spread 150 <(git show 35c5516:src/logins/windows/exchange.lua)
"""
import random
import sys
import time

import redis

r = redis.Redis()
CURRENT = "src/logins/windows/exchange.lua"


def group(rule, distinct, window_ms, fields, held=None):
    """One rule's group: pairs, then (for a versioned script) the held versions."""
    args = [rule, distinct, "256", str(window_ms), str(len(fields))]
    if held is None:
        return args + [x for pair in fields for x in pair]
    holding = [(str(p + 1), held) for p in range(len(fields))] if held else []
    args.append(str(len(holding)))
    args += [x for pair in fields for x in pair]
    return args + [x for pair in holding for x in pair]


def call(sha, args):
    started = time.perf_counter()
    answer = r.evalsha(sha, 0, *args)
    return (time.perf_counter() - started) * 1000, answer


def cleanup(prefix):
    memory = 0
    for key in r.scan_iter(prefix + "*"):
        memory += r.memory_usage(key) or 0
        r.unlink(key)
    return memory


def median(a):
    return sorted(a)[len(a) // 2]


def few(script, calls, keys=1000):
    sha = r.script_load(script)
    versioned = "~seq" in script
    held = ""
    prefix = "probe:%d:" % random.randrange(1 << 30)
    base = int(time.time() * 1000)
    per = []
    for b in range(calls):
        t = base + b * 20
        address = ["ip:10.0.%d.%d" % (k // 256, k % 256) for k in range(keys)]
        failures = [(a, str(t + k % 7)) for k, a in enumerate(address)]
        tried = [
            ("spray:" + a[3:], "%d:user%d" % (t + k % 7, random.randrange(1_000_000)))
            for k, a in enumerate(address)
        ]
        args = [prefix, "x", "172800000", ""]
        args += group("ip-long", "0", 86_400_000, failures, held if versioned else None)
        args += group("password-spray", "1", 600_000, tried, held if versioned else None)
        took, answer = call(sha, args)
        per.append(took)
        if versioned:
            held = answer[4].decode()
    cleanup(prefix)
    return (
        f"calls 1-100 median {median(per[:100]):.1f} ms, "
        f"last 100 median {median(per[-100:]):.1f} ms, max {max(per):.1f} ms, "
        f"mean {sum(per) / len(per):.1f} ms"
    )


def spread(script, calls, keys=1000):
    sha = r.script_load(script)
    versioned = "~seq" in script
    prefix = "probe:%d:" % random.randrange(1 << 30)
    base = int(time.time() * 1000)
    per, n = [], 0
    for b in range(calls):
        t = base + b * 20
        failures, tried, accounts = [], [], []
        for k in range(keys):
            n += 1
            address = "10.%d.%d.%d" % (n >> 16 & 255, n >> 8 & 255, n & 255)
            failures.append(("ip:" + address, str(t + k % 7)))
            tried.append(("spray:" + address, "%d:user%d" % (t + k % 7, n)))
            accounts.append(("account:user%d" % n, str(t + k % 7)))
        held = "" if versioned else None
        args = [prefix, "x", "172800000", ""]
        args += group("ip-long", "0", 86_400_000, failures, held)
        args += group("password-spray", "1", 600_000, tried, held)
        args += group("account-failures", "0", 600_000, accounts, held)
        per.append(call(sha, args)[0])
    memory = cleanup(prefix)
    return f"median {median(per):.2f} ms per call, {memory / 1e6:.1f} MB in Redis"


mode, calls = sys.argv[1], int(sys.argv[2])
paths = [CURRENT] + sys.argv[3:]
scripts = {p: open(p).read() for p in paths}
for _ in range(2 if mode == "spread" else 1):
    for path in paths:
        print(f"{path}: {(spread if mode == 'spread' else few)(scripts[path], calls)}", flush=True)
