"""Reading ``labels.csv``: which column names the file and which the label, header or not.

A header is recognised by a known column name (any case, surrounding spaces ignored), or, with
unknown names, by its first cell not naming an image while the next row's does. Without a header
the first column is the file and the second the label. The file may start with a byte-order mark
(Excel's "CSV UTF-8") and be separated by commas, semicolons or tabs (the first line decides).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FILE_COLUMNS = ("filename", "file_name", "file", "fname", "image", "image_name", "image_id", "img", "filepath",
                "file_path", "path", "id", "name")
"""Names of the file column, the more specific first (``image_id`` wins over ``id``)."""
LABEL_COLUMNS = ("label", "labels", "class", "class_name", "classname", "target", "category", "y")
DELIMITERS = (",", "\t", ";")


class TableError(ValueError):
    """labels.csv cannot be read as a file-and-label table; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class Row:
    line: int
    """Where the row is in the file (1-based, as an editor shows it)."""
    file: str
    label: str


@dataclass(frozen=True)
class Table:
    path: Path
    file_column: str
    """How messages name the file column: its header name, or "column 1"."""
    label_column: str
    rows: list[Row]


def read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(f"'{path}' is not UTF-8 text (byte {exc.object[exc.start]:#x} at offset {exc.start}); "
                         "save it as UTF-8 (Excel: CSV UTF-8).") from None


def split_lines(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of every line that is not blank."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = next((d for d in DELIMITERS if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        for cells in reader:
            stripped = [cell.strip() for cell in cells]
            if any(stripped):
                rows.append((reader.line_num, stripped))
    except csv.Error as exc:
        raise TableError(f"'{path}' line {reader.line_num}: {exc}; fix the quoting there.") from None
    return rows


def find(names: list[str], known: tuple[str, ...]) -> int | None:
    lowered = [name.lower() for name in names]
    for name in known:
        if name in lowered:
            return lowered.index(name)
    return None


def choose_columns(path: Path, header: list[str]) -> tuple[int, int]:
    """(file column, label column) of a header: the known names, or the other of two columns."""
    file_index, label_index = find(header, FILE_COLUMNS), find(header, LABEL_COLUMNS)
    if len(header) == 2:
        if file_index is None and label_index is not None:
            file_index = 1 - label_index
        elif label_index is None and file_index is not None:
            label_index = 1 - file_index
        elif file_index is None and label_index is None:
            file_index, label_index = 0, 1
    if file_index is None or label_index is None or file_index == label_index:
        shown = ", ".join(repr(name) for name in header)
        missing = "file" if file_index is None else "label"
        accepted = FILE_COLUMNS if missing == "file" else LABEL_COLUMNS
        raise TableError(f"'{path}' has the columns {shown} and none of them is the {missing} column; name it one of "
                         f"{', '.join(accepted)} (or keep only the file and label columns).")
    return file_index, label_index


def read_table(path: Path, names_image: Callable[[str], bool]) -> Table:
    """The rows of the CSV file at ``path``; ``names_image(cell)`` says whether a cell names an
    image file (to tell a header of unknown names from a first row)."""
    lines = split_lines(path, read_text(path))
    if not lines:
        raise TableError(f"'{path}' is empty; write one line per image: its file name and its label.")
    first = lines[0][1]
    known = find(first, FILE_COLUMNS) is not None or find(first, LABEL_COLUMNS) is not None
    header = known or (len(lines) > 1 and not names_image(first[0]) and names_image(lines[1][1][0]))
    if header:
        file_index, label_index = choose_columns(path, first)
        file_column, label_column = first[file_index], first[label_index]
        body = lines[1:]
    else:
        if len(first) != 2:
            raise TableError(f"'{path}' has no header and {len(first)} column(s); it needs a header naming the file "
                             f"column ({', '.join(FILE_COLUMNS[:6])}, ...) and the label column (label, class, target, ...).")
        file_index, label_index, file_column, label_column = 0, 1, "column 1", "column 2"
        body = lines
    if not body:
        raise TableError(f"'{path}' has a header but no rows; add one line per image: its file name and its label.")
    needed = max(file_index, label_index) + 1
    rows = []
    for line, cells in body:
        if len(cells) < needed:
            raise TableError(f"'{path}' line {line} has {len(cells)} column(s), fewer than the {needed} that "
                             f"{file_column!r} and {label_column!r} need; fix that line.")
        rows.append(Row(line, cells[file_index], cells[label_index]))
    return Table(path, file_column, label_column, rows)
