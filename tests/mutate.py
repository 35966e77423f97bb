#!/usr/bin/env python3
"""mutate.py - mutation testing: does the suite catch deliberate bugs? (`make mutate`)

Reads tests/mutants.txt: each mutant names a file, the exact original text it replaces (which
must occur exactly once in that file, so the list follows refactors instead of line numbers), the
replacement, and the tests expected to catch it. For each mutant, in a private copy of the source
tree (build-mutate/src, synced from this checkout; the checkout itself is never modified), it
applies the change, rebuilds only what those tests need, runs only those tests, and restores
the file. A mutant is killed when one of its tests fails. Prints every mutant's result and time,
the kill rate and every survivor; exits 1 when a mutant survives, does not apply or does not
compile, or when the unmutated tests do not all pass (a skipped test cannot kill anything).

Usage: tests/mutate.py [--check] [--only NAME,...] [--jobs N]
  --check   only verify that every mutant applies (its text occurs exactly once); no build.
Environment: MUTATE_DIR (default build-mutate); MUTATE_CFLAGS (default -O0 -g0: most mutants
are in the kernels, and kernels_f32.c compiles in 7 s at -O0 against 16 s at -O1 here, while the
tests a mutant runs take a few seconds even at -O0); ELM_SHARED (default ../shared beside the
checkout; test_parity needs it).
Standard library only: runs under any python3.
"""
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def parse(path):
    """Mutants from the list: blocks starting with [name], then key: value lines."""
    muts, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line.strip())
            if m:
                cur = {"name": m.group(1), "line": n}
                muts.append(cur)
                continue
            m = re.match(r"(file|from|to|tests|why): ?(.*)$", line)
            if not m or cur is None:
                sys.exit(f"{path}:{n}: expected [name] or 'file|from|to|tests|why: ...', got {line!r}")
            key, val = m.group(1), m.group(2)
            if key in cur:
                sys.exit(f"{path}:{n}: {key} given twice for {cur['name']}")
            cur[key] = val
    names = set()
    for m in muts:
        for k in ("file", "from", "to", "tests"):
            if k not in m:
                sys.exit(f"{path}:{m['line']}: mutant {m['name']} has no '{k}:'")
        if m["from"] == m["to"]:
            sys.exit(f"{path}:{m['line']}: mutant {m['name']} changes nothing")
        if m["name"] in names:
            sys.exit(f"{path}:{m['line']}: mutant {m['name']} listed twice")
        names.add(m["name"])
        m["tests"] = m["tests"].split()
    return muts


def applies(src_root, m):
    """None when m's text occurs exactly once in its file, else the reason it does not apply."""
    p = os.path.join(src_root, m["file"])
    if not os.path.isfile(p):
        return f"{m['file']} does not exist"
    n = open(p, encoding="utf-8").read().count(m["from"])
    return None if n == 1 else f"its text occurs {n} times in {m['file']} (must be once)"


def source_files():
    """The checkout's files: git's tracked and untracked-unignored ones, else a walk."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
                             check=True, capture_output=True).stdout
        return [f for f in out.decode().split("\0") if f and os.path.isfile(os.path.join(ROOT, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, fs in os.walk(ROOT):
            dirs[:] = [x for x in dirs if not x.startswith(("build", ".git"))]
            files += [os.path.relpath(os.path.join(d, f), ROOT) for f in fs]
        return files


def sync(dst):
    """Copies changed files only, so that the copy's build stays incremental across runs, and
    removes files the checkout no longer has (CMake globs the sources)."""
    files = source_files()
    keep = set(files)
    for d, _, fs in os.walk(dst):
        for f in fs:
            rel = os.path.relpath(os.path.join(d, f), dst)
            if rel not in keep:
                os.remove(os.path.join(d, f))
    for rel in files:
        s, d = os.path.join(ROOT, rel), os.path.join(dst, rel)
        with open(s, "rb") as f:
            data = f.read()
        if os.path.isfile(d):
            with open(d, "rb") as f:
                if f.read() == data:
                    continue
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(s, d)


def targets(tests):
    """CTest names -> build targets: area/test_x needs test_x; a shell test needs elm."""
    t = set()
    for name in tests:
        area, _, exe = name.partition("/")
        t.add(exe if exe.startswith("test_") else "elm")
        if area == "cli" or exe == "test_teacher":
            t.add("elm")
    return sorted(t)


def run(cmd, log, **kw):
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw).returncode


def ctest(build, tests, log, jobs):
    """0 when all pass, else 1; also says whether any was skipped or not found."""
    rx = "^(" + "|".join(re.escape(t) for t in tests) + ")$"
    rc = run(["ctest", "--test-dir", build, "-R", rx, "-j", str(jobs), "--output-on-failure",
              "--timeout", "300"], log)
    text = open(log).read()
    skipped = "Skipped" in text or "Not Run" in text
    found = re.search(r"(\d+)% tests passed, \d+ tests failed out of (\d+)", text)
    n = int(found.group(2)) if found else 0
    return rc, skipped, n


def main():
    args = sys.argv[1:]
    check_only = "--check" in args
    only = None
    jobs = 2
    for i, a in enumerate(args):
        if a == "--only":
            only = set(args[i + 1].split(","))
        if a == "--jobs":
            jobs = int(args[i + 1])
    muts = parse(os.path.join(ROOT, "tests", "mutants.txt"))
    if only:
        unknown = only - {m["name"] for m in muts}
        if unknown:
            sys.exit(f"mutate: unknown mutants: {', '.join(sorted(unknown))}")
        muts = [m for m in muts if m["name"] in only]
    if check_only:
        bad = [(m, applies(ROOT, m)) for m in muts]
        bad = [(m, r) for m, r in bad if r]
        for m, r in bad:
            print(f"mutant {m['name']} does not apply: {r}")
        print(f"mutate --check: {len(muts) - len(bad)} of {len(muts)} mutants apply")
        return 1 if bad else 0

    t_start = time.time()
    top = os.path.abspath(os.environ.get("MUTATE_DIR", os.path.join(ROOT, "build-mutate")))
    src, build, logs = (os.path.join(top, x) for x in ("src", "build", "logs"))
    os.makedirs(logs, exist_ok=True)
    sync(src)
    shared = os.path.abspath(os.environ.get("ELM_SHARED", os.path.join(ROOT, "..", "shared")))
    # A build type of its own, so that its flags are ours (CMakeLists.txt fixes Release's).
    btype = "Mutate"
    cflags = os.environ.get("MUTATE_CFLAGS", "-O0 -g0")
    if run(["cmake", "-S", src, "-B", build, f"-DCMAKE_BUILD_TYPE={btype}",
            f"-DCMAKE_C_FLAGS_MUTATE={cflags}", "-DELM_WERROR=OFF", "-DELM_SANITIZE=OFF",
            f"-DELM_SHARED={shared}"], os.path.join(logs, "configure.log")):
        sys.exit(f"mutate: cmake configure failed, see {logs}/configure.log")
    all_tests = sorted({t for m in muts for t in m["tests"]})
    build_cmd = ["cmake", "--build", build, "-j", str(jobs), "--target"]
    print(f"mutate: {len(muts)} mutants, {len(all_tests)} tests; building the unmutated copy in "
          f"{build} ({btype}, {cflags})", flush=True)
    if run(build_cmd + targets(all_tests), os.path.join(logs, "baseline-build.log")):
        sys.exit(f"mutate: the unmutated tree does not build, see {logs}/baseline-build.log")
    # Every test must pass unmutated (ELM_REQUIRE_SHARED: a skip would look like a kill-less run).
    os.environ["ELM_REQUIRE_SHARED"] = "1"
    rc, skipped, n = ctest(build, all_tests, os.path.join(logs, "baseline-tests.log"), jobs)
    if rc or skipped or n != len(all_tests):
        sys.exit(f"mutate: the unmutated tests do not all run and pass ({n} of {len(all_tests)} "
                 f"found), see {logs}/baseline-tests.log")
    print(f"mutate: unmutated: {n} tests pass ({time.time() - t_start:.0f} s)", flush=True)

    results = []
    # Mutants of one file run one after another: restoring a file costs a rebuild of what
    # depends on it (the kernels: two large units), paid once per file instead of per mutant.
    first = {}
    for i, m in enumerate(muts):
        first.setdefault(m["file"], i)
    for m in sorted(muts, key=lambda m: first[m["file"]]):
        t0 = time.time()
        path = os.path.join(src, m["file"])
        why = applies(src, m)
        log = os.path.join(logs, m["name"] + ".log")
        if why:
            status = "DOES NOT APPLY: " + why
        else:
            orig = open(path, encoding="utf-8").read()
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(orig.replace(m["from"], m["to"], 1))
                if run(build_cmd + targets(m["tests"]), log):
                    status = "DOES NOT COMPILE"
                else:
                    rc, _, n = ctest(build, m["tests"], log + ".tests", jobs)
                    if n != len(m["tests"]):
                        status = f"ERROR: {n} of its {len(m['tests'])} tests found"
                    else:
                        status = "killed" if rc else "SURVIVED"
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(orig)
        dt = time.time() - t0
        results.append((m, status, dt))
        print(f"  {m['name']:<28} {status:<16} {dt:6.1f} s   {' '.join(m['tests'])}", flush=True)
    # Leave the copy's build unmutated for the next run.
    run(build_cmd + targets(all_tests), os.path.join(logs, "final-build.log"))
    killed = sum(s == "killed" for _, s, _ in results)
    total = time.time() - t_start
    print(f"mutate: {killed} of {len(results)} mutants killed "
          f"({100.0 * killed / max(1, len(results)):.0f} %) in {total:.0f} s")
    bad = [(m, s) for m, s, _ in results if s != "killed"]
    for m, s in bad:
        print(f"  not killed: {m['name']} ({m['file']}: {s}): {m.get('why', '')}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
