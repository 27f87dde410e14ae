"""What a row table knows without a screen: its columns, how values sort, how the filter
matches rows (plain Python; ``row_table.RowTable`` draws them)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

R = TypeVar("R")

# A row's searchable text: one string, or tiers of (label, text), the first tier to match wins.
SearchText = str | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column: how to show a record's cell and how to sort by it (raw values, not text)."""

    key: str
    label: str
    width: int
    text: Callable[[R], str]
    sort: Callable[[R], Any]
    align: str = "left"  # "left" | "right"
    priority: int = 0  # columns with a higher number are dropped first when the table is narrow
    flex: bool = False  # takes the spare width (up to ``max_width``)
    max_width: int = 40
    style: Callable[[R], str | None] | None = None  # component class for this cell, or None


def sortable(value: Any) -> Any:
    """None sorts first; mixed types sort by type name so that sorting never raises."""
    if value is None:
        return (0, "", 0)
    if isinstance(value, (int, float)):
        return (1, "", value)
    return (2, type(value).__name__, value)


def matching(rows: Mapping[Hashable, R], search: Callable[[R], SearchText],
             needle: str) -> tuple[list[Hashable], str]:
    """Keys of the rows ``needle`` (lower case) matches, and the tier's label that matched
    ("" for plain strings). With tiers of (label, text), the first tier that matches any row
    decides: ``1`` finds worker 1 and job 1 before every host 127.0.0.1."""
    texts = {k: search(r) for k, r in rows.items()}
    if all(isinstance(t, str) for t in texts.values()):
        return [k for k, t in texts.items() if needle in t.lower()], ""  # type: ignore[union-attr]
    tiers: list[str] = []
    for t in texts.values():
        for label, _ in t:  # type: ignore[misc]
            if label not in tiers:
                tiers.append(label)
    for label in tiers:
        found = [
            k for k, t in texts.items()
            if any(lab == label and needle in text.lower() for lab, text in t)  # type: ignore[misc]
        ]
        if found:
            return found, label
    return [], ""
