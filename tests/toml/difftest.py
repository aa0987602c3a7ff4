#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Differential test of childflow's TOML reader against Python's tomllib.

For every document (hand-picked corpus files and seeded generated cases) both
readers parse the same bytes; the outcome must agree:

  - both accept, with the same values, types and key order, or
  - both reject, or
  - tomllib accepts and childflow reports UNSUPPORTED for a construct it does
    not represent, and tomllib's result really contains that construct. These
    are the expected, listed differences (printed by category at the end).

Corpus layout (tests/toml/corpus/): valid/ must be accepted by both,
invalid/ rejected by both, unsupported/ accepted by tomllib and refused as
unsupported by childflow, regressions/ (fuzzer finds) just agree.

Usage: difftest.py [--bin PATH/toml_to_json] [--corpus DIR] [--seed N] [--count N]
                   [--keep DIR] [-v]
Without --bin it uses $TOML_TO_JSON, then $BUILD_DIR/tests/toml/toml_to_json,
then build/tests/toml/toml_to_json, and otherwise compiles the helper from
src/config/toml.c with cc into a temporary directory.
Exit status 0 when everything agrees, 1 otherwise.
"""

import argparse
import collections
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
INT64 = (-(2**63), 2**63 - 1)
MAX_DEPTH = 64


def tagged(v):
    """tomllib's value in toml_to_json's form: tables as lists of [key, value] pairs."""
    if isinstance(v, bool):
        return {"type": "bool", "value": "true" if v else "false"}
    if isinstance(v, int):
        return {"type": "integer", "value": str(v)}
    if isinstance(v, str):
        return {"type": "string", "value": v}
    if isinstance(v, float):
        return {"type": "float", "value": repr(v)}
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return {"type": "datetime", "value": v.isoformat()}
    if isinstance(v, list):
        return [tagged(x) for x in v]
    if isinstance(v, dict):
        return [[k, tagged(x)] for k, x in v.items()]
    raise TypeError(type(v))


def pairs_hook(pairs):
    """Objects as [key, value] lists, so that key order is compared too."""
    if len(pairs) == 2 and pairs[0][0] == "type" and pairs[1][0] == "value":
        return dict(pairs)
    return [[k, v] for k, v in pairs]


def walk(v, depth=0):
    """Yield (value, depth) for every value in tomllib's result."""
    yield v, depth
    children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
    for c in children:
        yield from walk(c, depth + 1)


def contains(tree, kind):
    """Whether tomllib's result really has the construct @kind."""
    for v, depth in walk(tree):
        if kind == "float" and isinstance(v, float):
            return True
        if kind == "datetime" and isinstance(v, (datetime.datetime, datetime.date,
                                                 datetime.time)):
            return True
        if kind == "array-of-tables" and isinstance(v, list) and any(
                isinstance(x, dict) for x in v):
            return True
        if kind == "inline-table" and isinstance(v, dict) and depth > 0:
            return True
        if kind == "int64" and isinstance(v, int) and not isinstance(v, bool) and not (
                INT64[0] <= v <= INT64[1]):
            return True
        if kind == "depth" and depth > MAX_DEPTH:
            return True
    return False


CATEGORIES = [
    ("floating-point", "float"),
    ("dates and times", "datetime"),
    ("arrays of tables", "array-of-tables"),
    ("inline tables", "inline-table"),
    ("does not fit in 64 bits", "int64"),
    ("nesting deeper", "depth"),
    ("dotted parts", "depth"),
]


def category(msg):
    for needle, kind in CATEGORIES:
        if needle in msg:
            return kind
    return None


def run_tomllib(data):
    try:
        return "accept", tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        return "reject", str(e)
    except RecursionError:
        return "reject", "RecursionError"


def run_ours(binary, path):
    p = subprocess.run([binary, path], capture_output=True, timeout=20)
    out = p.stdout.decode("utf-8")
    if p.returncode == 0:
        return "accept", json.loads(out, object_pairs_hook=pairs_hook)
    if p.returncode == 1 and out.startswith("REJECT: "):
        return "reject", out.strip()
    if p.returncode == 2 and out.startswith("UNSUPPORTED: "):
        return "unsupported", out.strip()
    return "error", "exit %d: %s %s" % (p.returncode, out, p.stderr.decode(errors="replace"))


def compare(binary, path, data, expect):
    """Return (ok, note, category, outcome) for one document."""
    t_out, t_val = run_tomllib(data)
    o_out, o_val = run_ours(binary, path)
    cat = None
    if o_out == "error":
        return False, "toml_to_json failed: " + o_val, None, "error"
    if t_out == "accept" and o_out == "accept":
        ok = tagged(t_val) == o_val
        note = "" if ok else "values differ:\n  tomllib: %s\n  ours:    %s" % (
            json.dumps(tagged(t_val), ensure_ascii=False), json.dumps(o_val, ensure_ascii=False))
    elif t_out == "reject" and o_out in ("reject", "unsupported"):
        ok, note = True, ""
    elif t_out == "accept" and o_out == "unsupported":
        cat = category(o_val)
        marker = {"inline-table": b"{", "array-of-tables": b"[["}.get(cat, b"")
        ok = cat is not None and contains(t_val, cat) and marker in data
        note = "" if ok else "unsupported, but tomllib's value has no such construct: " + o_val
    else:
        ok = False
        note = "tomllib %s (%s), ours %s (%s)" % (
            t_out, t_val if t_out == "reject" else "...", o_out,
            o_val if o_out != "accept" else "...")
    if ok and expect == "valid" and o_out != "accept":
        ok, note = False, "expected both to accept: tomllib %s, ours %s" % (t_out, o_out)
    if ok and expect == "invalid" and t_out != "reject":
        ok, note = False, "expected both to reject, tomllib accepts"
    if ok and expect == "unsupported" and cat is None:
        ok, note = False, "expected tomllib to accept and ours to say unsupported: %s / %s" % (
            t_out, o_out)
    return ok, note, cat, "%s/%s" % (t_out, o_out)


def find_helper(tmp):
    """Path of a toml_to_json helper, building one in @tmp when none is built."""
    candidates = [os.environ.get("TOML_TO_JSON")]
    for build in (os.environ.get("BUILD_DIR"), os.path.join(TOP, "build")):
        if build:
            candidates.append(os.path.join(build, "tests", "toml", "toml_to_json"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        sys.exit("difftest: no toml_to_json helper and no C compiler to build one")
    out = os.path.join(tmp, "toml_to_json")
    subprocess.run([cc, "-std=gnu17", "-D_GNU_SOURCE", "-O1", "-I", os.path.join(TOP, "src"),
                    os.path.join(TOP, "src", "config", "toml.c"),
                    os.path.join(HERE, "toml_to_json.c"), "-o", out], check=True)
    return out


def corpus_files(corpus):
    for expect in ("valid", "invalid", "unsupported", "regressions"):
        d = os.path.join(corpus, expect)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(".toml"):
                yield os.path.join(d, name), expect


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", help="path to the toml_to_json helper")
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus"))
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--count", type=int, default=3000, help="generated documents")
    ap.add_argument("--keep", help="copy failing generated documents into this directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    helper_dir = tempfile.TemporaryDirectory(prefix="toml-difftest-bin-")
    if not args.bin:
        args.bin = find_helper(helper_dir.name)
    print("difftest: helper %s, tomllib of Python %s, seed %d, %d generated documents" % (
        args.bin, sys.version.split()[0], args.seed, args.count))
    counts = collections.Counter()
    outcomes = collections.Counter()
    differences = collections.defaultdict(list)
    failed = []

    def check(path, data, expect, label):
        ok, note, cat, outcome = compare(args.bin, path, data, expect)
        counts["passed" if ok else "failed"] += 1
        outcomes[outcome] += 1
        if cat and ok:
            differences[cat].append(label)
        if not ok:
            failed.append(label)
            print("FAIL %s: %s" % (label, note))
            if args.keep and expect == "generated":
                os.makedirs(args.keep, exist_ok=True)
                with open(os.path.join(args.keep, os.path.basename(label)), "wb") as f:
                    f.write(data)
        elif args.verbose:
            print("ok   %s" % label)

    for path, expect in corpus_files(args.corpus):
        with open(path, "rb") as f:
            check(path, f.read(), expect, os.path.relpath(path, args.corpus))

    with tempfile.TemporaryDirectory(prefix="toml-difftest-") as tmp:
        for name, data in generate.generate(args.seed, args.count):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            check(path, data, "generated", "seed %d/%s" % (args.seed, name))

    print("expected differences (tomllib accepts, childflow reports unsupported):")
    for cat in sorted(differences):
        shown = ", ".join(differences[cat][:5])
        more = len(differences[cat]) - 5
        print("  %-16s %4d  %s%s" % (cat, len(differences[cat]), shown,
                                     ", +%d more" % more if more > 0 else ""))
    print("outcomes (tomllib/childflow): " +
          ", ".join("%s %d" % (k, v) for k, v in sorted(outcomes.items())))
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
    helper_dir.cleanup()
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
