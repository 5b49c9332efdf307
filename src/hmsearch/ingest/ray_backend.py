"""Transcription on a Ray cluster: one actor per worker holds its Whisper model; the writer (this
process, Ray's driver) hands out episodes and commits their transcripts in plan order.

- **Workers** are Ray actors of ``ray_cpus_per_worker`` CPUs each, spread over the nodes, as many
  as the cluster's CPUs allow unless ``--workers`` says. Each loads its model once. Before any job
  runs every worker must answer with the same transcriber key as the writer's (the same model
  resolved the same way), else nothing is written.
- **Backpressure:** each worker has at most one episode at a time, and no episode is handed out
  more than ``2 * workers`` places ahead of the writer, so finished transcripts waiting for the
  writer stay few and a 10,000-episode feed is never queued at once.
- **Audio** is read where the worker runs when every node sees the same paths (``ray_audio``
  path: one machine, or shared storage), else shipped as bytes through Ray's object store.
- **Faults:** a worker that dies (killed, out of memory, its node lost) is replaced, and its episode
  goes to the next free worker, up to ``ray_retries`` more times; then it is a failed item (exit 8)
  like any other. An episode whose audio is bad fails once, with its reason; it is not retried.
- **A cluster that goes away** (its GCS no longer answers, or no node is left) stops the run:
  nothing more is handed out and a one-line BackendError (exit 7) says how many episodes were
  committed; those stay, and the same command on a cluster again continues from there.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..asr import TranscriberSpec, engine_class, load_transcriber
from ..audio import decode_audio
from ..config import setting
from ..errors import BackendError, HmsearchError, one_line
from .backends import Outcome, Result
from .events import EventFn, IndexEvent, no_events
from .plan import Job

log = logging.getLogger(__name__)

# Ray's driver ends its own process (exit 1, one line of Ray's on stderr) once the cluster's GCS has
# not answered for gcs_rpc_server_reconnect_timeout_s (60 s by default), so the run gives up on a
# silent GCS well before: long enough to ride out a GCS restart, short enough to say why itself.
GCS_GRACE = 15.0  # seconds
PROBE_EVERY = 1.0  # seconds between two looks at the GCS, and the longest wait between looks


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError("--backend ray needs Ray: pip install 'hmsearch[ray]' (on every node)") from None
    return ray


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an address nothing listens at (Ray itself retries for minutes)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BackendError(f"--ray-address {address!r} is not HOST:PORT (the head node's GCS, port 6379 by default)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise BackendError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}): start one with "
            "`ray start --head`, or check --ray-address"
        ) from None


class WhisperWorker:
    """One Ray actor: a Whisper model, loaded once, and the episodes it is handed."""

    def __init__(self, spec: TranscriberSpec, cpus: int = 1) -> None:
        import ray

        # Whisper on as many threads as CPUs Ray reserved (torch and CTranslate2 take every core of
        # the node otherwise: measured, two 1-CPU workers each ran 2 threads on a 2-core node)
        os.environ["OMP_NUM_THREADS"] = str(cpus)
        if engine_class(spec.engine).uses_torch:
            import torch

            torch.set_num_threads(cpus)
        self.transcriber = load_transcriber(spec)
        context = ray.get_runtime_context()
        self.where = f"node {ray.util.get_node_ip_address()} ({context.get_node_id()[:8]}), pid {os.getpid()}"
        try:
            self.transcriber.resolve()
            self.problem = ""
        except HmsearchError as exc:
            self.problem = str(exc)

    def ready(self) -> tuple[str, str, str]:
        """(transcriber key, where, why it cannot work or "")."""
        return (self.transcriber.cache_key() if not self.problem else "", self.where, self.problem)

    def transcribe(self, audio: str | bytes, name: str, suffix: str) -> tuple[Outcome, str, float]:
        """(transcript or why not, where, seconds it took here)."""
        start = time.perf_counter()
        outcome, where = self._transcribe(audio, name, suffix)
        return outcome, where, time.perf_counter() - start

    def _transcribe(self, audio: str | bytes, name: str, suffix: str) -> tuple[Outcome, str]:
        try:
            if isinstance(audio, bytes):
                with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
                    tmp.write(audio)
                    tmp.flush()
                    samples = decode_audio(Path(tmp.name))
            else:
                if not Path(audio).is_file():
                    return (
                        f"{name}: not found on {self.where} (give every node the same path, or set HMSEARCH_RAY_AUDIO=bytes)",
                        self.where,
                    )
                samples = decode_audio(Path(audio))
            return self.transcriber.transcribe(samples), self.where
        except HmsearchError as exc:
            return f"{name}: {exc}" if name not in str(exc) else str(exc), self.where


class RayBackend:
    name = "ray"

    def __init__(
        self,
        spec: TranscriberSpec,
        cache_dir: Path | None,
        *,
        workers: int | None,
        address: str | None,
        emit: EventFn | None = None,
    ) -> None:
        self.spec, self.cache_dir, self.workers, self.address = spec, cache_dir, workers, address
        self.emit = emit or no_events
        self._node: dict[Any, str] = {}  # actor -> its node id
        self.cpus = int(setting("ray_cpus_per_worker"))
        self.retries = int(setting("ray_retries"))
        self.timeout = float(setting("ray_start_timeout"))
        self.episode_timeout = float(setting("ray_episode_timeout"))
        self.audio_mode = str(setting("ray_audio"))
        self._actors: list[Any] = []
        self._actor_class: Any = None
        self._connected = False
        self._gcs: str | None = None  # the GCS's HOST:PORT, asked whether the cluster is still there
        self._label = address or "this machine"  # the cluster, as messages name it
        self._silent_since: float | None = None  # since when the GCS has not answered
        self._cluster_gone = False
        self._probed_at = 0.0
        self._committed = 0
        self._total = 0

    # ---- start -----------------------------------------------------------------------------
    def start(self) -> None:
        ray = _ray()
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        if address:
            check_reachable(address)
        try:
            ray.init(
                address=address,
                namespace="hmsearch",
                log_to_driver=False,
                logging_level=logging.WARNING,
                include_dashboard=False if address is None else None,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BackendError(f"cannot join the Ray cluster at {address or 'this machine'}: {one_line(exc)}") from None
        self._connected = True
        _quiet_ray_driver(ray)
        self._gcs = _gcs_address(ray)
        if address in (None, "auto", "local"):
            self._label = self._gcs or "this machine"
        else:
            self._label = address
        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        want = self.workers or max(1, cluster_cpus // self.cpus)
        self._actor_class = ray.remote(WhisperWorker).options(
            num_cpus=self.cpus, max_restarts=0, max_concurrency=1, scheduling_strategy="SPREAD"
        )
        self._actors = [self._actor_class.remote(self.spec, self.cpus) for _ in range(want)]
        mine = load_transcriber(self.spec).cache_key()
        try:
            answers = ray.get([a.ready.remote() for a in self._actors], timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise BackendError(
                f"{want} Whisper workers of {self.cpus} CPU did not all start within {self.timeout:.0f} s: the cluster "
                f"has {cluster_cpus} CPUs on {len(nodes)} nodes (add nodes, or ask for fewer --workers)"
            ) from None
        except ray.exceptions.RayError as exc:
            raise BackendError(f"a Whisper worker could not start: {_reason(exc)}") from None
        for actor, (key, where, problem) in zip(self._actors, answers, strict=True):
            self._node[actor] = _node_of(where)
            if problem:
                raise BackendError(f"the Whisper worker on {where} cannot transcribe: {problem}")
            if key != mine:
                raise BackendError(
                    f"the Whisper worker on {where} resolves the model to {key}, this machine to {mine}: "
                    "give every node the same models (or name the model, not auto)"
                )
        if self.audio_mode == "auto":
            here = ray.util.get_node_ip_address()
            self.audio_mode = "path" if all(n["NodeManagerAddress"] == here for n in nodes) else "bytes"
        log.info(
            "Ray: %d workers on %d nodes (%d CPUs), audio by %s",
            len(self._actors),
            len(nodes),
            cluster_cpus,
            self.audio_mode,
        )

    # ---- run -------------------------------------------------------------------------------
    def _payload(self, job: Job) -> Any:
        audio = job.source.audio
        assert audio is not None
        if self.audio_mode == "bytes":
            return _ray().put(audio.read_bytes())
        return str(audio.resolve())

    def run(self, jobs: Sequence[Job]) -> Iterator[Result]:
        ray = _ray()
        self._committed, self._total = 0, len(jobs)
        window = 2 * len(self._actors)
        pending: deque[int] = deque(range(len(jobs)))
        tries = [0] * len(jobs)
        free = list(self._actors)
        starting: dict[Any, tuple[Any, float]] = {}  # ready() ref -> (replacement actor, when it was asked for)
        running: dict[Any, tuple[int, Any]] = {}  # transcribe() ref -> (job number, actor)
        done: dict[int, tuple[Outcome, str, dict[str, float]]] = {}
        sent: dict[int, float] = {}
        avoid: dict[int, str] = {}  # job -> the node its worker died on: retried elsewhere when it can be
        nxt = 0
        while nxt < len(jobs):
            self._check_cluster()
            while free and pending and pending[0] < nxt + window and self._silent_since is None:
                i = pending.popleft()
                actor = next((a for a in free if self._node.get(a) != avoid.get(i)), free[0])
                free.remove(actor)
                job = jobs[i]
                tries[i] += 1
                sent[i] = time.perf_counter()
                try:
                    ref = actor.transcribe.remote(self._payload(job), job.source.name, job.source.audio.suffix)  # type: ignore[union-attr]
                except (ray.exceptions.RayError, ConnectionError, OSError) as exc:
                    raise self._gone(_reason(exc)) from None
                running[ref] = (i, actor)
            while nxt in done:
                outcome, where, times = done.pop(nxt)
                # the writer commits a transcript before it asks for the next one
                self._committed += not isinstance(outcome, str)
                yield Result(jobs[nxt], outcome, where, times)
                nxt += 1
            if nxt >= len(jobs):
                break
            ready = []
            if running or starting:
                # until the first running episode is overdue (a stopped, not dead, worker never returns)
                due = min((sent[i] + self.episode_timeout for i, _ in running.values()), default=None)
                wait_for = self.timeout if due is None else max(0.1, due - time.perf_counter())
                try:
                    # in short steps, to look at the GCS between them
                    ready, _ = ray.wait([*running, *starting], num_returns=1, timeout=min(wait_for, PROBE_EVERY))
                except (ray.exceptions.RayError, ConnectionError, OSError) as exc:
                    raise self._gone(_reason(exc)) from None
                overdue = [
                    ref for ref, (i, _) in running.items() if time.perf_counter() >= sent[i] + self.episode_timeout
                ]
                if not ready and overdue:
                    for ref in overdue:
                        i, actor = running.pop(ref)
                        avoid[i] = self._node.get(actor, "")
                        self._replace(actor, starting, kill=True)  # the hung worker
                        if tries[i] > self.retries:
                            done[i] = (
                                f"{jobs[i].source.name}: its Ray worker hung {tries[i]} times "
                                f"(no answer in {self.episode_timeout:.0f} s; setting ray_episode_timeout)",
                                "",
                                {},
                            )
                        else:
                            pending.appendleft(i)
                        self.emit(
                            IndexEvent(
                                "notice",
                                jobs[i].source.id,
                                f"the Ray worker transcribing {jobs[i].source.name} gave no answer in "
                                f"{self.episode_timeout:.0f} s: stopped it"
                                + (", trying again on another worker" if tries[i] <= self.retries else ", giving up"),
                            )
                        )
                    continue
                if not ready and (running or any(time.perf_counter() < t + self.timeout for _, t in starting.values())):
                    continue  # episodes are still being heard, or replacements may still start
            if not ready:  # no worker left, or only replacements that did not start in time
                self._check_cluster(now=True)  # the cluster itself gone: exit 7, not failed items
                for i in pending:
                    done[i] = (
                        f"{jobs[i].source.name}: no Ray worker could be started to transcribe it",
                        "",
                        {},
                    )
                pending.clear()
                for ref in list(starting):
                    ray.kill(starting.pop(ref)[0])
                continue
            for ref in ready:
                if ref in starting:
                    actor, _ = starting.pop(ref)
                    try:
                        self._node[actor] = _node_of(ray.get(ref)[1])
                        free.append(actor)
                    except ray.exceptions.RayError as exc:
                        log.warning("a replacement Ray worker did not start: %s", _reason(exc))
                    continue
                i, actor = running.pop(ref)
                try:
                    outcome, where, seconds = ray.get(ref)
                    roundtrip = time.perf_counter() - sent[i]
                    done[i] = (outcome, where, {"worker_transcribe": seconds, "ray_overhead": roundtrip - seconds})
                    free.append(actor)
                except (
                    ray.exceptions.RayActorError,
                    ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError,
                    ray.exceptions.OutOfMemoryError,
                ) as exc:
                    reason = _reason(exc)
                    if not self._gcs_answers():  # the whole cluster going, not this worker: no retry
                        self._silent_since = self._silent_since or time.monotonic()
                        tries[i] -= 1
                        pending.appendleft(i)
                        continue
                    avoid[i] = self._node.get(actor, "")
                    self._replace(actor, starting, kill=False)
                    if tries[i] > self.retries:
                        done[i] = (f"{jobs[i].source.name}: its Ray worker died {tries[i]} times ({reason})", "", {})
                    else:
                        pending.appendleft(i)
                    self.emit(
                        IndexEvent(
                            "notice",
                            jobs[i].source.id,
                            f"the Ray worker transcribing {jobs[i].source.name} on node {avoid[i][:8]} died ({reason}): "
                            + (
                                f"trying again on another worker ({tries[i] + 1} of {self.retries + 1})"
                                if tries[i] <= self.retries
                                else "giving up on it"
                            ),
                        )
                    )
                except ray.exceptions.RayTaskError as exc:  # a bug in the worker: one failed item
                    done[i] = (f"{jobs[i].source.name}: the Ray worker failed: {_reason(exc)}", "", {})
                    free.append(actor)

    def _replace(self, dead: Any, starting: dict[Any, tuple[Any, float]], *, kill: bool) -> None:
        """Start a worker in place of ``dead``; ``kill`` it first when it is hung, not dead (killing
        waits for the GCS's answer: a dead worker may be the first sign of a cluster going away)."""
        if kill:
            try:
                _ray().kill(dead, no_restart=True)
            except Exception:  # noqa: BLE001  already gone
                pass
        if dead in self._actors:
            self._actors.remove(dead)
        self._node.pop(dead, None)
        actor = self._actor_class.remote(self.spec, self.cpus)
        self._actors.append(actor)
        starting[actor.ready.remote()] = (actor, time.perf_counter())

    # ---- a cluster that goes away ----------------------------------------------------------
    def _gcs_answers(self) -> bool:
        """Whether the cluster's GCS takes a connection (Ray Client has none to ask: yes)."""
        self._probed_at = time.monotonic()
        if not self._gcs:
            return True
        host, _, port = self._gcs.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_EVERY).close()
        except (OSError, ValueError):
            return False
        return True

    def _check_cluster(self, *, now: bool = False) -> None:
        """Raise the one-line BackendError once the GCS has been silent for GCS_GRACE (with ``now``,
        as soon as it is silent; then also when no node is left)."""
        if not now and time.monotonic() - self._probed_at < PROBE_EVERY:
            return
        if self._gcs_answers():
            self._silent_since = None
        else:
            self._silent_since = self._silent_since or time.monotonic()
            silent = time.monotonic() - self._silent_since
            if now or silent >= GCS_GRACE:
                gcs = "its GCS" if self._gcs == self._label else f"its GCS at {self._gcs}"
                raise self._gone(f"{gcs} gives no answer" + (f" for {silent:.0f} s" if silent >= 1 else ""))
            return
        if now:
            try:
                alive = [n for n in _ray().nodes() if n.get("Alive")]
            except Exception as exc:  # noqa: BLE001  any failure to ask is the cluster gone
                raise self._gone(_reason(exc)) from None
            if not alive:
                raise self._gone("no node is left")

    def _gone(self, why: str) -> BackendError:
        self._cluster_gone = True
        return BackendError(
            f"the Ray cluster at {self._label} went away mid-run ({why}): {self._committed} of {self._total} "
            "episodes to transcribe committed; start it again and rerun the same command to continue"
        )

    def close(self) -> None:
        if not self._connected:
            return
        ray = _ray()
        for actor in self._actors if not self._cluster_gone else []:  # with no GCS to answer, no kill
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001  already gone
                pass
        self._actors.clear()
        ray.shutdown()
        self._connected = False


def _quiet_ray_driver(ray: Any) -> None:
    """Ray's driver prints what its raylets report (a dead worker's multi-line post-mortem, with
    colour codes) to stdout, where it would break ``--json``. It goes to hmsearch's log instead
    (``-v``); the run itself says what happened to the episode."""
    worker_module = getattr(getattr(ray, "_private", None), "worker", None)
    if worker_module is None or not hasattr(worker_module, "print_to_stdstream"):
        return

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines", []):
            log.info("ray (%s): %s", data.get("pid", ""), line)

    worker_module.print_to_stdstream = to_log


def _gcs_address(ray: Any) -> str | None:
    """HOST:PORT of the connected cluster's GCS (None under Ray Client, which has its own errors)."""
    try:
        address = ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001  not every kind of connection has one
        return None
    return str(address) if address else None


def _node_of(where: str) -> str:
    """The node id in a worker's ``where`` ("node 10.0.0.5 (1a2b3c4d), pid 123")."""
    return where.split("(", 1)[1].split(")", 1)[0] if "(" in where else where


def _reason(exc: BaseException) -> str:
    """One line for a Ray error: its cause's type and message, not Ray's multi-line dump."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = [t.strip() for t in str(exc).splitlines()]
    first = next((t for t in lines if t and not t.startswith(("Traceback", "ray::"))), "")
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__
