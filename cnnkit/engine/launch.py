"""Starting distributed workers with torch.distributed's elastic launcher (what ``torchrun`` runs).

``cnnkit train --strategy ddp --nproc-per-node N`` calls :func:`launch_workers`, which starts
``N`` copies of ``python -m cnnkit ARGV`` on this node and waits. A worker that fails writes its
one-line error where the launcher looks for it (:func:`record_worker_error`); the launcher then
stops the other workers, and the failing rank's line becomes this process's error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cnnkit.console import note
from cnnkit.contracts._strategies import StrategyOptions
from cnnkit.errors import CnnkitError, UsageError

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure
    from torch.distributed.launcher.api import LaunchConfig

ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"
LAUNCHED_ENV = "CNNKIT_LAUNCHED"
"""Set for workers cnnkit starts itself: they leave their errors to the launcher, which prints
the failing rank's one line, instead of every worker printing its own."""
RDZV_TIMEOUT = 300
"""Seconds every node waits for the others to join (``--rdzv-timeout``). torchrun waits 900 (600
for its c10d join); cnnkit's nodes are usually started by hand within a minute or two of each
other, and a mistyped endpoint or a node that never starts should be named well before
a quarter of an hour. A cluster scheduler that starts nodes minutes apart needs a larger value."""


def launched_by_cnnkit() -> bool:
    return os.environ.get(LAUNCHED_ENV) == "1"


def check_endpoint(endpoint: str) -> None:
    """``HOST:PORT`` with a port from 1 to 65535, checked before anything waits on it."""
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--rdzv-endpoint '{endpoint}' must be HOST:PORT with a port from 1 to 65535, e.g. node0:29500.")


class WorkerFailed(CnnkitError):
    """A worker process failed; the job's exit code is the worker's (2 for usage errors)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def nproc_for(options: StrategyOptions) -> int:
    if options.nproc_per_node > 0:
        return options.nproc_per_node
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def launch_config(options: StrategyOptions) -> LaunchConfig:
    """A LaunchConfig like torchrun's: standalone on one node, rendezvous at an endpoint on several."""
    from torch.distributed.launcher.api import LaunchConfig

    if options.nnodes > 1 and not options.rdzv_endpoint:
        raise UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node).")
    if options.rdzv_endpoint:
        check_endpoint(options.rdzv_endpoint)
    nproc = nproc_for(options)
    if options.device != "cpu" and 0 < _gpu_count() < nproc:
        raise UsageError(f"--nproc-per-node {nproc} asks for more processes than this machine's {_gpu_count()} GPUs; "
                         "use at most one per GPU, or --device cpu.")
    if options.node_rank >= options.nnodes:
        raise UsageError(f"--node-rank {options.node_rank} must be below --nnodes {options.nnodes} (ranks count from 0).")
    if options.nnodes == 1 and not options.rdzv_endpoint:
        backend, endpoint, run_id = "c10d", "localhost:0", uuid.uuid4().hex
    elif options.node_rank >= 0:
        backend, endpoint, run_id = "static", options.rdzv_endpoint, "cnnkit"
    else:
        backend, endpoint, run_id = "c10d", options.rdzv_endpoint, "cnnkit"
    timeout = rdzv_timeout(options)
    if backend == "static":  # the TCP store's wait for every node, and node > 0's wait to reach node 0
        rdzv_configs = {"rank": options.node_rank, "timeout": timeout}
    else:  # the wait for every node to join, and to reach the store at the endpoint
        rdzv_configs = {"join_timeout": timeout, "read_timeout": timeout, "timeout": timeout}
    return LaunchConfig(
        min_nodes=options.nnodes,
        max_nodes=options.nnodes,
        nproc_per_node=nproc,
        run_id=run_id,
        rdzv_backend=backend,
        rdzv_endpoint=endpoint,
        rdzv_configs=rdzv_configs,
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )


def rdzv_timeout(options: StrategyOptions) -> int:
    """``--rdzv-timeout``, for options that carry it (older plugins' options may not)."""
    return int(getattr(options, "rdzv_timeout", RDZV_TIMEOUT))


def waiting_note(options: StrategyOptions) -> str:
    """What this node waits for, where, and for how long."""
    limit = f"up to {rdzv_timeout(options)} s (--rdzv-timeout)"
    if options.node_rank == 0:
        others = options.nnodes - 1
        return (f"waiting for {others} more node{'s' * (others > 1)} at {options.rdzv_endpoint} "
                f"(this is node 0 of {options.nnodes}), {limit}...")
    if options.node_rank > 0:
        return (f"waiting for node 0 at {options.rdzv_endpoint} and the other nodes "
                f"(this is node {options.node_rank} of {options.nnodes}), {limit}...")
    return f"waiting for {options.nnodes} nodes to join at {options.rdzv_endpoint}, {limit}..."


def wait_for_endpoint(options: StrategyOptions) -> None:
    """On a node that joins another's store (node > 0, or any node but the endpoint's host), wait
    until the endpoint answers, so that a node 0 that never starts is named in one line rather
    than in the store client's C++ log."""
    host, _, port = options.rdzv_endpoint.rpartition(":")
    if options.node_rank == 0 or (options.node_rank < 0 and _is_this_machine(host)):
        return
    deadline = time.monotonic() + rdzv_timeout(options)
    while (left := deadline - time.monotonic()) > 0:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=min(1.0, max(0.1, left))).close()
            return
        except OSError:
            time.sleep(min(0.5, left))
    who = "node 0 (--node-rank 0)" if options.node_rank > 0 else f"cnnkit on {host}"
    raise CnnkitError(
        f"nothing answered at {options.rdzv_endpoint} within {rdzv_timeout(options)} s (--rdzv-timeout); start {who} "
        "with the same --rdzv-endpoint, check the address and that the port is open, or raise --rdzv-timeout."
    )


def _is_this_machine(host: str) -> bool:
    try:
        from torch.distributed.elastic.rendezvous.utils import _matches_machine_hostname
    except ImportError:  # a torch without it: let its own client wait
        return True
    return _matches_machine_hostname(host)


def rendezvous_failed(options: StrategyOptions, exc: BaseException) -> CnnkitError:
    """One line for a rendezvous that did not gather every node in time, or a launch that failed."""
    endpoint, seconds = options.rdzv_endpoint, rdzv_timeout(options)
    text = " ".join(str(exc).split())
    joined = re.search(r"(\d+)/(\d+) clients joined", text)
    if joined or type(exc).__name__ == "RendezvousTimeoutError":
        came = f"only {joined.group(1)} of {joined.group(2)}" if joined else f"not all {options.nnodes}"
        return CnnkitError(
            f"{came} nodes joined the rendezvous at {endpoint} within {seconds} s (--rdzv-timeout); start cnnkit "
            f"with the same --rdzv-endpoint on every node ({options.nnodes} in all), or raise --rdzv-timeout."
        )
    return CnnkitError(f"the multi-node launch at {endpoint} failed: {type(exc).__name__}: {text}")


def launch_workers(argv: list[str], options: StrategyOptions) -> int:
    """Run ``python -m cnnkit *argv`` in every worker of this node; 0, or raise ``WorkerFailed``."""
    from torch.distributed import DistError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import elastic_launch

    from cnnkit.engine.signals import Interrupted

    config = launch_config(options)
    quiet_launcher_logs()
    if options.nnodes > 1:
        note(waiting_note(options))
        wait_for_endpoint(options)
    try:
        with worker_environment(config.nproc_per_node):
            elastic_launch(config, sys.executable)("-m", "cnnkit", *argv)
    except ChildFailedError as exc:
        raise worker_failed(exc.failures) from None
    except (RendezvousError, DistError) as exc:  # the launcher's own rendezvous or store, not a worker
        if options.nnodes == 1 and not options.rdzv_endpoint:
            raise
        raise rendezvous_failed(options, exc) from None
    except SignalException as exc:  # Ctrl-C or SIGTERM reached this launcher; its workers are stopped
        signum = int(exc.sigval)
        raise Interrupted(signal.Signals(signum).name, 128 + signum) from None
    return 0


def quiet_launcher_logs() -> None:
    """Silence torch.distributed's own log lines; cnnkit reports the failures itself."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


LAUNCHER_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))
"""The signals torch's elastic launcher takes over (to stop its workers) and never gives back."""


@contextlib.contextmanager
def worker_environment(nproc: int) -> Iterator[None]:
    """The environment the workers inherit while they run: ``LAUNCHED_ENV``, and ``OMP_NUM_THREADS``
    unless the user set it; both put back as they were afterwards, and so are this process's
    signal handlers, which the launcher replaces (a later run in the same process, through the
    Python API, would otherwise not turn Ctrl-C into an interruption)."""
    handlers = {sig: signal.getsignal(sig) for sig in LAUNCHER_SIGNALS} if threading.current_thread() is threading.main_thread() else {}
    saved_env = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", LAUNCHED_ENV)}
    os.environ[LAUNCHED_ENV] = "1"
    if saved_env["OMP_NUM_THREADS"] is None:  # as torchrun does: share the cores, not oversubscribe them
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def worker_failed(failures: dict[int, ProcessFailure]) -> WorkerFailed:
    """The launch's error: the root-cause worker's own one-line error when it recorded one, else
    how it ended (a signal or an exit code)."""
    rank, failure = earliest_failure(failures)
    data = getattr(failure, "error_file_data", None) or {}
    if "cnnkit_time_ms" in data:
        message = str(data.get("message", ""))
    elif failure.exitcode < 0:
        message = f"killed by {signal.Signals(-failure.exitcode).name}"
    else:
        message = f"exit code {failure.exitcode}"
    code = failure.exitcode if failure.exitcode > 0 else 1
    return WorkerFailed(f"rank {rank} failed: {message.strip() or f'exit code {failure.exitcode}'}", code)


def earliest_failure(failures: dict[int, ProcessFailure]) -> tuple[int, ProcessFailure]:
    """The root cause: the first worker that reported a cnnkit error (those carry the time in ms);
    failing that, the lowest rank."""

    def order(item: tuple[int, ProcessFailure]) -> tuple[int, float, int]:
        data = getattr(item[1], "error_file_data", None) or {}
        reported = "cnnkit_time_ms" in data
        return (0 if reported else 1, data.get("cnnkit_time_ms", 0.0), item[0])

    return min(failures.items(), key=order)


def die_with_launcher() -> None:
    """In a worker cnnkit started, ask Linux for SIGTERM when the launcher dies (even by kill -9),
    so no orphaned worker keeps writing the run directory. Elsewhere a no-op."""
    if not launched_by_cnnkit() or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the launcher died before we asked
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def record_worker_error(message: str) -> None:
    """In a launched worker, leave ``message`` where the launcher reads each worker's error."""
    path = os.environ.get(ERROR_FILE_ENV)
    if not path:
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            now = time.time()
            json.dump({"message": message, "timestamp": int(now), "cnnkit_time_ms": now * 1000}, f)
    except OSError:
        pass
