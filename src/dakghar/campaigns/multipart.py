"""A streaming ``multipart/form-data`` reader: small fields in memory, the file to a temp file.

Campaign uploads can be hundreds of megabytes. The request body is read chunk by chunk; the file
part is written straight to an anonymous temporary file (in the data directory when given: the
system's temporary directory may be a small tmpfs) and only the last few bytes (enough to
recognise a boundary split across chunks) are ever buffered, so memory stays flat whatever the
upload's size. (Starlette's own form parser needs an extra dependency, python-multipart.)
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO

from dakghar.errors import PayloadTooLarge, ValidationError

MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024


@dataclass
class Form:
    """The fields of a form and its (one) uploaded file, positioned at its start."""

    fields: dict[str, str] = field(default_factory=dict)
    file: IO[bytes] | None = None
    file_field: str | None = None
    filename: str | None = None

    def close(self) -> None:
        """Delete the spooled file."""
        if self.file is not None:
            self.file.close()


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` content type, or ValidationError."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise ValidationError("send the campaign as multipart/form-data with a 'file' part")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise ValidationError("multipart/form-data without a boundary")


def _disposition(raw: bytes) -> tuple[str, str | None]:
    name: str | None = None
    filename: str | None = None
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        for param in value.split(";")[1:]:
            k, _, v = param.strip().partition("=")
            if k.lower() == "name":
                name = v.strip('"')
            elif k.lower() == "filename":
                filename = v.strip('"')
    if name is None:
        raise ValidationError("a multipart part has no name")
    return name, filename


class _Parser:
    def __init__(self, boundary: bytes, file_field: str, directory: str | None = None) -> None:
        self.sep = b"\r\n--" + boundary
        self.file_field = file_field
        self.directory = directory
        self.form = Form()
        self.state = "preamble"
        self.buf = b"\r\n"  # so the first delimiter looks like every other one
        self.name = ""
        self.value = bytearray()
        self.sink: IO[bytes] | None = None

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        while self.step():
            pass

    def step(self) -> bool:
        if self.state == "preamble":
            i = self.buf.find(self.sep)
            if i < 0:
                self.buf = self.buf[-len(self.sep) :]
                return False
            self.buf, self.state = self.buf[i + len(self.sep) :], "after"
            return True
        if self.state == "after":
            if len(self.buf) < 2:
                return False
            if self.buf[:2] == b"--":
                self.state, self.buf = "done", b""
                return False
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            self.buf, self.state = self.buf[end + 2 :], "headers"
            return True
        if self.state == "headers":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    raise ValidationError("multipart part headers are too long")
                return False
            self.start(self.buf[:end])
            self.buf, self.state = self.buf[end + 4 :], "body"
            return True
        if self.state == "body":
            i = self.buf.find(self.sep)
            if i < 0:
                keep = len(self.sep) + 2
                if len(self.buf) > keep:
                    self.write(self.buf[:-keep])
                    self.buf = self.buf[-keep:]
                return False
            self.write(self.buf[:i])
            self.finish()
            self.buf, self.state = self.buf[i + len(self.sep) :], "after"
            return True
        return False

    def start(self, headers: bytes) -> None:
        self.name, filename = _disposition(headers)
        self.value = bytearray()
        if filename is not None or self.name == self.file_field:
            if self.form.file is not None:
                raise ValidationError("send one file per campaign")
            self.sink = tempfile.TemporaryFile(  # noqa: SIM115 - closed by Form.close
                prefix="dakghar-upload-", dir=self.directory
            )
            self.form.file, self.form.file_field, self.form.filename = (
                self.sink,
                self.name,
                filename,
            )

    def write(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink.write(data)
            return
        self.value += data
        if len(self.value) > MAX_FIELD_BYTES:
            raise PayloadTooLarge(f"form field {self.name!r} is larger than 64 KiB")

    def finish(self) -> None:
        if self.sink is not None:
            self.sink.flush()
            self.sink.seek(0)
            self.sink = None
        else:
            self.form.fields[self.name] = self.value.decode("utf-8", "replace")


async def read_form(
    chunks: AsyncIterator[bytes],
    content_type: str,
    *,
    file_field: str = "file",
    directory: str | None = None,
) -> Form:
    """Parse a multipart body from ``chunks``; the caller closes the returned form.

    The file part is spooled to an unlinked temporary file in ``directory`` (the system's
    temporary directory if None), so nothing is left behind even if the process dies.
    """
    parser = _Parser(boundary_of(content_type), file_field, directory)
    try:
        async for chunk in chunks:
            if chunk:
                parser.feed(chunk)
    except BaseException:
        parser.form.close()
        raise
    if parser.state != "done":
        parser.form.close()
        raise ValidationError("the multipart body ended before its closing boundary")
    return parser.form
