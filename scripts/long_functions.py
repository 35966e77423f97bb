#!/usr/bin/env python3
"""long_functions.py - lists the functions longer than a limit in C (.c, .h, .inc) and Python
sources, longest first (issue 12: functions over 100 lines are split where that is safe).

A C function's length is its physical lines from the line that names it to its closing brace;
a Python function's is ast's lineno..end_lineno (decorators excluded). Usage:
    scripts/long_functions.py [--min N] [PATH...]   (default: --min 100 over src cli python)
"""
import ast, os, re, sys

def c_functions(path):
    src = open(path, encoding="utf-8", errors="replace").read()
    # Blank out comments, strings and char literals (keeping newlines) so braces are real.
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("/*", i):
            j = src.find("*/", i + 2); j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j])); i = j
        elif src.startswith("//", i):
            j = src.find("\n", i); j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", src[i + 1:j]) + c); i = j + 1
        elif c == "#" and (i == 0 or src[i - 1] == "\n"):
            # preprocessor line (with continuations): skip
            j = i
            while True:
                k = src.find("\n", j)
                if k < 0: k = n; break
                if src[k - 1] == "\\": j = k + 1; continue
                break
            out.append(re.sub(r"[^\n]", " ", src[i:k])); i = k
        else:
            out.append(c); i += 1
    text = "".join(out)
    lines = text.split("\n")
    depth, head, head_line, start = 0, "", None, None
    res = []
    for ln, line in enumerate(lines, 1):
        for ch in line:
            if depth == 0:
                if ch == "{":
                    m = re.search(r"(\w+)\s*\([^;]*\)\s*$", head.strip(), re.S)
                    if m and "=" not in head.split("(")[0] and not re.match(r"\s*(struct|enum|union|typedef)\b", head):
                        start = (m.group(1), head_line or ln)
                    else:
                        start = None
                    depth = 1; head = ""; head_line = None
                    continue
                if ch == ";":
                    head = ""; head_line = None; continue
                if not ch.isspace() and head_line is None:
                    head_line = ln
                head += ch
            else:
                if ch == "{": depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        if start:
                            res.append((start[0], start[1], ln - start[1] + 1))
                        start = None
        if depth == 0 and head:
            head += "\n"
    return res

def py_functions(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    return [(f.name, f.lineno, f.end_lineno - f.lineno + 1) for f in ast.walk(tree)
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]

def main(argv):
    lim = 100
    if argv[:1] == ["--min"]:
        lim = int(argv[1]); argv = argv[2:]
    files = []
    for p in argv or ["src", "cli", "python"]:
        if os.path.isdir(p):
            for d, _, fs in os.walk(p):
                files += [os.path.join(d, f) for f in fs]
        else:
            files.append(p)
    rows = []
    for f in sorted(files):
        if f.endswith((".c", ".h", ".inc")):
            rows += [(n, f, l, s) for n, l, s in c_functions(f)]
        elif f.endswith(".py"):
            rows += [(n, f, l, s) for n, l, s in py_functions(f)]
    rows = [r for r in rows if r[3] > lim]
    for n, f, l, s in sorted(rows, key=lambda r: -r[3]):
        print(f"{s:5d}  {f}:{l}  {n}")
    print(f"{len(rows)} functions over {lim} lines")

if __name__ == "__main__":
    main(sys.argv[1:])
