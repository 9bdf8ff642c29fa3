"""One way to print a table of text (the checkers' reports, the benchmark): padded or Markdown."""

__all__ = ["format_table"]


def format_table(headers, rows, align="<", markdown=False):
    """A text table: a header line, a rule, one line per row.

    Inputs:
    - headers: n column titles; rows: an iterable of rows of n values (``str``, None as "").
    - align: "<" (left) or ">" (right) for every column, or one character per column ("<>>").
    - markdown: False for plain text (columns two spaces apart, no trailing spaces), True for
      a Markdown table (``| a | b |``, then ``|---|---|``).
    Returns: the table, a str of lines joined by newlines (no final newline).
    """
    cells = [[str(h) for h in headers]]
    cells += [["" if v is None else str(v) for v in row] for row in rows]
    n = len(headers)
    if any(len(row) != n for row in cells):
        raise ValueError(f"format_table: every row needs {n} values, one per header")
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in cells]
        rule = "|" + "---|" * n
    else:
        align = align * n if len(align) == 1 else align
        if len(align) != n or set(align) - {"<", ">"}:
            raise ValueError(f"format_table: align must be '<' or '>', once or once per column; "
                             f"got {align!r} for {n} columns")
        widths = [max(len(row[i]) for row in cells) for i in range(n)]
        lines = ["  ".join(c.ljust(w) if a == "<" else c.rjust(w)
                           for c, w, a in zip(row, widths, align)).rstrip() for row in cells]
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([lines[0], rule] + lines[1:])
