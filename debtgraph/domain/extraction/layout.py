"""Words with their positions, grouped into lines and column segments (text layer or OCR alike)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

# Words whose tops differ by less than this many points sit on one line.
LINE_TOLERANCE = 3.0
# A horizontal gap wider than this many points starts a new column segment.
SEGMENT_GAP = 14.0


@dataclass(frozen=True, slots=True)
class Word:
    """One word as pdfplumber (or Tesseract) found it, in PDF points from the page's top left."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float


@dataclass(slots=True)
class Segment:
    """Consecutive words of a line that belong to one column."""

    words: list[Word]

    @property
    def x0(self) -> float:
        """Left edge."""
        return self.words[0].x0

    @property
    def x1(self) -> float:
        """Right edge."""
        return self.words[-1].x1

    @property
    def text(self) -> str:
        """The words joined by single spaces."""
        return " ".join(w.text for w in self.words)


@dataclass(slots=True)
class Line:
    """Words at one height on a page, split into column segments."""

    page: int
    top: float
    bottom: float
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The whole line, segments joined by two spaces."""
        return "  ".join(s.text for s in self.segments)

    @property
    def height(self) -> float:
        """The line's height in points."""
        return max(self.bottom - self.top, 1.0)


def lines_of(page: int, words: Iterable[Word]) -> list[Line]:
    """Group a page's words into lines (top to bottom) and segments (left to right).

    U+0000 is dropped from the words: a font's ToUnicode map may give it for a glyph, and no
    value of a draft (nor PostgreSQL's text) may hold it.
    """
    cleaned = (
        dataclasses.replace(w, text=w.text.replace("\x00", "")) if "\x00" in w.text else w
        for w in words
    )
    ordered = sorted((w for w in cleaned if w.text.strip()), key=lambda w: (w.top, w.x0))
    rows: list[list[Word]] = []
    for word in ordered:
        if rows:
            first = rows[-1][0]
            # Centres, not tops: OCR boxes of small glyphs (":", ",") sit lower than words.
            reach = max(LINE_TOLERANCE, 0.35 * (first.bottom - first.top))
            if abs((word.top + word.bottom) / 2 - (first.top + first.bottom) / 2) <= reach:
                rows[-1].append(word)
                continue
        rows.append([word])
    lines: list[Line] = []
    for row in rows:
        row.sort(key=lambda w: w.x0)
        segments: list[Segment] = [Segment([row[0]])]
        for word in row[1:]:
            if word.x0 - segments[-1].x1 > SEGMENT_GAP:
                segments.append(Segment([word]))
            else:
                segments[-1].words.append(word)
        lines.append(
            Line(
                page=page,
                top=min(w.top for w in row),
                bottom=max(w.bottom for w in row),
                segments=segments,
            )
        )
    return lines
