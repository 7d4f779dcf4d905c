#!/usr/bin/env python3
"""Probe of the window exchange's cost as an attack from few sources grows old (issue 24).

Calls `src/logins/windows/exchange.lua` (and, to compare, other versions of it) on the
local Redis the way one detector batch does at 1,000 addresses: one new failure per address
in the address rules' shared state (cap 256, 24 h) and one new account per address in a
spray window (cap 256, 10 min), BATCHES times, and prints the median call time of the first
and the last 100 calls. Needs `pip install redis`; keys live under a random prefix and are
removed afterwards.

    python3 scripts/window_exchange_probe.py 1200 <(git show main~1:src/logins/windows/exchange.lua)
"""
import random
import sys
import time

import redis

r = redis.Redis()


def run(path, batches, keys=1000):
    script = open(path).read()
    sha = r.script_load(script)
    # A versioned script (`v<version>|` states) is sent the version of the last call, as
    # one replica holding what it exchanged does; an older one gets pairs.
    versioned = "~seq" in script
    held = ""
    prefix = "probe:%d:" % random.randrange(1 << 30)
    base = int(time.time() * 1000)
    per = []
    for b in range(batches):
        t = base + b * 20
        args = [prefix, "x", "172800000", ""]
        tail = [held] if versioned else []
        args += ["ip-long", "0", "256", "86400000", str(keys)]
        for k in range(keys):
            args += ["ip:10.0.%d.%d" % (k // 256, k % 256), str(t + k % 7)] + tail
        args += ["password-spray", "1", "256", "600000", str(keys)]
        for k in range(keys):
            account = "user%d" % random.randrange(1_000_000)
            args += ["spray:10.0.%d.%d" % (k // 256, k % 256), "%d:%s" % (t + k % 7, account)]
            args += tail
        started = time.perf_counter()
        answer = r.evalsha(sha, 0, *args)
        per.append((time.perf_counter() - started) * 1000)
        if versioned:
            held = answer[4].decode()
    for key in r.scan_iter(prefix + "*"):
        r.unlink(key)
    median = lambda a: sorted(a)[len(a) // 2]
    print(
        f"{path}: calls 1-100 median {median(per[:100]):.1f} ms, "
        f"last 100 median {median(per[-100:]):.1f} ms, max {max(per):.1f} ms, "
        f"mean {sum(per) / len(per):.1f} ms"
    )


batches = int(sys.argv[1]) if len(sys.argv) > 1 else 1200
for path in ["src/logins/windows/exchange.lua"] + sys.argv[2:]:
    run(path, batches)
