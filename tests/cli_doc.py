#!/usr/bin/env python3
"""Keeps docs/cli.md's option lists equal to the program's own help.

docs/cli.md holds, for each command, a block between `<!-- help: CMD -->` and
`<!-- /help -->` that is exactly `wngan help CMD` (in a ```text fence). With --write the
blocks are refreshed from the built program; without, they are compared and every
difference is reported (exit 1), so a changed option cannot leave the page behind.

Usage: cli_doc.py WNGAN_BINARY DOCS_CLI_MD [--write]
"""
import re
import subprocess
import sys

BLOCK = re.compile(r"(<!-- help: ([a-z]+) -->\n)(.*?)(<!-- /help -->)", re.S)


def help_of(binary, cmd):
    p = subprocess.run([binary, "help", cmd], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"cli_doc: `wngan help {cmd}` failed (rc {p.returncode}): {p.stderr.strip()}")
    return "```text\n" + p.stdout.rstrip() + "\n```\n"


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    binary, page, write = argv[1], argv[2], "--write" in argv[3:]
    text = open(page, encoding="utf-8").read()
    listed = subprocess.run([binary, "help"], capture_output=True, text=True).stdout
    commands = re.findall(r"^  ([a-z]+) ", listed, re.M)
    found = [m.group(2) for m in BLOCK.finditer(text)]
    bad = []
    for c in commands:
        if c not in found:
            bad.append(f"docs/cli.md has no <!-- help: {c} --> block for `wngan {c}`")
    for c in found:
        if c not in commands:
            bad.append(f"docs/cli.md has a block for '{c}', which is not a command")

    def refresh(m):
        want = help_of(binary, m.group(2)) if m.group(2) in commands else m.group(3)
        if m.group(3) != want:
            bad.append(f"the block of `wngan {m.group(2)}` differs from `wngan help {m.group(2)}`")
        return m.group(1) + want + m.group(4)

    new = BLOCK.sub(refresh, text)
    if write:
        if new != text:
            open(page, "w", encoding="utf-8").write(new)
        missing = [b for b in bad if "has no" in b or "not a command" in b]
        for b in missing:
            print("cli_doc:", b)
        return 1 if missing else 0
    for b in bad:
        print("cli_doc:", b)
    print(f"cli_doc: {len(found)} blocks, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
