"""Print the end-to-end matrix (JSON lines from SLOTHFUL_E2E_MATRIX) as a markdown table.

    python tests/e2e/matrix_table.py matrix.jsonl [more.jsonl ...]     # or the lines on stdin

The last line of each (host, model, neighbour, method) wins.  Columns: HTTP status with both on;
ours = mean |pixel diff| of ours on vs off with the neighbour on (0..255); neighbour = the neighbour on
vs off with ours on; alone = the neighbour on vs off with ours off; entry = the infotext carried
`Slothful Attention`; truth = entry present exactly when ours changed the pixels; note = why a case
was not compared, or the start of the error body.
"""
import json
import sys


def fmt(x):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.3f}"
    return str(x)


def note(r) -> str:
    text = r.get("note") or r.get("error") or ""
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= 90 else text[:87] + "..."


def rows(lines):
    last = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        last[(r.get("host"), r.get("model"), r.get("neighbour"), r.get("method"))] = r
    return list(last.values())


def table(records) -> str:
    head = ["host", "model", "neighbour", "method", "HTTP", "ours", "neighbour", "alone", "entry", "truth", "note"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        out.append("| " + " | ".join(fmt(r.get(k)) for k in (
            "host", "model", "neighbour", "method", "status", "ours_diff", "neighbour_diff", "neighbour_alone_diff",
            "entry", "truth")) + " | " + note(r) + " |")
    return "\n".join(out)


def main(argv):
    lines = []
    if argv:
        for path in argv:
            with open(path, encoding="utf-8") as f:
                lines += f.readlines()
    else:
        lines = sys.stdin.readlines()
    print(table(rows(lines)))


if __name__ == "__main__":
    main(sys.argv[1:])
