"""A multipart/form-data reader that never holds the file: parts are parsed as the body
arrives (``python_multipart``'s push parser) and the file's bytes go straight to the
``FormHandler``, which writes them to disk.

Everything a client can get wrong is a 400 naming the field (``InvalidParameter``): a
part without a name, a second file, a file part with an empty file name (what a browser
sends for an empty file input), a text field over the size cap or not UTF-8, the same
field twice, a body that ends before the form does. A file over the limit is a 413.
"""

from __future__ import annotations

from typing import Protocol

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from kernel.libraries import PathRefused
from kernel.types import InvalidParameter

FILE_FIELD = "file"
MAX_PARTS = 16


class FormHandler(Protocol):
    """What the reader tells as it goes (called in order, from the thread that feeds)."""

    def field(self, name: str, value: str) -> None:
        """A complete text field."""

    def file_start(self, filename: str) -> None:
        """The file part begins (``filename`` as the client sent it, never empty)."""

    def file_data(self, data: memoryview) -> None:
        """The next bytes of the file."""

    def file_end(self) -> None:
        """The file part is complete."""


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a Content-Type header, or a 400."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidParameter(FILE_FIELD, "send the upload as multipart/form-data")
    return boundary


def _decode(raw: bytes, field: str, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter(field, f"{what} is not UTF-8 text") from None


class MultipartReader:
    """Feed it the body chunk by chunk (``feed``), then call ``finish``."""

    def __init__(
        self, boundary: bytes, handler: FormHandler, *, max_file_bytes: int, max_field_bytes: int
    ) -> None:
        self.handler = handler
        self.max_file_bytes = max_file_bytes
        self.max_field_bytes = max_field_bytes
        self.fields: dict[str, str] = {}
        self.file_seen = False
        self.complete = False
        self._parts = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._name: str | None = None  # the part being read
        self._is_file = False
        self._text = bytearray()
        self._file_bytes = 0
        try:
            self.parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value_data,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_end": self._end,
                },
            )
        except FormParserError as exc:
            raise InvalidParameter(FILE_FIELD, f"unusable multipart boundary: {exc}") from None

    @property
    def current_field(self) -> str:
        """The field to blame for a malformed body: the part being read, else ``file``."""
        return self._name or FILE_FIELD

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as exc:
            raise InvalidParameter(self.current_field, f"malformed multipart body: {exc}") from None

    def finish(self) -> None:
        """The body has ended: refuse a form that has not (a truncated upload)."""
        if not self.complete:
            raise InvalidParameter(
                self.current_field, "the body ended before the multipart form did (truncated?)"
            )
        if not self.file_seen:
            raise InvalidParameter(FILE_FIELD, "a form field 'file' with the upload is required")

    # --- parser callbacks ---------------------------------------------------------------------

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidParameter(FILE_FIELD, f"at most {MAX_PARTS} form fields are accepted")
        self._headers.clear()
        self._name, self._is_file = None, False
        self._text.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((bytes(self._header_name).lower(), bytes(self._header_value)))
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition = next((v for k, v in self._headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition.strip(b" \t"))
        raw_name = options.get(b"name")
        if raw_name is None:
            raise InvalidParameter(FILE_FIELD, "a form part has no field name")
        name = self._name = _decode(raw_name, FILE_FIELD, "a field name")
        filename = options.get(b"filename")
        if filename is None:
            if name == FILE_FIELD:
                raise InvalidParameter(FILE_FIELD, "must be a file (a part with a file name)")
            if name in self.fields:
                raise InvalidParameter(name, "was sent twice")
            return
        if name != FILE_FIELD or self.file_seen:
            raise InvalidParameter(name, "one file per upload, in the field 'file'")
        if not filename:
            raise InvalidParameter(FILE_FIELD, "no file was chosen (its file name is empty)")
        self._is_file = self.file_seen = True
        # Browsers send the name as raw UTF-8; anything else is cleaned like any odd name.
        self.handler.file_start(filename.decode("utf-8", errors="replace"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                raise PathRefused(413, f"upload exceeds the limit of {self.max_file_bytes} bytes")
            self.handler.file_data(memoryview(data)[start:end])
            return
        self._text += data[start:end]
        if len(self._text) > self.max_field_bytes:
            raise InvalidParameter(self.current_field, f"at most {self.max_field_bytes} bytes")

    def _part_end(self) -> None:
        name = self._name
        if name is None:
            return
        if self._is_file:
            self.handler.file_end()
        else:
            value = _decode(bytes(self._text), name, "the value")
            self.fields[name] = value
            self.handler.field(name, value)
        self._name, self._is_file = None, False

    def _end(self) -> None:
        self.complete = True
