"""cnnkit plugin registering the run callback ``jsonlog`` (``cnnkit train --log jsonlog``): every
event of a run as one JSON object per line, for scripts and dashboards that tail a run. Importing
it imports no torch (cnnkit imports plugin modules at start-up); the factory imports the callback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit import hookimpl

if TYPE_CHECKING:
    from cnnkit.contracts import CallbackOptions, CallbackRegister, RunCallback

__version__ = "0.1.0"
CNNKIT_API = ">=1.1,<2"

HELP = ("Every run event as one JSON object per line in the run directory's events.jsonl, "
        "or in the file --log-uri names when it ends in .jsonl")


def jsonlog(options: CallbackOptions) -> RunCallback:
    from cnnkit_jsonlog.callback import JsonLog

    return JsonLog(options)


@hookimpl
def register_callbacks(register: CallbackRegister) -> None:
    register("jsonlog", jsonlog, help=HELP)
