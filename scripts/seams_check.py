#!/usr/bin/env python3
"""Checks the code-shape rules of issue 30 that a compiler does not: prints
each breach and exits 1 if there is one.

- no `Spanned` (toml's span wrapper) outside `src/config/`;
- no `debug_assert!(false` (a skipped row instead of an internal error);
- no function longer than 80 lines (`fn` to its closing brace, blank lines,
  comments and the lines of raw string literals not counted; tests exempt);
- no import cycle between the modules of one folder, nor between top-level modules;
- every relative link of README.md and docs/*.md names a file in the repository,
  and none leaves it;
- scripts/test.sh gates `cargo fmt --check` and clippy with `-D warnings`.

Usage: scripts/seams_check.py   (scripts/test.sh runs it)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MAX_FN_LINES = 80
faults = []


def rust_files():
    return sorted(SRC.rglob("*.rs"))


def without_tests(text):
    """The text before a file's `#[cfg(test)] mod tests`."""
    return text.split("#[cfg(test)]\nmod tests", 1)[0]


def code(text):
    """`without_tests(text)` without comment lines and with each raw string's
    lines blanked (a TOML or HTML literal is data, not code)."""
    text = re.sub(r'r#"(.*?)"#', lambda m: 'r#""#' + "\n" * m.group(1).count("\n"), without_tests(text), flags=re.S)
    return "\n".join("" if l.lstrip().startswith("//") else l for l in text.split("\n"))


def check_tokens():
    for path in rust_files():
        text = without_tests(path.read_text())
        rel = path.relative_to(ROOT)
        if "Spanned" in text and not str(rel).startswith("src/config/"):
            faults.append(f"{rel}: `Spanned` outside src/config/")
        if "debug_assert!(false" in text:
            faults.append(f"{rel}: `debug_assert!(false` skips what should be an error")


FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?fn\s+(\w+)")


def check_function_lengths():
    for path in rust_files():
        lines = code(path.read_text()).split("\n")
        for i, line in enumerate(lines):
            m = FN.match(line)
            if not m:
                continue
            indent = m.group(1)
            # A declaration without a body (a trait method) ends at its `;`.
            signature = next((l for l in lines[i:] if "{" in l or l.rstrip().endswith(";")), "")
            if "{" not in signature:
                continue
            # The body ends at the first `}` line at the same indentation.
            for j in range(i + 1, len(lines)):
                if lines[j] == indent + "}":
                    break
            else:
                continue
            length = sum(1 for l in lines[i:j + 1] if l.strip())
            if length > MAX_FN_LINES:
                rel = path.relative_to(ROOT)
                faults.append(f"{rel}:{i + 1}: fn {m.group(6)} is {length} lines (max {MAX_FN_LINES})")


def module_of(path):
    """`src/engine/runs.rs` → ("engine", "runs"); `src/engine/mod.rs` → ("engine", None)."""
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def cycles(graph):
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def check_cycles():
    top, siblings = {}, {}
    for path in rust_files():
        parts = module_of(path)
        if not parts or parts in (["lib"], ["main"]):
            continue
        text = code(path.read_text())
        for used in re.findall(r"crate::(\w+)", text):
            if used != parts[0]:
                top.setdefault(parts[0], set()).add(used)
        if len(parts) >= 2:
            folder, name = "/".join(parts[:-1]), parts[-1]
            for used in re.findall(r"\bsuper::(\w+)", text):
                siblings.setdefault(folder, {}).setdefault(name, set()).add(used)
            for used in re.findall(r"crate::" + r"::".join(parts[:-1]) + r"::(\w+)", text):
                siblings.setdefault(folder, {}).setdefault(name, set()).add(used)
    for cycle in cycles(top):
        faults.append("top-level modules import each other: " + " → ".join(cycle))
    for folder, graph in sorted(siblings.items()):
        known = set(graph)
        graph = {k: {v for v in vs if v in known and v != k} for k, vs in graph.items()}
        for cycle in cycles(graph):
            faults.append(f"src/{folder}: modules import each other: " + " → ".join(cycle))


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def check_links():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, _ in LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+:", target):
                continue
            resolved = (doc.parent / target).resolve()
            rel = doc.relative_to(ROOT)
            if ROOT not in resolved.parents and resolved != ROOT:
                faults.append(f"{rel}: link {target} leaves the repository")
            elif not resolved.exists():
                faults.append(f"{rel}: link {target} names no file")


def check_gates():
    test = (ROOT / "scripts" / "test.sh").read_text()
    for gate in ["cargo fmt --check", "cargo clippy --all-targets", "-D warnings"]:
        if gate not in test:
            faults.append(f"scripts/test.sh does not run `{gate}`")


check_tokens()
check_function_lengths()
check_cycles()
check_links()
check_gates()
for f in faults:
    print(f"FAIL  {f}")
print(f"seams check: {len(faults)} fault(s)")
sys.exit(1 if faults else 0)
