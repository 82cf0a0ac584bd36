"""Running an extraction off the event loop, in a child process killed at its time limit.

pdfminer and Tesseract are CPU-bound and a hostile PDF can keep them busy for minutes, so each
file is read in a fresh process forked from a forkserver that has the PDF libraries loaded; the
process (and Tesseract under it, in its own process group) is killed when the limit passes, and
its memory is capped. Neither the API's event loop nor an arq worker waits beyond the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from debtgraph.domain.extraction.pdf import TOO_SLOW, UNREADABLE, OcrEngine, PdfRefused

# Address space of one extraction: ample for pdfplumber, pypdfium2 at 300 dpi and Tesseract.
MEMORY_LIMIT = 2 * 1024 * 1024 * 1024
_PRELOAD = ["debtgraph.domain.extraction.pdf", "pdfplumber", "pypdfium2"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The time budget of one file and how OCR runs (None: no OCR)."""

    timeout: float
    engine: OcrEngine | None


def _child(conn: Connection, data: bytes, limits: Limits, user_id: str | None) -> None:
    # Own process group, so the parent's kill reaches a Tesseract started under this process.
    os.setpgrp()
    with contextlib.suppress(ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from debtgraph.domain.extraction.pdf import read_invoice

    try:
        result = read_invoice(data, engine=limits.engine, user_id=user_id)
        conn.send(("ok", result.as_dict()))
    except PdfRefused as refused:
        conn.send(("refused", refused.code, refused.message))
    except MemoryError:
        conn.send(("refused", TOO_SLOW.code, "The PDF needs too much memory to read."))
    except Exception:
        conn.send(("refused", UNREADABLE.code, UNREADABLE.message))
    finally:
        conn.close()


_context: Any = None
# One semaphore per event loop: an asyncio primitive belongs to the loop it first waited on.
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _mp_context() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_PRELOAD)
    return _context


def _slots_for_loop() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        # At most one extraction per core at a time; others wait (holding only their socket).
        _slots[loop] = asyncio.Semaphore(max(1, os.cpu_count() or 1))
    return _slots[loop]


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _kill(process: Any) -> None:
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        process.kill()
    process.join(5)


async def extract_pdf(data: bytes, limits: Limits, user_id: str | None = None) -> dict[str, Any]:
    """The extraction of ``data`` as plain values; PdfRefused (``pdf_too_complex`` on timeout)."""
    async with _slots_for_loop():
        return await _run(data, limits, user_id)


async def _run(data: bytes, limits: Limits, user_id: str | None) -> dict[str, Any]:
    ctx = _mp_context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, data, limits, user_id), daemon=True)
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    # start() hands the file to the child through a pipe: in a thread, not on the loop.
    started = asyncio.ensure_future(asyncio.to_thread(process.start))
    try:
        async with asyncio.timeout(limits.timeout):
            await asyncio.shield(started)
            # Only the child may hold the writing end, so its death reads as EOF here.
            sender.close()
            loop.add_reader(receiver.fileno(), _wake, ready)
            await ready
            message = await asyncio.to_thread(receiver.recv)
    except TimeoutError:
        raise TOO_SLOW from None
    except EOFError:
        # The child died without answering (killed by the memory cap, for instance).
        raise UNREADABLE from None
    finally:
        # Even on timeout or cancellation the child must exist before it can be killed.
        with contextlib.suppress(BaseException):
            await started
        sender.close()
        with contextlib.suppress(Exception):
            loop.remove_reader(receiver.fileno())
        receiver.close()
        await asyncio.to_thread(_kill, process)
    if message[0] == "ok":
        return message[1]  # type: ignore[no-any-return]
    raise PdfRefused(message[1], message[2])
