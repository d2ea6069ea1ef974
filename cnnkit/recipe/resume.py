"""``cnnkit train --resume runs/NAME``: the options a resumed run uses, and what it may change.

The run's ``config.json`` gives the options; options given again on the command line (or in a
``--config`` file) override them, except those that shape the training trajectory
(:data:`cnnkit.config.RESUME_MUST_MATCH`): changing one of those is refused, naming each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnkit.config import read_config_file
from cnnkit.errors import UsageError
from cnnkit.options import FIELD_NAMES, RESUME_MUST_MATCH, TrainConfig

NOT_WITH_RESUME = ("name", "out")
UNRESOLVED = {"strategy": "auto", "precision": "auto", "device": "auto", "nproc_per_node": 0}
"""Values that mean "choose for me": given on resume, they keep what the run resolved them to."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resume_config(run: str | Path, given: dict[str, Any]) -> TrainConfig:
    """The options for resuming ``run``: its saved ones, with the harmless ones in ``given`` applied."""
    run = Path(run)
    check_run_directory(run)
    saved = read_config_file(run / "config.json")
    given = {key: value for key, value in given.items() if key not in UNRESOLVED or UNRESOLVED[key] != value}
    check_unchanged(run, saved, given)
    options = {key: value for key, value in saved.items() if key in FIELD_NAMES}
    options.update({key: value for key, value in given.items() if key != "resume"})
    options.update(name=run.name, out=str(run.parent), resume=str(run))
    return TrainConfig(**options)


def check_run_directory(run: Path) -> None:
    """Refuse a ``--resume`` that is not a run directory with its config.json and last.pt."""
    if not run.is_dir():
        what = "is not a folder" if run.exists() else "does not exist"
        raise UsageError(f"--resume '{run}' {what}; pass a run directory such as runs/NAME.")
    for missing in ("config.json", "last.pt"):
        if not (run / missing).is_file():
            raise UsageError(f"--resume '{run}' has no {missing}; it is not a cnnkit run directory (or it never started).")


def check_unchanged(run: Path, saved: dict[str, Any], given: dict[str, Any]) -> None:
    """Refuse options given again that would move the run (``--name``, ``--out``) or change its
    trajectory (:data:`cnnkit.config.RESUME_MUST_MATCH`), naming each."""
    same_place = {"name": lambda value: value == run.name, "out": lambda value: Path(value).resolve() == run.parent.resolve()}
    misplaced = [flag(key) for key in NOT_WITH_RESUME if key in given and not same_place[key](str(given[key]))]
    if misplaced:
        raise UsageError(f"--resume continues in '{run}' itself; drop {' and '.join(misplaced)}.")
    changed = [key for key in RESUME_MUST_MATCH if key in given and given[key] != saved.get(key)]
    if changed:
        details = ", ".join(f"{flag(key)} {saved.get(key)!r} -> {given[key]!r}" for key in changed)
        raise UsageError(
            f"Cannot resume '{run}' with changed {', '.join(flag(key) for key in changed)} ({details}): "
            "the result would not match the uninterrupted run. Start a new run instead."
        )
