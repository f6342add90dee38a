"""Batch mode: many RAW files (or JPEGs) in one process, models loaded once per worker.

    invisp encode PATH… -d OUTDIR [-r] [--jobs N | --scheduler tcp://HOST:PORT]
    invisp decode JPEG… -d OUTDIR [-r] [--jobs N | --scheduler tcp://HOST:PORT]

``build_tasks`` lists the work (folders walked, optionally recursively, their sub-folders mirrored under OUTDIR);
``run_batch`` skips what a previous run finished (manifest record, same input, same settings, same output size),
runs the rest with ``run_task`` — in this process (``--jobs 1``), in a pool of worker processes, or on a Dask
cluster — and appends one JSON line per file to the manifest. One bad file is one ``error`` record, never the
end of the batch. Nothing here imports torch: the workers do, through ``codec``."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .errors import InputError, InvispError, OutputError, UsageError
from .progress import console, progress_bar
from .rawfiles import RAW_SUFFIXES
from .settings import CONTAINERS
from .threads import cpu_count

MANIFEST_NAME = "invisp-manifest.jsonl"
OUTPUT_SUFFIX = {"encode": CONTAINERS["jpeg"].outputs[0], "decode": ".dng"}
#: settings that change an output's bytes: a file done with other values is done again
SETTINGS_KEYS = {"encode": ("model_id", "quality", "subsampling", "max_error", "look"), "decode": ()}


@dataclass(frozen=True)
class Task:
    """One file of a batch: ``op`` ("encode" or "decode") ``src`` into ``dst``; picklable for any worker."""

    op: str
    src: str
    dst: str
    options: dict = field(default_factory=dict)  # keyword arguments of codec.encode_file / decode_file
    threads: int = 1  # threads while running it (numpy tiles, torch)
    force: bool = False
    error: str = ""  # set when the task is refused before running (name collision, input = output)

    @property
    def settings(self) -> dict:
        return {k: self.options.get(k) for k in SETTINGS_KEYS[self.op]}


def _say(text: str) -> None:
    """One message line on stderr (never wrapped, no markup)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _files(folder: Path, suffixes: Collection[str], recursive: bool, exclude: Path) -> Iterator[tuple[Path, str]]:
    """(file, "") for the files in ``folder`` with one of ``suffixes`` (sorted; hidden ones and anything under
    ``exclude`` left out), and (path, why) for a folder that cannot be listed (a path longer than PATH_MAX,
    no permission, …): that one entry fails, the rest of the listing goes on."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        yield folder, f"cannot list this folder ({e.strerror or type(e).__name__})"
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        p = folder / entry.name
        try:
            is_dir = entry.is_dir()
            if is_dir and not (recursive and not entry.is_symlink() and p.resolve() != exclude):
                continue  # no symlink loops, never OUTDIR
            if not is_dir and not (p.suffix.lower() in suffixes and entry.is_file()):
                continue
        except OSError as e:
            yield p, f"cannot read ({e.strerror or type(e).__name__})"
            continue
        if is_dir:
            yield from _files(p, suffixes, recursive, exclude)
        else:
            yield p, ""


def build_tasks(op: str, inputs: Sequence[Path], out_dir: Path, *, recursive: bool = False,
                options: dict | None = None, threads: int = 1, force: bool = False) -> list[Task]:
    """One task per input file: files named map to ``OUTDIR/<stem>.jpg`` (``.dng`` on decode), files found in a
    folder to the same place under OUTDIR relative to that folder. Two inputs mapping to one output, or an output
    that is an input, are refused (a task carrying its ``error``) rather than written."""
    suffixes = RAW_SUFFIXES if op == "encode" else CONTAINERS["jpeg"].suffixes
    out_dir = out_dir.resolve()
    pairs: dict[Path, Path] = {}  # resolved input → output
    unreadable: dict[Path, str] = {}  # a folder that cannot be listed (or an entry that cannot be read) → why
    for p in map(Path, inputs):
        if os.path.isdir(p):  # False, not OSError, for a path past PATH_MAX: its task fails
            found = [(f, f.relative_to(p).parent, why) for f, why in _files(p, suffixes, recursive, out_dir)]
            if not found:
                _say(f"warning: no {'RAW' if op == 'encode' else 'JPEG'} files in {p}"
                     f"{'' if recursive else ' (use -r for sub-folders)'}")
        else:
            found = [(p, Path(), "")]  # a missing or unreadable file fails in its own task
        for f, rel, why in found:
            src = _resolved(f)
            pairs.setdefault(src, out_dir / rel / (f.stem + OUTPUT_SUFFIX[op]))
            if why:
                unreadable[src] = why
    if not pairs:
        raise InputError(f"nothing to {op} in {', '.join(map(str, inputs))}")
    by_output: dict[str, list[Path]] = {}
    for src, dst in pairs.items():
        by_output.setdefault(str(_resolved(dst)).casefold(), []).append(src)
    tasks = []
    for src, dst in pairs.items():
        clash = [s for s in by_output[str(_resolved(dst)).casefold()] if s != src]
        error = unreadable.get(src, "")
        if not error and _resolved(dst) in pairs:
            error = f"its output {dst} is an input of this batch; choose another -d"
        elif not error and clash:
            error = f"{', '.join(map(str, clash))} would also be written to {dst}; rename one or run them separately"
        tasks.append(Task(op, str(src), str(dst), dict(options or {}), threads, force, error))
    return tasks


def _resolved(p: Path) -> Path:
    """``p`` resolved, or as an absolute path where it cannot be (a path longer than PATH_MAX, a link loop)."""
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(p))


def check_scheduler(address: str) -> None:
    """Refuse a ``--scheduler`` that is not a Dask address (``tcp://HOST:PORT``, ``HOST:PORT``, ``tls://…``) before
    any work, in one line (UsageError). Needs Dask (``extras.check_batch`` says so first)."""
    from distributed.comm.addressing import get_address_host_port, normalize_address

    try:
        get_address_host_port(normalize_address(address))
    except (ValueError, TypeError) as e:
        raise UsageError(f"--scheduler {address!r}: not a Dask scheduler address, expected tcp://HOST:PORT "
                         f"({e})") from None


# ------------------------------------------------------------------------------------------------ one file


def _record(task: Task, status: str, *, seconds: float = 0.0, model: str | None = None,
            output_bytes: int | None = None, megapixels: float | None = None, error: str | None = None,
            warning: str | None = None) -> dict:
    """A manifest line (keys documented in docs/batch.md)."""
    try:
        st = os.stat(task.src)
        in_bytes, in_mtime = st.st_size, st.st_mtime_ns
    except OSError:
        in_bytes = in_mtime = None
    return {"op": task.op, "input": task.src, "output": task.dst, "status": status, "error": error,
            "input_bytes": in_bytes, "input_mtime_ns": in_mtime, "output_bytes": output_bytes,
            "megapixels": megapixels, "model": model, "settings": task.settings, "seconds": round(seconds, 3),
            "warning": warning or None, "host": socket.gethostname(),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _megapixels(jpeg_path: str) -> float:
    from PIL import Image

    with Image.open(jpeg_path) as img:
        return round(img.width * img.height / 1e6, 3)


def _valid_output(task: Task) -> str | None:
    """For an existing output: the model ID of an invisp JPEG whose metadata verifies, "" for a DNG invisp wrote
    (written atomically, so complete), None for anything else."""
    if task.op == "decode":
        from .rawio import is_invisp_dng

        return "" if is_invisp_dng(task.dst) else None
    from .containers import jpeg

    try:
        img, name = jpeg.open_jpeg(task.dst)
        return jpeg.read_params(img, name).model_id
    except InvispError:
        return None


def run_task(task: Task) -> dict:
    """Encode or decode one file and return its manifest record; never raises for a bad file.

    An existing output the manifest does not know (a crash between writing it and recording it) is kept when
    it is a valid invisp file (status ``skipped``); otherwise ``--force`` decides, as for a single file."""
    if task.error:
        return _record(task, "error", error=task.error)
    t0 = time.perf_counter()
    try:
        if not task.force and os.path.exists(task.dst) and (model := _valid_output(task)) is not None:
            mp = _megapixels(task.dst if task.op == "encode" else task.src)
            return _record(task, "skipped", model=model or None, output_bytes=os.path.getsize(task.dst),
                           megapixels=mp, warning="output existed without a manifest record; kept (valid)")
        from .codec import decode_file, encode_file
        from .threads import set_threads

        set_threads(task.threads)
        try:
            Path(task.dst).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{Path(task.dst).parent}: cannot create the output folder "
                              f"({e.strerror or type(e).__name__})") from None
        fn = encode_file if task.op == "encode" else decode_file
        r = fn(task.src, task.dst, force=task.force, **task.options)
        mp = _megapixels(task.dst if task.op == "encode" else task.src)
        return _record(task, "ok", seconds=time.perf_counter() - t0, model=r.model_id, output_bytes=r.bytes,
                       megapixels=mp, warning=getattr(r, "warning", ""))
    except InvispError as e:
        return _record(task, "error", seconds=time.perf_counter() - t0, error=str(e))
    except Exception as e:  # noqa: BLE001 - a bug on one file must not end the batch; recorded with its type
        return _record(task, "error", seconds=time.perf_counter() - t0,
                       error=f"internal error: {type(e).__name__}: {e}")


# ------------------------------------------------------------------------------------------------ manifest


def dumps(doc: object, **kwargs) -> str:
    """JSON text of ``doc`` that always encodes as UTF-8: non-ASCII as itself, but a file name that is not UTF-8
    (its undecodable bytes are lone surrogates in Python) escaped, "\\udcff", which reads back as the same name."""
    text = json.dumps(doc, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(doc, ensure_ascii=True, **kwargs)
    return text


def read_manifest(path: Path) -> dict[str, dict]:
    """The last record per output path. A line that is not one record — a torn last line from a crash, bytes
    that are not UTF-8, JSON nested too deep, another value — is ignored: it never stops a batch."""
    last: dict[str, dict] = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line.decode("utf-8"))
                    last[rec["output"]] = rec
                except (UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError, IndexError):
                    continue
    except FileNotFoundError:
        pass
    except OSError as e:
        raise OutputError(f"{path}: cannot read the manifest ({e.strerror or type(e).__name__})") from None
    return last


#: how every manifest begins: a record (json.dumps of ``_record``, whose first key is "op")
_MANIFEST_START = b'{"op": '


def check_manifest(path: Path, tasks: Sequence[Task]) -> None:
    """Refuse a manifest that would be appended to something else: an input of the batch, anything but a
    regular file (through a symbolic link too: its target counts), or an existing file that is not a manifest
    (a RAW, a JPEG, any other file: its first bytes are not a record). OutputError, before any work."""
    if str(_resolved(path)) in {t.src for t in tasks}:
        raise OutputError(f"{path}: the manifest is an input of this batch; name another file")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise OutputError(f"{path}: cannot use as the manifest ({e.strerror or type(e).__name__})") from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{path}: the manifest exists and is not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_MANIFEST_START))
    except OSError as e:
        raise OutputError(f"{path}: cannot read the manifest ({e.strerror or type(e).__name__})") from None
    if head and head != _MANIFEST_START:
        raise OutputError(f"{path}: exists and is not an invisp manifest; refusing to append to it "
                          "(name a new file with --manifest)")


def owns_output(task: Task, rec: dict | None) -> bool:
    """The output is one an earlier run wrote (or kept) and recorded, unchanged since (same size)."""
    if rec is None or rec.get("status") not in ("ok", "skipped"):
        return False
    try:
        return rec.get("output_bytes") == os.stat(task.dst).st_size
    except OSError:
        return False


def is_done(task: Task, rec: dict | None) -> bool:
    """Finished by an earlier run: its recorded output, from the same input file with the same settings."""
    if task.force or task.error or not owns_output(task, rec):
        return False
    try:
        src = os.stat(task.src)
    except OSError:
        return False
    return (rec.get("input") == task.src and rec.get("settings") == task.settings
            and rec.get("input_bytes") == src.st_size and rec.get("input_mtime_ns") == src.st_mtime_ns)


class Manifest:
    """Append-only JSON Lines: one ``os.write`` of one whole line per record (O_APPEND), so a crash leaves at most
    a torn last line, which ``read_manifest`` skips."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as e:
            raise OutputError(f"{path}: cannot write the manifest ({e.strerror or type(e).__name__})") from None

    def append(self, rec: dict) -> None:
        os.write(self._fd, (dumps(rec) + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)


# ------------------------------------------------------------------------------------------------ running


def check_out_dir(out_dir: Path) -> None:
    """Refuse an OUTDIR that is, or lies under, something other than a folder (``-d afile/sub``), or that cannot
    be looked up (a path past PATH_MAX): OutputError."""
    for parent in (out_dir, *out_dir.parents):
        try:
            mode = os.stat(parent).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # made below; an ancestor that is a file is found on the way up
        except OSError as e:
            why = e.strerror or type(e).__name__
            raise OutputError(f"{out_dir}: cannot use as the output folder ({why})") from None
        if not stat.S_ISDIR(mode):
            raise OutputError(f"{out_dir}: {parent} is a file, not a folder" if parent != out_dir
                              else f"{out_dir}: exists and is not a folder")
        return


@contextlib.contextmanager
def output_folder(out_dir: Path) -> Iterator[Path]:
    """OUTDIR, created if missing, held by this batch alone while it runs: a second batch into the same folder
    waits (saying so in one line) until the first ends, then finds the first's records, so neither takes the
    other's fresh outputs for files in its way. The lock is ``flock`` on the folder itself (nothing is added to
    it; the kernel releases it when the process ends, however it ends); where the file system has no such lock
    (some network file systems), batches are not serialised. OutputError if the folder cannot be made."""
    check_out_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(out_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create the output folder ({e.strerror or type(e).__name__})") from None
    try:
        _lock(fd, out_dir)
        yield out_dir
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, out_dir: Path) -> None:
    """Take the exclusive ``flock`` of the folder ``fd``, waiting (one line on stderr) while another batch holds it."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _say(f"waiting for the other invisp batch writing into {out_dir} to finish")
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # the file system has no flock on folders
        return


@dataclass
class Summary:
    """What a batch did (the ``--json`` output; keys documented in docs/batch.md)."""

    op: str
    files: int
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    megapixels: float = 0.0
    input_bytes: int = 0
    output_bytes: int = 0
    jobs: int = 1
    threads_per_job: int = 1
    scheduler: str | None = None
    manifest: str = ""
    interrupted: bool = False
    failures: list[dict] = field(default_factory=list)

    def add(self, rec: dict) -> None:
        if rec["status"] == "error":
            self.failed += 1
            self.failures.append({"input": rec["input"], "error": rec["error"]})
            return
        if rec["status"] == "ok":
            self.ok += 1
            self.megapixels += rec.get("megapixels") or 0.0
            self.input_bytes += rec.get("input_bytes") or 0
            self.output_bytes += rec.get("output_bytes") or 0
        else:
            self.skipped += 1

    def to_json(self) -> dict:
        d = asdict(self)
        minutes = max(self.seconds, 1e-9) / 60
        d.update(seconds=round(self.seconds, 3), megapixels=round(self.megapixels, 3),
                 files_per_minute=round(self.ok / minutes, 2),
                 megapixels_per_second=round(self.megapixels / max(self.seconds, 1e-9), 3))
        return d

    def line(self) -> str:
        j = self.to_json()
        return (f"{self.op}: {self.ok} ok, {self.skipped} skipped, {self.failed} failed of {self.files} files in "
                f"{self.seconds:.1f} s ({j['files_per_minute']} files/min, {j['megapixels_per_second']} MP/s); "
                f"manifest {self.manifest}")


def split_threads(jobs: int | None) -> tuple[int, int]:
    """(workers, threads per worker): all cores by default, never more threads than cores in total."""
    cores = cpu_count()
    jobs = jobs or cores
    return jobs, max(1, cores // jobs)


def _worker_init(env: dict[str, str]) -> None:
    """A pool worker: the parent's model registry; no progress bars of its own (the parent draws one); Ctrl-C is
    the parent's to handle (it stops handing out files; the worker finishes the one it has)."""
    os.environ.update(env)
    console.quiet = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _quiet_cancelled_race(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook`` while a pool runs: when its workers die (a SIGTERM to the process group) after
    Ctrl-C/SIGTERM cancelled the files not started, Python 3.11's pool manager thread raises InvalidStateError
    setting an error on those cancelled futures, a traceback on stderr; nothing is lost (they were cancelled),
    so it is not printed. Any other thread exception goes to the default hook."""
    manager = type(args.thread).__name__ == "_ExecutorManagerThread"
    if not (manager and issubclass(args.exc_type, cf.InvalidStateError)):
        threading.__excepthook__(args)


def _pool(jobs: int) -> cf.ProcessPoolExecutor:
    import multiprocessing

    threading.excepthook = _quiet_cancelled_race

    env = {k: v for k, v in os.environ.items() if k.startswith("INVISP_")}
    # spawn: a fresh interpreter per worker (forking a process that already runs torch threads can deadlock)
    return cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                                  initargs=(env,))


def _run_futures(executor: cf.Executor, tasks: Iterator[Task], window: int, fn: Callable[[Task], dict],
                 broken: list[Task]) -> Iterator[tuple[Task, dict]]:
    """Run tasks with at most ``window`` in flight (a million files are never all queued at once). When the executor
    breaks (a pool worker died), the tasks it held are put in ``broken`` and no more are taken from ``tasks``.
    On Ctrl-C the files not started are cancelled, those running are finished and recorded (a second Ctrl-C
    stops waiting for them), then KeyboardInterrupt goes on."""
    pending: dict[cf.Future, Task] = {}
    interrupted = False

    def fill() -> None:
        while not (broken or interrupted) and len(pending) < window and (t := next(tasks, None)) is not None:
            try:
                pending[executor.submit(fn, t)] = t
            except cf.BrokenExecutor:
                broken.append(t)

    fill()
    while pending:
        try:
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            for f in [f for f in pending if f.cancel()]:
                del pending[f]
            continue
        for f in done:
            t = pending.pop(f)
            try:
                rec = f.result()
            except cf.BrokenExecutor:
                broken.append(t)
                continue
            except Exception as e:  # noqa: BLE001 - e.g. a Dask worker lost more often than Dask retries
                rec = _record(t, "error", error=f"worker failed: {type(e).__name__}: {e}")
            yield t, rec
        fill()
    if interrupted:
        raise KeyboardInterrupt


def local_pool(tasks: list[Task], jobs: int, fn: Callable[[Task], dict] = run_task) -> Iterator[tuple[Task, dict]]:
    """Tasks on ``jobs`` worker processes. A worker that dies (a crash inside a decoder library, the kernel's OOM
    killer) breaks the pool: the files it held are then run again one by one, each in a fresh worker, so that
    only the file that kills its worker is recorded as failed, and the rest go on in a new pool."""
    queue = iter(tasks)
    while True:
        broken: list[Task] = []
        executor = _pool(jobs)
        try:
            yield from _run_futures(executor, queue, 2 * jobs, fn, broken)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        if not broken:
            return
        for t in broken:
            alone = _pool(1)
            try:
                rec = alone.submit(fn, t).result()
            except cf.BrokenExecutor:
                rec = _record(t, "error", error="the worker process died on this file (crash or out of memory)")
            finally:
                alone.shutdown(wait=False, cancel_futures=True)
            yield t, rec


def dask_cluster(tasks: list[Task], address: str) -> Iterator[tuple[Task, dict]]:
    """Tasks on a Dask distributed cluster (its scheduler's address), through its concurrent.futures executor;
    Dask itself re-runs a task whose worker was lost (``distributed.scheduler.allowed-failures`` times)."""
    try:
        from distributed import Client
    except ImportError:
        raise InvispError("--scheduler needs Dask: pip install 'invisp[dask]'") from None
    try:  # waits up to distributed.comm.timeouts.connect (Dask's configuration; 30 s by default)
        client = Client(address)
    except OSError as e:
        raise InvispError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        slots = max(1, sum(client.nthreads().values()))
        yield from _run_futures(client.get_executor(pure=False), iter(tasks), 2 * slots, run_task, [])
    finally:
        client.close()


def run_batch(tasks: list[Task], manifest_path: Path, *, jobs: int = 1, scheduler: str | None = None,
              verbose: bool = False) -> Summary:
    """Run ``tasks`` (skipping those done), print one line per file and a bar, append to the manifest."""
    records = read_manifest(manifest_path)
    todo, done = [], []
    for t in tasks:
        rec = records.get(t.dst)
        if is_done(t, rec):
            done.append(t)
        else:  # an output of ours from another input or other settings is replaced; any other is refused
            todo.append(replace(t, force=True) if owns_output(t, rec) and not t.error else t)
    summary = Summary(tasks[0].op if tasks else "", len(tasks), jobs=jobs, scheduler=scheduler,
                      threads_per_job=tasks[0].threads if tasks else 1, manifest=str(manifest_path))
    summary.skipped = len(done)
    if verbose:
        for t in done:
            _say(f"skip {t.src} (done: {t.dst})")
        where = f"Dask cluster {scheduler}" if scheduler else f"{jobs} worker(s) × {summary.threads_per_job} thread(s)"
        _say(f"{len(todo)} to do, {summary.skipped} done already; {where}")
    runnable = [t for t in todo if not t.error]  # refused tasks are recorded here, without a worker
    if runnable and scheduler:
        backend = dask_cluster(runnable, scheduler)
    elif jobs > 1 and len(runnable) > 1:
        backend = local_pool(runnable, min(jobs, len(runnable)))
    else:
        backend = ((t, run_task(t)) for t in runnable)
    results = itertools.chain(((t, run_task(t)) for t in todo if t.error), backend)
    manifest = Manifest(manifest_path)
    t0 = time.perf_counter()
    try:
        with progress_bar(f"{summary.op} {len(todo)} files", total=max(len(todo), 1), enabled=bool(todo)) as advance:
            for t, rec in results:
                manifest.append(rec)
                summary.add(rec)
                _print(t, rec, verbose)
                advance(1)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        summary.seconds = time.perf_counter() - t0
        backend.close()  # shuts the workers down (or leaves the Dask cluster)
        manifest.close()
    return summary


def _print(task: Task, rec: dict, verbose: bool) -> None:
    if rec["status"] == "error":
        _say(f"FAILED {task.src}: {rec['error']}")
        return
    if rec["status"] == "skipped" and not verbose:
        return
    mb = (rec["output_bytes"] or 0) / 1e6
    note = f"; warning: {rec['warning']}" if rec.get("warning") else ""
    _say(f"{rec['status']:>4} {task.src} → {task.dst}  [{rec['model']}, {mb:.2f} MB, {rec['seconds']:.1f} s]{note}")
