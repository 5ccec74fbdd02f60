"""Plain-text rendering for the command line: tables, progress lines, job summaries."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value).replace("\n", " ")


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], *, max_width: int | None = None) -> str:
    """An aligned text table; long cells are cut with an ellipsis so the table fits the terminal."""
    data = [[_cell(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in data:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    limit = max_width or shutil.get_terminal_size((120, 20)).columns
    while sum(widths) + 2 * (len(widths) - 1) > limit and max(widths) > 8:
        widest = widths.index(max(widths))
        widths[widest] -= 1

    def fit(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["  ".join(fit(h, w).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in data:
        lines.append("  ".join(fit(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def contacts_table(contacts: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """Contacts as a table. ``name`` joins first and last name; ``sources`` counts the source history."""

    def cell(contact: dict[str, Any], column: str) -> Any:
        if column == "name":
            return " ".join(p for p in (contact["first_name"], contact["last_name"]) if p)
        if column == "sources":
            return len(contact["sources"])
        return contact[column]

    return table([[cell(c, col) for col in columns] for c in contacts], columns)


def bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"


class Progress:
    """Prints a job's progress: rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last = ""

    def __call__(self, job: dict[str, Any]) -> None:
        c = job["counts"]
        pct = job["progress"].get("percent") or 0.0
        line = (
            f"  {bar(pct / 100)} {pct:5.1f}%  {job['status']:<22} rows {c['rows_read']:>6}  valid {c['valid']:>6}"
            f"  invalid {c['invalid']:>4}  new {c['imported']:>6}  merged {c['merged']:>6}"
        )
        if line == self.last:
            return
        self.last = line
        if self.tty:
            self.out.write("\r" + line)
            if job["status"] in {"completed", "completed_with_errors", "failed"}:
                self.out.write("\n")
        else:
            self.out.write(line + "\n")
        self.out.flush()


def row_errors(job: dict[str, Any]) -> str:
    """One line per row error, never cut: which row, which field, why, and the value when it adds something."""
    lines = []
    for e in job["errors"]:
        where = f"row {e['row']:<5}" + (f" {e['field']}" if e.get("field") else "")
        value = e.get("value")
        shown = f"  (value: {value!r})" if value and value not in e["message"] else ""
        lines.append(f"{where:<20} {e['code']}: {e['message']}{shown}")
    text = "\n".join(lines)
    if job.get("errors_omitted"):
        text += f"\n  … and {job['errors_omitted']} more invalid rows (only the first 100 errors are kept)"
    return text
