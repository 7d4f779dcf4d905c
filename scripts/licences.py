#!/usr/bin/env python3
"""Licences and sources of every crate opsguard can build with (scripts/audit.sh, so CI):
each crate's SPDX licence expression must be satisfiable with licences the MIT-licensed
project may ship (ALLOWED), and each crate must come from crates.io (no other registry, no
git or path dependency besides opsguard itself). Reads `cargo metadata` (all platforms, all
dependency kinds; offline once the crates are fetched), or the metadata JSON file given as the
one argument (the tests use that). Exit 1 with one line per offence."""

import json
import re
import subprocess
import sys

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"

# Permissive licences: the binary and the source distribution meet their terms by keeping the
# notices. A crate needs one side of an OR, and every part of an AND.
ALLOWED = {
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "BSL-1.0",
    "CC0-1.0",
    "0BSD",
    "Unlicense",
    "Unicode-3.0",
    # webpki-roots: the Mozilla root store's data, under the permissive CDLA 2.0.
    "CDLA-Permissive-2.0",
    # Weak, per-file copyleft: satisfied while opsguard ships the crates' files unmodified
    # (their source is public on crates.io); it does not reach opsguard's own files.
    "MPL-2.0",
}


def tokens(expr):
    # Old crates write "MIT/Apache-2.0" for "MIT OR Apache-2.0".
    return re.findall(r"\(|\)|[A-Za-z0-9.+-]+", expr.replace("/", " OR "))


def satisfiable(expr):
    """Whether the SPDX expression can be met with ALLOWED licences (AND binds tighter)."""
    toks = tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def atom():
        if peek() == "(":
            take()
            value = any_of()
            if take() != ")":
                raise ValueError("unbalanced parentheses")
            return value
        licence = take()
        if peek() == "WITH":
            take()
            licence = f"{licence} WITH {take()}"
        return licence in ALLOWED

    def all_of():
        value = atom()
        while peek() == "AND":
            take()
            value = atom() and value
        return value

    def any_of():
        value = all_of()
        while peek() == "OR":
            take()
            value = all_of() or value
        return value

    value = any_of()
    if pos != len(toks):
        raise ValueError(f"unexpected '{toks[pos]}'")
    return value


def metadata():
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as f:
            return json.load(f)
    command = ["cargo", "metadata", "--format-version", "1", "--locked"]
    return json.loads(subprocess.run(command, check=True, capture_output=True).stdout)


def main():
    meta = metadata()
    members = set(meta["workspace_members"])
    offences = []
    for package in meta["packages"]:
        if package["id"] in members:
            continue
        name = f"{package['name']} {package['version']}"
        if package["source"] != CRATES_IO:
            offences.append(f"{name}: not from crates.io ({package['source'] or 'a path'})")
        licence = package.get("license")
        if not licence:
            offences.append(f"{name}: no SPDX licence expression (license-file only)")
            continue
        try:
            if not satisfiable(licence):
                offences.append(f"{name}: licence '{licence}' is not on the allowed list")
        except (ValueError, IndexError) as e:
            offences.append(f"{name}: unreadable licence expression '{licence}' ({e})")
    for offence in offences:
        print(f"error: {offence}", file=sys.stderr)
    count = len(meta["packages"]) - len(members)
    print(f"licences and sources: {count} crates checked, {len(offences)} offences")
    return 1 if offences else 0


if __name__ == "__main__":
    sys.exit(main())
