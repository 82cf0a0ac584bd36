"""Extraction benchmark: accuracy per field on the generated corpus, and ms per page.

``python bench/extract.py [--repeat 5]`` draws the corpus of ``tests/extraction/corpus.py``
(text invoices and image-only scans of some of them), reads each one in this process (the
extractor alone, without the child process the API runs it in), and prints

* per field: how many invoices had it right, text and scanned apart;
* per page: p50 and max milliseconds, text and scanned (Tesseract OCR) apart;
* the invoices with a field wrong, and what was read instead.

Without ``tesseract`` on the PATH the scanned rows say so. Prints figures only; never part of
the test run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    print("\nwrong fields:" if wrong else "\nevery field right")
    for line in wrong:
        print(line)


if __name__ == "__main__":
    main()
