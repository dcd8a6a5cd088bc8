"""What a delivered file holds, told from its bytes rather than its name.

A file named ``.csv`` may be gzip-compressed, an Excel workbook, Parquet, a PDF or some
other binary; a ``.parquet`` file may be CSV. Readers ask this module first, so such a
file is either read for what it is or refused with a clear error naming the source and
file, never parsed into binary "column names":

- gzip (``1f 8b``): decompressed (at most :data:`MAX_DECOMPRESSED_BYTES`) and read;
- ZIP (``PK``, which XLSX workbooks are), XLS, PDF, images, other compressors: refused,
  saying what the file is and what to deliver instead;
- Parquet (``PAR1``) under a text name: read as Parquet;
- other binary content (NUL bytes in the header line, or many control bytes): refused;
- a UTF-16 or UTF-32 byte-order mark: the text is decoded as the mark says.

Examples:
    >>> import gzip
    >>> content = sniff_text(gzip.compress(b"id,name\\n1,Anna\\n"), source_system="crm",
    ...                      path=Path("crm.csv"), encoding="utf-8")
    >>> content.kind, content.data, content.compressed
    ('text', b'id,name\\n1,Anna\\n', True)
    >>> try:
    ...     sniff_text(b"PK\\x03\\x04xl/workbook.xml", source_system="crm",
    ...                path=Path("crm.csv"), encoding="utf-8")
    ... except SourceError as exc:
    ...     print(exc)
    source 'crm', file 'crm.csv': file is a ZIP/XLSX workbook, not CSV: export it as CSV
"""

from __future__ import annotations

import codecs
import gzip
import io
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from linkage.ingest.readers.delivery import SourceError

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "PARQUET",
    "TEXT",
    "Content",
    "check_parquet_head",
    "sniff_text",
]

logger = logging.getLogger(__name__)

TEXT = "text"
PARQUET = "parquet"
MAX_DECOMPRESSED_BYTES = 2 << 30
"""Most bytes a gzip-compressed delivery may expand to (2 GiB): a bomb stops here."""
SAMPLE_BYTES = 8192
MAX_CONTROL_SHARE = 0.05
"""Share of control bytes (other than tab, line ends, form feed and escape) in the first
:data:`SAMPLE_BYTES` above which text is taken for binary."""

_GZIP = b"\x1f\x8b"
_PARQUET = b"PAR1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_NOT_TEXT: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 (XLS) or other Office file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL_BYTES = bytes(set(range(32)) - {9, 10, 12, 13, 27})


@dataclass(frozen=True)
class Content:
    """What a file holds: ``kind`` (:data:`TEXT` or :data:`PARQUET`), the text's bytes
    (decompressed when ``compressed``) and the encoding to decode them with."""

    kind: str
    data: bytes
    encoding: str
    compressed: bool = False


def _where(source_system: str, path: Path) -> str:
    return f"source '{source_system}', file '{path}'"


def _not_text(head: bytes) -> str | None:
    """What a known non-text format is, or None."""
    if head.startswith(_ZIP):
        return "a ZIP/XLSX workbook"
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            return what
    return None


def _ascii_compatible(encoding: str) -> bool:
    try:
        return "id,\n".encode(encoding) == b"id,\n"
    except (LookupError, UnicodeError):
        return True


def _looks_binary(sample: bytes) -> bool:
    """NUL in the header line, or more than :data:`MAX_CONTROL_SHARE` control bytes."""
    header = sample.split(b"\n", 1)[0].split(b"\r", 1)[0]
    if b"\x00" in header:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > MAX_CONTROL_SHARE * len(sample)


def _gunzip(data: bytes, where: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            text = stream.read(MAX_DECOMPRESSED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(
            f"{where}: gzip-compressed, but the compressed data is truncated or corrupt "
            f"({type(exc).__name__})"
        ) from None
    if len(text) > MAX_DECOMPRESSED_BYTES:
        raise SourceError(
            f"{where}: gzip-compressed, and expands to more than {MAX_DECOMPRESSED_BYTES} "
            "bytes; split the delivery or deliver it uncompressed"
        )
    return text


def sniff_text(
    data: bytes,
    *,
    source_system: str,
    path: Path,
    encoding: str,
    expected: str = "CSV",
    compressed: bool = False,
) -> Content:
    """Tell what a file delivered as text (CSV or JSON) holds.

    Args:
        data: The file's bytes.
        source_system: The source, for messages.
        path: The file, for messages.
        encoding: The declared encoding; a UTF-16 or UTF-32 byte-order mark overrides it.
        expected: ``CSV`` or ``JSON``, for messages.
        compressed: The bytes were already decompressed once (no gzip inside gzip).

    Returns:
        The text's bytes and encoding, or ``kind`` :data:`PARQUET` for Parquet content.

    Raises:
        SourceError: The file is an archive, workbook, document, image or other binary,
            gzip inside gzip, or a gzip stream that is corrupt or expands too far.
    """
    where = _where(source_system, path)
    head = data[:SAMPLE_BYTES]
    if head.startswith(_GZIP):
        if compressed:
            raise SourceError(f"{where}: gzip-compressed twice; compress the file once")
        inner = _gunzip(data, where)
        return sniff_text(
            inner,
            source_system=source_system,
            path=path,
            encoding=encoding,
            expected=expected,
            compressed=True,
        )
    if head.startswith(_PARQUET):
        if compressed:
            raise SourceError(
                f"{where}: gzip-compressed Parquet is not read; Parquet compresses itself, "
                "deliver the .parquet file as it is"
            )
        logger.info("source %s, file %s: Parquet content, read as Parquet", source_system, path)
        return Content(PARQUET, data, encoding)
    what = _not_text(head)
    if what is not None:
        raise SourceError(f"{where}: file is {what}, not {expected}: export it as {expected}")
    for bom, bom_encoding in _BOMS:
        if head.startswith(bom) and not codecs.lookup(encoding).name.startswith(bom_encoding):
            logger.info(
                "source %s, file %s: %s byte-order mark, read as %s (not %s)",
                source_system,
                path,
                bom_encoding.upper(),
                bom_encoding,
                encoding,
            )
            return Content(TEXT, data, bom_encoding, compressed)
    if _ascii_compatible(encoding) and _looks_binary(head):
        raise SourceError(
            f"{where}: file holds binary data, not {expected} text (NUL or control bytes "
            f"in its first {len(head)} bytes); check the file delivered and the "
            "source's path"
        )
    return Content(TEXT, data, encoding, compressed)


def check_parquet_head(head: bytes, *, source_system: str, path: Path) -> None:
    """Refuse a ``.parquet`` file that is not Parquet, saying what it is instead.

    Raises:
        SourceError: The file does not start with ``PAR1``.
    """
    if head.startswith(_PARQUET):
        return
    where = _where(source_system, path)
    if head.startswith(_GZIP):
        raise SourceError(
            f"{where}: gzip-compressed, not Parquet; Parquet compresses itself, deliver "
            "the .parquet file as it is"
        )
    what = _not_text(head) or ("binary data" if _looks_binary(head) else "text (CSV or JSON?)")
    raise SourceError(
        f"{where}: file is {what}, not Parquet (no PAR1 marker at its start); deliver "
        "Parquet, or name the file for what it holds"
    )
