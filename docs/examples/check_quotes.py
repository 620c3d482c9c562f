# SPDX-License-Identifier: MIT
"""Check that the C code quoted in the documentation is the code that is tested.

Every ```c and ```python block of the given Markdown files quotes the example last
mentioned (`examples/NAME.c` or `examples/NAME.py`, usually a link) before it in the
same section, and its lines must appear, consecutively and verbatim, in that file.
Every example must be quoted somewhere. Exits 1 and names each quote that drifted.

    usage: check_quotes.py EXAMPLES_DIR FILE.md...
"""
import os
import re
import sys

LINK = re.compile(r"examples/([a-z_]+\.(?:c|py))\b")
QUOTED = ("```c", "```python")
HEADING = re.compile(r"#{1,6} ")


def quotes(md):
    """(line number, example file name or None, code lines) of every quoted block."""
    lines = open(md, encoding="utf-8").read().split("\n")
    out = []
    source = None
    i = 0
    while i < len(lines):
        if HEADING.match(lines[i]):
            source = None  # a new section: the quote must name its source again
        elif lines[i].startswith("```") and lines[i].strip() not in QUOTED:
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1  # another language's block: neither a quote nor prose
        elif lines[i].strip() not in QUOTED:
            found = LINK.findall(lines[i])
            if found:
                source = found[-1]
        else:
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            out.append((start, source, lines[start:j]))
            i = j
        i += 1
    return out


def contains(haystack, needle):
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    exdir = sys.argv[1]
    errors = 0
    used = set()
    for md in sys.argv[2:]:
        for line, source, code in quotes(md):
            where = f"{md}:{line}"
            if source is None:
                print(f"{where}: a code block without a link to the example it quotes")
                errors += 1
                continue
            path = os.path.join(exdir, source)
            if not os.path.exists(path):
                print(f"{where}: {source} does not exist")
                errors += 1
                continue
            used.add(source)
            text = open(path, encoding="utf-8").read().split("\n")
            if not code or not contains(text, code):
                print(f"{where}: the quote is not a verbatim run of lines of {source}")
                errors += 1
    for name in sorted(os.listdir(exdir)):
        if name.endswith((".c", ".py")) and name != "check_quotes.py" and name not in used:
            print(f"{name} is quoted nowhere")
            errors += 1
    if errors:
        sys.exit(1)
    print(f"quotes: ok ({len(used)} examples)")


if __name__ == "__main__":
    main()
