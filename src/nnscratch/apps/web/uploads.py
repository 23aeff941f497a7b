"""What ``POST /api/predict`` takes as the picture: the body itself, or the file of a form.

Three ways a client sends a picture, all accepted:

* the bytes as the body with an image type (``Content-Type: image/png``): the page does this;
* the bytes as the body with no type at all, or ``application/octet-stream``:
  Pillow decides from the bytes themselves (and says so when they are not a picture);
* a form upload, ``multipart/form-data`` (``curl -F file=@digit.png``, an HTML
  ``<form>``): the part named ``file``, else the first part holding a file.

Any other declared type (``text/plain``, or ``application/x-www-form-urlencoded``,
which ``curl --data-binary`` sends unless told otherwise) is refused with a
line saying what to send instead.
"""
from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

from ...errors import DataError

IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/bmp", "image/gif"}
UNTYPED = {"", "application/octet-stream"}  # no type said: the bytes decide
FORM = "multipart/form-data"
HOW = "send image/png or image/jpeg (curl: -H 'Content-Type: image/png'), or a form upload (curl -F file=@digit.png)"


def picture_from_body(content_type: str, body: bytes) -> tuple[bytes, str]:
    """The picture's bytes and a name for messages about it; DataError for a type we do not read."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in IMAGE_TYPES or kind in UNTYPED:
        return body, "request body"
    if kind == FORM:
        return form_file(content_type, body)
    raise DataError(f"Content-Type {kind!r}: {HOW}")


def form_file(content_type: str, body: bytes) -> tuple[bytes, str]:
    """The file of a ``multipart/form-data`` body, parsed by the standard library's email parser.

    A form is a MIME multipart message whose header is the request's
    Content-Type (it carries the boundary); the parser keeps each part's bytes
    exactly, so a PNG comes out as it went in.
    """
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    named = [p for p in parts if p.get_param("name", header="content-disposition") == "file"]
    files = named or [p for p in parts if p.get_filename() is not None]
    if not files:
        raise DataError("multipart form without a file: send the picture as the field 'file' "
                        "(curl -F file=@digit.png)")
    part = files[0]
    return part.get_payload(decode=True) or b"", f"form file {part.get_filename() or 'file'!r}"
