"""Print the end-to-end matrix (JSON lines from SLOTHFUL_E2E_MATRIX) as a markdown table.

    python tests/e2e/matrix_table.py [--compact] matrix.jsonl [more.jsonl ...]     # or the lines on stdin

--compact: one row per host, model and neighbour, the three methods (S, T, A) side by side.

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


def compact(records) -> str:
    """One row per (host, model, neighbour): S / T / A values joined by '/'."""
    groups = {}
    for r in records:
        groups.setdefault((r.get("host"), str(r.get("model")).split(".")[0], r.get("neighbour")), {})[r.get("method")] = r
    order = ("slothful", "nearsighted_tile", "nearsighted_attention")
    head = ["host", "model", "neighbour", "HTTP S/T/A", "ours S/T/A", "neighbour with ours S/T/A", "alone",
            "entry S/T/A", "truth", "note"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (host, model, neighbour), by in groups.items():
        rs = [by.get(m, {}) for m in order]

        def joined(key, f=fmt):
            return "/".join(f(r.get(key)) if r else "-" for r in rs)

        short = lambda x: "-" if x is None else f"{x:.2f}" if isinstance(x, float) else fmt(x)  # noqa: E731
        alone = next((r.get("neighbour_alone_diff") for r in rs if r.get("neighbour_alone_diff") is not None), None)
        truths = {r.get("truth") for r in rs if r}
        out.append("| " + " | ".join([
            str(host), model, str(neighbour), joined("status"), joined("ours_diff", short),
            joined("neighbour_diff", short), short(alone), joined("entry"),
            "yes" if truths == {True} else "-" if truths <= {None} else "NO", next((note(r) for r in rs if note(r)), "")]) + " |")
    return "\n".join(out)


def main(argv):
    compact_mode = "--compact" in argv
    argv = [a for a in argv if a != "--compact"]
    lines = []
    if argv:
        for path in argv:
            with open(path, encoding="utf-8") as f:
                lines += f.readlines()
    else:
        lines = sys.stdin.readlines()
    print((compact if compact_mode else table)(rows(lines)))


if __name__ == "__main__":
    main(sys.argv[1:])
