"""The representative's identity document (PRODUCT.md §2 ``representative.identity_document``).

Decisions:

- A document is a PDF, JPEG or PNG file, told by its first bytes: the name and the type the
  client declares are the client's to choose and are never read.
- At most 10 MB (an invoice's limit, PRODUCT.md §4), and never more than ``MAX_UPLOAD_MB``
  (PRODUCT.md §12: files at most ``MAX_UPLOAD_MB``). An empty file is refused; a file input
  left empty (no name, no bytes) is no document at all, since the item is only eventually due.
- Stored under ``UPLOAD_DIR/identity-documents`` with a random name of our own and the
  extension of the type found, readable by the server's user only; the user row keeps the
  path relative to ``UPLOAD_DIR`` as its reference. No route serves it back.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from debtgraph.domain.core.errors import (
    DomainValidationError,
    FieldError,
    refuse_nul_file_name,
)

FIELD = "representative.identity_document"
MAX_MB = 10
MAX_BYTES = MAX_MB * 1024 * 1024
FOLDER = "identity-documents"
# Enough bytes to tell every accepted type apart.
_HEAD = 8
_COPY_BUFFER = 64 * 1024

NOT_A_FILE = "The identity document must be sent as a file (the form's file input)."
EMPTY = "The identity document file is empty."
WRONG_TYPE = "The identity document must be a PDF, JPEG or PNG file."
TOO_LARGE = "The identity document is too large: the maximum size is {mb} MB."


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """A file type accepted as an identity document."""

    media_type: str
    extension: str
    magic: bytes


KINDS: tuple[DocumentKind, ...] = (
    DocumentKind("application/pdf", "pdf", b"%PDF-"),
    DocumentKind("image/jpeg", "jpg", b"\xff\xd8\xff"),
    DocumentKind("image/png", "png", b"\x89PNG\r\n\x1a\n"),
)


class SubmittedFile(Protocol):
    """What a face hands over for a file part (Starlette's ``UploadFile`` has these)."""

    filename: str | None
    size: int | None
    file: Any


def max_bytes(max_upload_bytes: int) -> int:
    """The largest identity document accepted, given ``MAX_UPLOAD_MB`` in bytes."""
    return min(MAX_BYTES, max_upload_bytes)


def _refused(code: str, message: str) -> DomainValidationError:
    return DomainValidationError([FieldError(FIELD, code, message)])


def too_large(limit: int) -> DomainValidationError:
    """The refusal of a document (or a form carrying one) over ``limit`` bytes."""
    return _refused("too_large", TOO_LARGE.format(mb=max(limit // (1024 * 1024), 1)))


def kind_of(head: bytes) -> DocumentKind | None:
    """The accepted type whose signature ``head`` starts with, if any."""
    return next((kind for kind in KINDS if head.startswith(kind.magic)), None)


def examine(submitted: SubmittedFile | str | None, *, limit: int) -> DocumentKind | None:
    """The type of a submitted document, None when none was chosen; DomainValidationError else.

    Blocking (it reads the file's first bytes): call it in a worker thread.
    """
    if submitted is None:
        return None
    if isinstance(submitted, str) or not hasattr(submitted, "file"):
        # A text field of that name: a form sent without multipart, or a script's mistake.
        if isinstance(submitted, str) and not submitted:
            return None
        raise _refused("invalid", NOT_A_FILE)
    filename = submitted.filename or ""
    refuse_nul_file_name(submitted, FIELD)
    if submitted.size is not None and submitted.size > limit:
        raise too_large(limit)
    stream = submitted.file
    head = stream.read(_HEAD)
    stream.seek(0)
    if not head:
        if not filename:
            # A browser's file input left empty: a part with no name and no bytes.
            return None
        raise _refused("empty", EMPTY)
    kind = kind_of(head)
    if kind is None:
        raise _refused("invalid_type", WRONG_TYPE)
    return kind


def store(stream: Any, kind: DocumentKind, upload_dir: str, *, limit: int) -> str:
    """Copy a document examined as ``kind`` under ``upload_dir``; its reference (relative path).

    Blocking: call it in a worker thread. Each chunk is counted before it is written, so no
    more than ``limit`` bytes reach the disk; on any failure the partial copy is removed.
    """
    folder = Path(upload_dir) / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{kind.extension}"
    destination = folder / name
    size = 0
    # O_EXCL: a name we chose, never a file that was there; 0600: only the server reads it.
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            stream.seek(0)
            while chunk := stream.read(_COPY_BUFFER):
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                out.write(chunk)
        if size == 0:
            raise _refused("empty", EMPTY)
        with destination.open("rb") as copied:
            # The copy is what is kept: judge its own first bytes, not what was peeked before.
            if kind_of(copied.read(_HEAD)) != kind:
                raise _refused("invalid_type", WRONG_TYPE)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    return f"{FOLDER}/{name}"


def remove(upload_dir: str, reference: str | None) -> None:
    """Delete a stored document (its reference as :func:`store` gave it), if it is there."""
    if not reference:
        return
    path = Path(upload_dir) / reference
    if path.parent.name == FOLDER and path.name == Path(reference).name:
        path.unlink(missing_ok=True)
