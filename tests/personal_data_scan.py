"""Find the names, e-mails and phones of demo landing files in text that left the warehouse.

Used by ``tests/test_personal_data.py``. Values shorter than :data:`MIN_VALUE_LENGTH`
are not searched: short names ("Bo", "Ann") are also ordinary tokens of code, HTML and
logs, and a search for them would report false hits. Names are matched as whole words,
case- and accent-insensitive (Meld stores them standardised: ``müller`` -> ``muller``);
e-mails as whole addresses, case-insensitive; phones as whole digit runs (separators
between digits removed) in the delivered, E.164 and national forms, except placeholders
of fewer than three distinct digits (``999999999``), which are no one's number.

The JavaScript libraries Splink inlines into its offline charts are removed before
searching: they are the same in every chart and hold words that are also names.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
import pyarrow.parquet as pq

MIN_VALUE_LENGTH = 5
"""Shortest value searched for: see the module docstring."""

NAME_FIELDS = ("first_name", "last_name", "full_name")
_WORD = re.compile(r"[^\W\d_]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGIT_SEPARATORS = re.compile(r"(?<=\d)[ \-().]{1,2}(?=\d)")
_DIGITS = re.compile(r"\d{7,}")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def fold(text: str) -> str:
    """Lower case without accents: how a standardised name may spell a delivered one."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class PersonalValues:
    """What to search for: name words, e-mail addresses and phone digit strings."""

    names: frozenset[str]
    emails: frozenset[str]
    phones: frozenset[str]

    def __len__(self) -> int:
        return len(self.names) + len(self.emails) + len(self.phones)


def _rows(path: Path) -> Iterator[dict]:
    if path.suffix == ".parquet":
        yield from pq.read_table(path).to_pylist()
    elif path.suffix == ".jsonl":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)
    else:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # the delivery in the wrong encoding
            text = data.decode("cp1252", errors="replace")
        yield from csv.DictReader(io.StringIO(text, newline=""))


def _phone_forms(raw: str, region: str | None) -> set[str]:
    forms = {re.sub(r"\D", "", raw)}
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None:
        national = str(number.national_number)
        forms |= {f"{number.country_code}{national}", national, f"0{national}"}
    # Placeholders such as 999999999 or 0000000 are no one's number (and are what a
    # masked identifier looks like): only numbers of three or more distinct digits count.
    return {f for f in forms if len(f) >= MIN_VALUE_LENGTH + 2 and len(set(f)) >= 3}


def personal_values(sources: dict, files: Iterable[Path] | None = None) -> PersonalValues:
    """Every name word, e-mail and phone of the sources' landing files.

    Args:
        sources: The project config's ``sources`` section (paths absolute).
        files: Files to read instead of each source's ``path``, matched to a source by
            the start of their name.
    """
    names: set[str] = set()
    emails: set[str] = set()
    phones: set[str] = set()
    for name, source in sources.items():
        paths = (
            [Path(source["path"])]
            if files is None
            else [f for f in files if f.name.startswith(name)]
        )
        fields = {
            k: (v["column"] if isinstance(v, dict) else v) for k, v in source["fields"].items()
        }
        for path in paths:
            for row in _rows(path):
                for field in NAME_FIELDS:
                    value = row.get(fields.get(field, ""))
                    if value:
                        names |= {
                            w for w in _WORD.findall(fold(str(value))) if len(w) >= MIN_VALUE_LENGTH
                        }
                email = row.get(fields.get("email", ""))
                if email and len(str(email)) >= MIN_VALUE_LENGTH:
                    emails.add(fold(str(email).strip()))
                phone = row.get(fields.get("phone", ""))
                if phone:
                    region = row.get(fields.get("country", "")) or source.get("default_country")
                    phones |= _phone_forms(str(phone), region)
    return PersonalValues(frozenset(names), frozenset(emails), frozenset(phones))


def _vendored_libraries() -> list[str]:
    """The files Splink inlines into its HTML output, longest first."""
    import splink

    folder = Path(splink.__file__).parent / "internals" / "files"
    texts = []
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix not in (".json", ".py", ".txt", ".jar"):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            if len(text) > 2000:
                texts.append(text)
    return sorted(texts, key=len, reverse=True)


class Scanner:
    """Searches texts for :class:`PersonalValues`; :meth:`hits` lists what it found."""

    def __init__(self, values: PersonalValues) -> None:
        self.values = values
        self._libraries = _vendored_libraries()

    def hits(self, text: str) -> set[str]:
        """The values found in ``text`` (unescaped from HTML and JSON first)."""
        for library in self._libraries:
            if library[:200] in text:
                text = text.replace(library, "")
        text = html.unescape(_UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text))
        lowered = text.lower()
        words = {w for w in set(_WORD.findall(lowered)) if len(w) >= MIN_VALUE_LENGTH}
        found = {fold(w) for w in words} & self.values.names
        found |= {fold(e) for e in set(_EMAIL.findall(lowered))} & self.values.emails
        found |= set(_DIGITS.findall(_DIGIT_SEPARATORS.sub("", text))) & self.values.phones
        return found

    def scan_files(self, folder: Path) -> dict[str, set[str]]:
        """Hits per file under ``folder``: bytes as text, Parquet also as its rows."""
        found: dict[str, set[str]] = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            text = path.read_bytes().decode("utf-8", errors="replace")
            if path.suffix == ".parquet":
                text += json.dumps(pq.read_table(path).to_pylist(), default=str)
            hits = self.hits(text)
            if hits:
                found[str(path.relative_to(folder))] = hits
        return found
