#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a cycle.

    scripts/test/import-cycles.py SRC_DIR [SRC_DIR ...]

A module is a file under SRC_DIR (`a/mod.rs` is `a`, `a/b.rs` is `a::b`); it imports another
when it names it through `crate::` or `super::` (in a `use` or a path). A parent declaring its
children with `mod` does not count; a child naming its parent does.
"""
import os
import re
import sys


def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            if "tests" in rel:  # unit-test files (`foo/tests.rs`) belong to `foo`
                continue
            mods["::".join(rel)] = os.path.join(root, f)
    return mods


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand_use_groups(text):
    """`use a::{b, c::d}` -> `a::b a::c::d` (one level of braces is all the crates use)."""
    def repl(m):
        base, inner = m.group(1), m.group(2)
        return " ".join(f"{base}::{part.strip()}" for part in inner.split(",") if part.strip())
    prev = None
    while prev != text:
        prev = text
        text = re.sub(r"([A-Za-z_][\w:]*)::\{([^{}]*)\}", repl, text)
    return text


def imports(name, path, mods):
    text = expand_use_groups(strip_comments(open(path).read()))
    here = name.split("::") if name else []
    found = set()
    for m in re.finditer(r"\b(crate|super)((?:::[A-Za-z_]\w*)+)", text):
        parts = [p for p in m.group(2).split("::") if p]
        if m.group(1) == "crate":
            target = parts
        else:
            # `super` is the parent of this module, whether it is `a/b.rs` or `a/b/mod.rs`.
            target = here[:-1] + parts
        # The longest prefix that is a module.
        for n in range(len(target), 0, -1):
            cand = "::".join(target[:n])
            if cand in mods:
                if cand != name and not cand.startswith(name + "::" if name else "\0"):
                    found.add(cand)
                break
    return found


def main():
    bad = False
    for src in sys.argv[1:]:
        mods = modules(src)
        graph = {m: imports(m, p, mods) for m, p in mods.items()}
        state, stack, cycles = {}, [], []

        def visit(m):
            state[m] = 1
            stack.append(m)
            for n in sorted(graph[m]):
                if state.get(n) == 1:
                    cycles.append(stack[stack.index(n):] + [n])
                elif n not in state:
                    visit(n)
            stack.pop()
            state[m] = 2

        for m in sorted(graph):
            if m not in state:
                visit(m)
        for c in cycles:
            print(f"{src}: import cycle: {' -> '.join(c)}")
            bad = True
        if not cycles:
            print(f"{src}: {len(mods)} modules, no import cycle")
    sys.exit(1 if bad else 0)


main()
