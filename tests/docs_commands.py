#!/usr/bin/env python3
"""Runs every command that README.md and docs/*.md show, as a user would type it.

Each fenced block whose info string is `sh` or `bash` is run line by line (a line ending
in a backslash continues on the next; lines starting with # are comments), from a
folder that looks like a fresh clone's root: every top-level entry of the source tree is
linked in, `build/` is the built tree, and no output folder (runs/, study/, ...) exists.
The blocks of one page run in order in one folder, so a later block may read what an
earlier one wrote. `bash setup.sh run ARGS` runs as `build/apps/wngan ARGS` (setup.sh
itself would install and build first, which the test suite has done).

Markers on the lines just above a fence (HTML comments, invisible on the page):
  <!-- docs-test: skip: REASON -->          the block is not run (a GPU, MPI, your data)
  <!-- docs-test: replace "OLD" "NEW" -->   a text substitution first (a short run)

Every relative link of those pages must name a file of the tree.

Prints one line per command and "docs commands: N passed, M failed, K skipped"; exits 1
when a command failed. Usage: docs_commands.py SOURCE_DIR BUILD_DIR [PAGE ...]
"""
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

FENCE = re.compile(r"^(\s*)```\s*([A-Za-z0-9_+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
REPLACE = re.compile(r'^replace\s+"((?:[^"\\]|\\.)*)"\s+"((?:[^"\\]|\\.)*)"$')
TIMEOUT_S = 600


class Block:
    def __init__(self, page, line, lang, text, markers):
        self.page, self.line, self.lang, self.text, self.markers = page, line, lang, text, markers


def blocks_of(path, rel):
    """The fenced blocks of a Markdown page with the markers just above each."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(2), i
        markers, k = [], i - 1
        while k >= 0 and MARKER.match(lines[k]):
            markers.insert(0, MARKER.match(lines[k]).group(1))
            k -= 1
        body, i = [], i + 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i])
            i += 1
        out.append(Block(rel, start + 1, lang, "\n".join(body), markers))
        i += 1
    return out


def commands_of(text):
    """(line offset, command) pairs: continuations joined, comments and blanks dropped."""
    cmds, cur, first = [], "", 0
    for n, raw in enumerate(text.split("\n")):
        line = raw.rstrip()
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not cur:
            first = n
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        cmds.append((first, cur.strip()))
        cur = ""
    if cur:
        cmds.append((first, cur.strip()))
    return cmds


def as_run(cmd):
    """`bash setup.sh run ARGS` -> `build/apps/wngan ARGS`; `bash setup.sh` alone: built already."""
    m = re.match(r"^bash\s+setup\.sh(\s+(.*))?$", cmd)
    if not m:
        return cmd
    rest = (m.group(2) or "").strip()
    if rest == "" or rest == "build":
        return "true"
    if rest.startswith("run"):
        return "build/apps/wngan" + rest[3:]
    raise ValueError(f"'{cmd}': mark this block <!-- docs-test: skip: ... --> (setup.sh {rest.split()[0]} is not run here)")


def fresh_root(source, build):
    """A folder that looks like a fresh clone's root: links to the tracked top level."""
    root = tempfile.mkdtemp(prefix="wngan-docs-")
    try:
        names = subprocess.run(["git", "-C", source, "ls-files"], capture_output=True, text=True, check=True).stdout.split()
        top = sorted({n.split("/")[0] for n in names})
    except (OSError, subprocess.CalledProcessError):
        top = [n for n in os.listdir(source) if not n.startswith(".") and n != "build"]
    for name in top:
        if name != "build" and os.path.exists(os.path.join(source, name)):
            os.symlink(os.path.join(source, name), os.path.join(root, name))
    os.symlink(os.path.abspath(build), os.path.join(root, "build"))
    return root


LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_links(source, rel):
    """Relative links of a page whose file does not exist in the tree (anchors dropped)."""
    text = open(os.path.join(source, rel), encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    bad = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        if path and not os.path.exists(os.path.normpath(os.path.join(source, os.path.dirname(rel), path))):
            bad.append(target)
    # Source files named in code spans (`gan/trainer.cpp`, `engine/ops/*`): they must exist too.
    for name in re.findall(r"`((?:engine|nn|gan|eval|apps|tests|docs|third_party)/[A-Za-z0-9_./*{},-]+)`", text):
        name = name.rstrip(".,")
        if "{" in name or name.endswith("/"):
            continue
        if not glob.glob(os.path.join(source, name)) and not glob.glob(os.path.join(source, name + "*")):
            bad.append(name)
    return bad


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    source, build = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    pages = argv[3:] or ["README.md", "CONTRIBUTING.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(os.path.join(source, "docs")) if f.endswith(".md"))
    passed = failed = skipped = 0
    for rel in pages:
        for target in broken_links(source, rel):
            print(f"FAIL  {rel}: links to {target}, which is not in the repository")
            failed += 1
        blocks = [b for b in blocks_of(os.path.join(source, rel), rel) if b.lang in ("sh", "bash")]
        if not blocks:
            continue
        root = fresh_root(source, build)
        for b in blocks:
            skip = [m for m in b.markers if m.startswith("skip")]
            if skip:
                n = len(commands_of(b.text))
                skipped += n
                print(f"skip  {rel}:{b.line}: {n} command(s) ({skip[0]})")
                continue
            text = b.text
            for m in b.markers:
                r = REPLACE.match(m)
                if not r:
                    print(f"FAIL  {rel}:{b.line}: unknown marker '{m}'")
                    failed += 1
                    continue
                old, new = r.group(1).replace('\\"', '"'), r.group(2).replace('\\"', '"')
                if old not in text:
                    print(f"FAIL  {rel}:{b.line}: the marker replaces '{old}', which the block does not contain")
                    failed += 1
                text = text.replace(old, new)
            for off, cmd in commands_of(text):
                where = f"{rel}:{b.line + 1 + off}"
                try:
                    run = as_run(cmd)
                except ValueError as e:
                    print(f"FAIL  {where}: {e}")
                    failed += 1
                    continue
                t0 = time.time()
                try:
                    p = subprocess.run(["bash", "-c", run], cwd=root, capture_output=True, text=True, timeout=TIMEOUT_S,
                                       stdin=subprocess.DEVNULL)
                    rc, out = p.returncode, (p.stdout + p.stderr)
                except subprocess.TimeoutExpired:
                    rc, out = "timeout", f"ran past {TIMEOUT_S} s"
                secs = time.time() - t0
                if rc == 0:
                    passed += 1
                    print(f"ok    {where} ({secs:.1f} s): {cmd}")
                else:
                    failed += 1
                    tail = "\n        ".join(out.strip().split("\n")[-15:])
                    print(f"FAIL  {where} (rc {rc}, {secs:.1f} s): {cmd}\n        ran: {run}\n        {tail}")
        subprocess.run(["rm", "-rf", root])
    print(f"docs commands: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
