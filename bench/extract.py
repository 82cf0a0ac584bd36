"""Extraction benchmark: accuracy per field on the generated corpus, and ms per page.

``python bench/extract.py [--repeat 5]`` draws the corpus of ``tests/extraction/corpus.py``
(text invoices and image-only scans of some of them), reads each one in this process (the
extractor alone, without the child process the API runs it in), and prints

* per field: how many invoices had it right, text and scanned apart;
* per page: p50 and max milliseconds, text and scanned (Tesseract OCR) apart, and for text pages
  the floor measured in the same run: pdfplumber opening the same file and reading its words
  (what any extractor built on it must pay), so the ratio shows what the field rules add;
* the invoices with a field wrong, and what was read instead.

Without ``tesseract`` on the PATH the scanned rows say so. Prints figures only; never part of
the test run.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pdfplumber

from debtgraph.domain.extraction.pdf import OcrEngine, read_invoice
from tests.extraction.corpus import corpus, pdf_of
from tests.extraction.support import at


def main() -> None:
    """Run the corpus and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per text invoice")
    args = parser.parse_args()
    has_ocr = shutil.which("tesseract") is not None
    right: dict[str, dict[str, list[bool]]] = {
        "text": defaultdict(list),
        "scanned": defaultdict(list),
    }
    per_page: dict[str, list[float]] = {"text": [], "scanned": []}
    floor: list[float] = []
    wrong: list[str] = []
    for spec in corpus():
        kind = "scanned" if spec.scanned else "text"
        if spec.scanned and not has_ocr:
            continue
        data = pdf_of(spec)
        runs = 1 if spec.scanned else args.repeat
        for _ in range(runs):
            started = time.perf_counter()
            extraction = read_invoice(data, engine=OcrEngine() if spec.scanned else None)
            elapsed = (time.perf_counter() - started) * 1000
            per_page[kind].append(elapsed / max(extraction.page_count, 1))
            if not spec.scanned:
                floor.append(_bare_words_ms_per_page(data))
        for path, expected in spec.expected().items():
            got = at(extraction.data, path)
            right[kind][path].append(got == expected)
            if got != expected:
                wrong.append(f"  {spec.name}: {path} expected {expected!r}, read {got!r}")
        codes = {w.code for w in extraction.warnings} - {"no_text_layer"}
        right[kind]["warnings"].append(codes == spec.expected_warnings)
    for kind in ("text", "scanned"):
        if not right[kind]:
            print(f"\n{kind}: skipped (tesseract is not installed)")
            continue
        n = len(next(iter(right[kind].values())))
        print(f"\n{kind}: {n} invoices")
        for path, marks in sorted(right[kind].items()):
            print(
                f"  {path:32s} {sum(marks):3d}/{len(marks)}  {100 * sum(marks) / len(marks):5.1f} %"
            )
        pages = per_page[kind]
        print(
            f"  ms per page: p50 {statistics.median(pages):.1f}  max {max(pages):.1f}"
            f"  ({len(pages)} timed runs)"
        )
        if kind == "text" and floor:
            bare = statistics.median(floor)
            print(
                f"  floor (pdfplumber words alone): p50 {bare:.1f} ms per page"
                f"  -> extraction at {statistics.median(pages) / bare:.1f}x the floor"
            )
    print("\nwrong fields:" if wrong else "\nevery field right")
    for line in wrong:
        print(line)


def _bare_words_ms_per_page(data: bytes) -> float:
    started = time.perf_counter()
    with pdfplumber.open(io.BytesIO(data)) as document:
        for page in document.pages:
            page.extract_words()
        pages = len(document.pages)
    return (time.perf_counter() - started) * 1000 / max(pages, 1)


if __name__ == "__main__":
    main()
