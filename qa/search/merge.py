"""SHOW ONCE: passages of one place that overlap (or touch) are merged into one result.

Passages overlap by a sentence, so neighbours of one section often rank together and repeat the
same sentences. A ranked list is walked best first; a passage that overlaps or touches a result
already kept (same file, same section, same page or locator) joins it, and the merged text is the
exact span of the file from the first start to the last end (both texts are slices of the same
file text, so their union is one). Pure functions of plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from ..schema import Passage

MAX_MERGED = 3  # passages in one merged result at most; beyond, a mostly repeated passage is dropped


@dataclass(frozen=True)
class Shown:
    """What is behind one result: the passage rows it shows (its best first) and the rank each
    had before merging."""

    rows: tuple[int, ...]
    places: tuple[int, ...]


def _place(p: Passage) -> tuple:
    return (p.source, p.section, p.page, p.locator)


def _extend(start: int, end: int, text: str, p: Passage) -> tuple[int, int, str]:
    """The span (start, end, text) widened by `p`, which starts at or after `start` and overlaps
    or touches it. Pure."""
    if p.end_char <= end:
        return start, end, text
    return start, p.end_char, text + p.text[end - p.start_char :]


def merge_ranked(passages: Sequence[Passage], k: int, most: int = MAX_MERGED) -> list[list[int]]:
    """Group the ranked `passages` (best first) into at most `k` results: each group lists the
    positions it merges, its best first. A passage that overlaps a full group (`most` passages) with
    more than half of its characters is dropped as a repeat; one that overlaps less starts its own
    group. Pure."""
    groups: list[list[int]] = []
    spans: list[list[int]] = []  # [start, end] of each group's union
    of_place: dict[tuple, list[int]] = {}  # place -> its groups, in order (only those can be joined)
    for at, p in enumerate(passages):
        joined = False
        here = (p.source, p.section, p.page, p.locator)
        a, b = p.start_char, p.end_char
        for g in of_place.get(here, ()):
            span = spans[g]
            start, end = span
            if a > end or b < start:
                continue
            if len(groups[g]) < most:
                groups[g].append(at)
                span[0], span[1] = min(start, a), max(end, b)
                joined = True
                break
            if (min(end, b) - max(start, a)) * 2 > b - a:
                joined = True  # mostly shown already: dropped
                break
        if not joined:
            if len(groups) >= k:
                continue
            of_place.setdefault(here, []).append(len(groups))
            groups.append([at])
            spans.append([a, b])
    return groups


def merged_passage(members: Sequence[Passage]):
    """The first of `members` (a Passage or Hit, the best) widened to the union of all their spans:
    text, offsets and lines; every other field kept from the first. Pure."""
    best = members[0]
    if len(members) == 1:
        return best
    ordered = sorted(members, key=lambda p: p.start_char)
    start, end, text = ordered[0].start_char, ordered[0].end_char, ordered[0].text
    for p in ordered[1:]:
        start, end, text = _extend(start, end, text, p)
    return replace(
        best,
        text=text,
        start_char=start,
        end_char=end,
        start_line=min(p.start_line for p in members),
        end_line=max(p.end_line for p in members),
    )


def trim_shown(results: Sequence[Passage]) -> list:
    """`results` (best first) with the text a better result of the same place already shows cut
    off the start or end of each later one (whole overlapping sentences, as passages overlap),
    still an exact span of the file; a result shown entirely already stays as it is. Pure."""
    out: list = []
    of_place: dict[tuple, list] = {}  # place -> the results of it so far, in order
    for p in results:
        here = _place(p)
        for q in of_place.get(here, ()):
            if q.end_char <= p.start_char or p.end_char <= q.start_char:
                continue
            if q.start_char <= p.start_char < q.end_char < p.end_char:  # q shows p's beginning
                p = _cut(p, q.end_char - p.start_char, len(p.text))
            elif p.start_char < q.start_char < p.end_char <= q.end_char:  # q shows p's end
                p = _cut(p, 0, q.start_char - p.start_char)
        out.append(p)
        of_place.setdefault(here, []).append(p)
    return out


def _cut(p, a: int, b: int):
    """`p` narrowed to its text[a:b], white space trimmed, lines and offsets kept exact. Pure."""
    text = p.text
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if a >= b:
        return p
    return replace(
        p,
        text=text[a:b],
        start_char=p.start_char + a,
        end_char=p.start_char + b,
        start_line=p.start_line + text.count("\n", 0, a),
        end_line=p.end_line - text.count("\n", b),
    )
