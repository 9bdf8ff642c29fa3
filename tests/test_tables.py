"""format_table: the one text-table helper of the package."""

import pytest

from mnistnet.tables import format_table


def test_plain_table_left_aligned_with_a_rule_and_no_trailing_spaces():
    text = format_table(["name", "error"], [("W1", "1e-9"), ("bias", None)])
    assert text.splitlines() == ["name  error", "----  -----", "W1    1e-9", "bias"]


def test_alignment_per_column():
    text = format_table(["run", "s"], [("a", 1.5), ("bb", 10)], align="<>")
    assert text.splitlines() == ["run    s", "---  ---", "a    1.5", "bb    10"]


def test_markdown():
    assert format_table(["a", "b"], [(1, None)], markdown=True) == "| a | b |\n|---|---|\n| 1 |  |"


def test_bad_rows_and_alignment_are_refused():
    with pytest.raises(ValueError, match="2 values"):
        format_table(["a", "b"], [(1,)])
    with pytest.raises(ValueError, match="align"):
        format_table(["a", "b"], [(1, 2)], align="<^")
