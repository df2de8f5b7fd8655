#!/usr/bin/env python3
"""The mutation run: breaks the sources on purpose, one change at a time, and checks that
the test suite notices.

Each mutant of mutants.txt (beside this file) is an exact text replacement in one source
file. For each: apply it, rebuild, run the doctest suite (stopping at its first failure),
restore the file. A mutant the suite does not fail on "survives". The result is a table and
"N of M caught". It takes long (a rebuild and a suite per mutant): run it in a clone of its
own, not in CI:

    git clone . /tmp/wngan-mut && cd /tmp/wngan-mut && meson setup build -Dcuda=disabled
    python3 tests/mutation/run.py build [--only N,M] [--list]
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def mutants():
    out, lines, i = [], open(os.path.join(HERE, "mutants.txt"), encoding="utf-8").read().split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            i += 1
            continue
        if i + 2 >= len(lines) or not lines[i + 1].startswith("- ") or not lines[i + 2].startswith("+ "):
            raise SystemExit(f"mutants.txt:{i + 1}: expected FILE, '- OLD', '+ NEW'")
        out.append((line.strip(), lines[i + 1][2:], lines[i + 2][2:], i + 1))
        i += 3
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    build = os.path.abspath(argv[1])
    only = None
    if "--only" in argv:
        only = {int(x) for x in argv[argv.index("--only") + 1].split(",")}
    ms = mutants()
    if "--list" not in argv:
        # The suite must pass on the sources as they are, or every mutant would look caught.
        subprocess.run(["ninja", "-C", build, "-j2"], check=True, capture_output=True)
        base = subprocess.run([os.path.join(build, "tests", "wngan_tests"), "--no-version", "-tce=dist*"], capture_output=True,
                              text=True, cwd=build)
        if base.returncode != 0:
            print(base.stdout[-3000:])
            raise SystemExit("mutation run: the suite fails without any mutant; fix that first")
    caught = survived = bad = 0
    rows = []
    for n, (path, old, new, line) in enumerate(ms, 1):
        if only and n not in only:
            continue
        full = os.path.join(ROOT, path)
        text = open(full, encoding="utf-8").read()
        if text.count(old) != 1:
            rows.append((n, path, "NOT APPLICABLE", f"the text occurs {text.count(old)} times"))
            bad += 1
            continue
        if "--list" in argv:
            rows.append((n, path, "listed", old.strip()[:70]))
            continue
        t0 = time.time()
        try:
            open(full, "w", encoding="utf-8").write(text.replace(old, new))
            b = subprocess.run(["ninja", "-C", build, "-j2"], capture_output=True, text=True)
            if b.returncode != 0:
                verdict, why = "caught", "does not compile"
            else:
                # The MPI cases are left out: on a loaded 2-core machine their time limits fail
                # for reasons of their own, which would pass for a caught mutant.
                t = subprocess.run([os.path.join(build, "tests", "wngan_tests"), "--abort-after=1", "--no-version",
                                    "-tce=dist*"],
                                   capture_output=True, text=True, cwd=build)
                if t.returncode != 0:
                    # The case whose check failed: the last "TEST CASE:" before the first error.
                    first, case = "a test failed", ""
                    for l in t.stdout.split("\n"):
                        if l.startswith("TEST CASE:"):
                            case = l
                        elif "ERROR" in l or "CRASHED" in l:
                            first = case or first
                            break
                    verdict, why = "caught", first.replace("TEST CASE:", "").strip()[:80]
                else:
                    verdict, why = "SURVIVED", ""
        finally:
            open(full, "w", encoding="utf-8").write(text)
        if verdict == "caught":
            caught += 1
        else:
            survived += 1
        rows.append((n, path, verdict, f"{why} ({time.time() - t0:.0f} s)"))
        print(f"{n:3d} {path:40s} {verdict:9s} {why}", flush=True)
    subprocess.run(["ninja", "-C", build, "-j2"], capture_output=True)  # back to the sources as they are
    print()
    for r in rows:
        if r[2] != "caught":
            print(f"{r[0]:3d} {r[1]:40s} {r[2]:14s} {r[3]}")
    total = caught + survived
    if total:
        print(f"mutation run: {caught} of {total} caught ({100.0 * caught / total:.0f}%), {survived} survived, "
              f"{bad} not applicable")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
