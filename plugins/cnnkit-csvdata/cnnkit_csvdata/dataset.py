"""The dataset ``csv``: images labelled by a CSV file, in the layout Kaggle competitions use::

    FOLDER/labels.csv         file name (or id) and label per line, with or without a header
    FOLDER/train/<images>     or FOLDER/images/<images>, or the images beside labels.csv

``--data-dir`` names FOLDER (default: the current folder) or the CSV file itself
(``--data-dir FOLDER/train_labels.csv``). Rows that cannot be used are left out with a warning
that says how many, names a few and says what to fix; a table that cannot be read at all is a
one-line usage error. Every image is probed before training, as folders are; the classes are
the labels, sorted (as numbers when they all are whole numbers, so label 2 is class 2), and the
validation images are a stratified share of every class drawn with the run's seed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path

from cnnkit.contracts import (
    IMAGE_EXTENSIONS,
    DataRequest,
    DataSplits,
    UnreadableImage,
    UsageError,
    image_files,
    new_dataset,
    probe_image,
    stratified_split,
    warn,
)
from cnnkit_csvdata.files import IMAGE_FOLDERS, Folder, best_folder, image_folders
from cnnkit_csvdata.table import Row, Table, TableError, read_table

CSV_NAME = "labels.csv"
EXAMPLES = 3
"""Rows a warning names before it says how many more there are."""
CHOOSING_ROWS = 1000
"""Rows looked up in each image folder to choose the one that holds the images."""


def locate(data_dir: str) -> Path:
    """The CSV file ``--data-dir`` names: the file itself, or ``labels.csv`` in the folder."""
    given = Path(data_dir).expanduser() if data_dir else Path.cwd()
    named = f"'{given}'" if data_dir else f"the current folder ('{given}')"
    if given.is_file():
        if given.suffix.lower() not in (".csv", ".tsv", ".txt"):
            raise UsageError(f"--data csv: {named} is not a CSV file; pass the folder that holds {CSV_NAME}, or the CSV file.")
        return given
    if not given.is_dir():
        raise UsageError(f"--data csv: --data-dir {named} does not exist; pass the folder that holds {CSV_NAME}.")
    path = given / CSV_NAME
    if path.is_file():
        return path
    others = sorted(p.name for p in given.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    hint = f" It has {', '.join(others)}: pass the one with the labels, e.g. --data-dir {given / others[0]}." if others else ""
    raise UsageError(f"--data csv: {named} has no {CSV_NAME} (file name and label per line); pass --data-dir the "
                     f"folder that holds it.{hint}")


def examples(rows: list[Row], describe: str = "'{file}' (line {line})") -> str:
    shown = ", ".join(describe.format(file=row.file, line=row.line, label=row.label) for row in rows[:EXAMPLES])
    return shown + (f" and {len(rows) - EXAMPLES} more" if len(rows) > EXAMPLES else "")


def count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


@dataclass
class Labelled:
    """The images of the table that exist, each once, with its label and the row that names it."""

    table: Table
    folder: Folder
    images: dict[Path, Row]


def resolve_rows(table: Table, folder: Folder) -> Labelled:
    """Each row's image in ``folder``; rows without a file name or label, naming no image or an
    ambiguous one, and images labelled twice differently are left out, each kind with a warning."""
    csv_name = table.path.name
    blank = [row for row in table.rows if not row.file or not row.label]
    if blank:
        warn(f"skipping {count(blank, 'row')} of {csv_name} with an empty file name or label: lines "
             f"{', '.join(str(row.line) for row in blank[:EXAMPLES])}{' ...' if len(blank) > EXAMPLES else ''}; "
             "fill them in or delete them.")
    missing, ambiguous = [], []
    rows_of: dict[Path, list[Row]] = defaultdict(list)
    for row in table.rows:
        if not row.file or not row.label:
            continue
        found = folder.matches(row.file)
        if not found:
            missing.append(row)
        elif len(found) > 1:
            ambiguous.append(row)
        else:
            rows_of[found[0]].append(row)
    if missing:
        warn(f"skipping {count(missing, 'row')} of {csv_name} whose image is not in '{folder.path}' (looked for the name "
             f"and the name with an image extension): {examples(missing)}; add the files or delete the rows.")
    if ambiguous:
        warn(f"skipping {count(ambiguous, 'row')} of {csv_name} naming several images in '{folder.path}' (the same name "
             f"with different extensions): {examples(ambiguous)}; write the file names with their extensions.")
    images, repeated, conflicting = {}, [], []
    for path, rows in rows_of.items():
        labels = {row.label for row in rows}
        if len(labels) > 1:
            conflicting.append(rows)
        else:
            images[path] = rows[0]
            if len(rows) > 1:
                repeated.append(rows)
    if repeated:
        shown = "; ".join(f"'{rows[0].file}' on lines {', '.join(str(r.line) for r in rows)}" for rows in repeated[:EXAMPLES])
        warn(f"{csv_name} lists {count(repeated, 'image')} more than once with the same label ({shown}"
             f"{' ...' if len(repeated) > EXAMPLES else ''}); each is used once. Delete the repeated rows to silence this.")
    if conflicting:
        shown = "; ".join(f"'{rows[0].file}': " + ", ".join(f"'{r.label}' (line {r.line})" for r in rows)
                          for rows in conflicting[:EXAMPLES])
        warn(f"leaving out {count(conflicting, 'image')} that {csv_name} labels differently on different lines ({shown}"
             f"{' ...' if len(conflicting) > EXAMPLES else ''}); keep one label per image.")
    return Labelled(table, folder, images)


def sort_classes(labels: set[str]) -> list[str]:
    """Sorted labels; as numbers when every label is a whole number (``2`` before ``10``)."""
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=lambda label: (int(label), label))
    return sorted(labels)


def readable(labelled: Labelled) -> tuple[list[Path], list[str], list[tuple[str, str]], Counter[tuple[int, int, int]]]:
    """The images that pass the probe folders make, their labels, the unreadable ones with the
    reason (each warned about, as folders do) and the stored shapes."""
    paths, labels, skipped, shapes = [], [], [], Counter[tuple[int, int, int]]()
    for path, row in sorted(labelled.images.items(), key=lambda item: item[1].line):
        try:
            shape = probe_image(path)
        except UnreadableImage as exc:
            warn(f"skipping unreadable image {path}: {exc}")
            skipped.append((str(path), str(exc)))
            continue
        shapes[shape] += 1
        paths.append(path)
        labels.append(row.label)
    return paths, labels, skipped, shapes


def checked_classes(labelled: Labelled, labels: list[str]) -> list[str]:
    """The classes with readable images; classes whose every image was left out are named in a
    warning, classes of one image too (they cannot be validated), and fewer than two refused."""
    csv_name = labelled.table.path.name
    named = {row.label for row in labelled.table.rows if row.label}
    found = Counter(labels)
    lost = sort_classes(named - set(found))
    if lost:
        warn(f"leaving out {count(lost, 'class')} of {csv_name} without a readable image ({', '.join(lost[:EXAMPLES])}"
             f"{' ...' if len(lost) > EXAMPLES else ''}; see the warnings above); add images or fix their rows.")
    classes = sort_classes(set(found))
    if len(classes) < 2:
        what = f"1 class ('{classes[0]}')" if classes else "no class"
        raise UsageError(f"{labelled.table.path} has readable images of {what}; a classifier needs at least 2 "
                         f"(the {labelled.table.label_column!r} column holds the labels).")
    single = [name for name in classes if found[name] == 1]
    if single:
        warn(f"{count(single, 'class')} of {csv_name} {'has' if len(single) == 1 else 'have'} only one image "
             f"({', '.join(single[:EXAMPLES])}{' ...' if len(single) > EXAMPLES else ''}), which trains but is never "
             "validated; add images (a few per class at least).")
    return classes


def load_csv(request: DataRequest) -> DataSplits:
    """The splits of the CSV dataset ``--data-dir`` names (see the module docstring)."""
    csv_path = locate(request.data_dir)
    new_dataset()
    folders = image_folders(csv_path.parent, tuple(IMAGE_EXTENSIONS))
    try:
        table = read_table(csv_path, lambda cell: any(folder.matches(cell) for folder in folders))
    except TableError as exc:
        raise UsageError(f"--data csv: {exc}") from None
    named = [row.file for row in table.rows if row.file][:CHOOSING_ROWS]
    folder, held = best_folder(folders, named)
    if not held:
        places = ", ".join(f"'{csv_path.parent / name}'" if name != "." else f"'{csv_path.parent}'" for name in IMAGE_FOLDERS)
        raise UsageError(f"--data csv: none of the images {csv_path.name} names is in {places} (the first: "
                         f"'{named[0] if named else ''}', from the {table.file_column!r} column); put the images in "
                         f"{csv_path.parent / 'train'} or {csv_path.parent / 'images'}, or fix the file column.")
    labelled = resolve_rows(table, folder)
    paths, labels, skipped, shapes = readable(labelled)
    classes = checked_classes(labelled, labels)
    if not 0.0 < request.val_split < 1.0:
        raise UsageError(f"--data csv has no validation split of its own, so --val-split must be between 0 and 1 "
                         f"(got {request.val_split}).")
    index = {name: i for i, name in enumerate(classes)}
    everything = image_files(paths, [index[label] for label in labels], request)
    train_idx, val_idx = stratified_split(everything.labels, request.val_split, request.seed)
    if len(val_idx) == 0:
        raise UsageError(f"{csv_path} has too few images to hold out a validation set; add images (two or more per class).")
    return DataSplits(everything.subset(train_idx), everything.subset(val_idx), None, classes, str(csv_path),
                      native=shapes.most_common(1)[0][0], skipped=skipped)
