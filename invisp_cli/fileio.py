"""Output safety: what invisp may write, and writing it atomically.

The guarantees (docs/safety.md):

* an input is never an output: the same path, the same file through a hard or symbolic link, or the same name on
  a case-insensitive file system is refused, ``--force`` or not;
* only regular files are ever replaced (never a folder, device, FIFO, socket or symbolic link), and only with
  ``--force``;
* every file is written to a temporary file beside its target and renamed onto it at the end, so a crash, a
  full disk or a signal leaves the target as it was; temporary files carry the writer's PID, and a later run
  removes those whose writer is gone; a SIGTERM at any moment, the temporary file's creation included, leaves
  none behind (its name is chosen, and its removal armed, before it exists);
* an input is a regular file: a FIFO, socket or device is refused at once (reading one could block forever).
* a folder output (video decode) is filled file by file the same way: nothing that was in the folder before is
  removed, and only same-named regular files that invisp wrote are replaced (with ``--force``)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import InputError, OutputError

PathLike = str | os.PathLike

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def check_input(path: PathLike) -> Path:
    """The input ``path`` as a Path if it is a regular file (or a link to one); otherwise InputError saying what it
    is: missing, a folder, a FIFO, socket or device (never opened: reading a FIFO would block), or unreadable."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or type(e).__name__})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{p}: is a folder; name a file")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise InputError(f"{p}: is {kind}, not a regular file; name a file")
    return p


def same_file(a: PathLike, b: PathLike) -> bool:
    """True if ``a`` and ``b`` name one file: the same inode (hard/symbolic links, case-insensitive names) or
    the same absolute path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def refuse_inputs(output: PathLike, inputs: Iterable[PathLike]) -> None:
    """Raise OutputError if ``output`` is one of ``inputs``."""
    for src in inputs:
        if same_file(output, src):
            raise OutputError(f"{output}: output is the input {src}; invisp never overwrites its input "
                              "(choose another output name)")


def check_output(path: PathLike, force: bool, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse an input as output, an existing output unless ``force``, anything but a regular file as the thing
    replaced, and a missing or unwritable directory."""
    p = Path(path)
    refuse_inputs(p, inputs)
    if os.path.isdir(p):  # os.path: False, not OSError, for a path past PATH_MAX (refused below)
        raise OutputError(f"{p}: output is a folder (name a file)")
    try:
        mode = os.lstat(p).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise OutputError(f"{p}: cannot inspect output ({e.strerror})") from None
    if mode is not None:
        if not stat.S_ISREG(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise OutputError(f"{p}: output exists and is {kind}; invisp only ever replaces regular files")
        if not force:
            raise OutputError(f"{p}: output exists (use --force to overwrite)")
    parent = p.parent if str(p.parent) else Path(".")
    if not os.path.isdir(parent):
        raise OutputError(f"{parent}: output directory does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{parent}: output directory is not writable")
    return p


#: the longest file name most file systems take (bytes)
NAME_MAX = 255


def _temp_name(target: Path) -> str:
    """``.<target name>.invisp-<pid>-<64 random bits>.part<suffix>``, the target's name shortened where the whole
    would pass NAME_MAX (a RAW named with 240 bytes still gets its JPEG)."""
    tail = f".invisp-{os.getpid()}-{secrets.token_hex(8)}.part{target.suffix}"
    name = target.name
    while name and len(os.fsencode(f".{name}{tail}")) > NAME_MAX:
        name = name[:-1]
    return f".{name or '_'}{tail}"


#: a killed run's temporary file: .<target name>.invisp-<pid>-<random>.part<suffix>
_STALE = re.compile(r"^\..+\.invisp-(\d+)-[^/]*\.part")
_swept: set[str] = set()


def remove_stale_temps(folder: Path) -> None:
    """Remove the temporary files that invisp runs which were killed (their PID is gone) left in ``folder``.

    Done once per folder per process, so a batch writing thousands of files into one folder lists it once."""
    key = os.path.abspath(folder)
    if key in _swept:
        return
    _swept.add(key)
    with contextlib.suppress(OSError):
        for entry in os.scandir(key):
            m = _STALE.match(entry.name)
            if m and not _alive(int(m.group(1))) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: this process's temporary files not yet renamed or removed (what a SIGTERM nobody else handles removes)
_live: set[Path] = set()


def _on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM in a process where nothing else handles it (a batch worker, a library caller): remove this process's
    temporary files, then end as the default action would."""
    for tmp in list(_live):
        with contextlib.suppress(OSError):
            tmp.unlink()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _arm_sigterm() -> None:
    """Install ``_on_sigterm`` where SIGTERM still has its default action (the CLI installs its own handler, which
    raises KeyboardInterrupt: the writers below then remove their temporary files themselves)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def write_error(target: PathLike, e: OSError) -> OutputError:
    """The one-line OutputError for a failed write of ``target`` (never naming the temporary file)."""
    return OutputError(f"{target}: cannot write output ({e.strerror or e or type(e).__name__})")


@contextlib.contextmanager
def atomic_output(path: PathLike, force: bool = False, inputs: Iterable[PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    On any exception (a full disk included: ``OutputError``; a signal at any moment, even while the temporary file
    is being created) the temporary file is removed and the target is left as it was."""
    inputs = list(inputs)
    target = check_output(path, force, inputs)
    folder = target.parent if str(target.parent) else Path(".")
    remove_stale_temps(folder)
    _arm_sigterm()
    # the name (this PID, 64 random bits) is fixed before the file exists, so the cleanup below covers its creation
    tmp_path = folder / _temp_name(target)
    _live.add(tmp_path)
    try:
        try:  # 0o666 less the umask, as for any new file (O_EXCL: never an existing file or link)
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666))
            yield tmp_path
        except OSError as e:  # writing the output failed (disk full, quota, I/O, …): name the target, not the temp
            raise write_error(target, e) from None
        check_output(target, force, inputs)  # nothing changed under us while writing
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
    finally:
        _live.discard(tmp_path)


class OutputFolder:
    """A folder of outputs (the DNG frames of a video decode), written file by file with ``atomic_output``.

    The folder is created if missing (with normal permissions). A non-empty existing folder is written into only
    with ``force``, and then nothing in it is removed: a file of the same name is replaced only if it is a regular
    file invisp wrote (``wrote_by_invisp``). On failure, the files this run wrote are removed and a folder it created is
    removed if empty."""

    def __init__(self, path: PathLike, force: bool, inputs: Iterable[PathLike] = ()):
        self.path = Path(path)
        self.force = force
        self.inputs = list(inputs)
        if self.path.name in ("", ".", ".."):
            raise OutputError(f"{path}: name the output folder")
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.path}: output exists and is not a folder")
        refuse_inputs(self.path, self.inputs)
        parent = self.path.parent
        if not parent.is_dir():
            raise OutputError(f"{parent}: output directory does not exist")
        self.created = not self.path.exists()
        if not self.created and any(self.path.iterdir()) and not force:
            raise OutputError(f"{self.path}: output folder exists and is not empty (use --force to write into it; "
                              "nothing in it is removed)")
        if not self.created and not os.access(self.path, os.W_OK):
            raise OutputError(f"{self.path}: output folder is not writable")
        if self.created and not os.access(parent, os.W_OK):
            raise OutputError(f"{parent}: output directory is not writable")
        self.written: list[Path] = []

    def check(self, names: Iterable[str], wrote_by_invisp: Callable[[Path], bool]) -> None:
        """Before any work: refuse names that would replace an input, a non-invisp file, or (without force) any
        existing file."""
        for name in names:
            target = self.path / name
            refuse_inputs(target, self.inputs)
            if not (target.exists() or target.is_symlink()):
                continue
            if not self.force:
                raise OutputError(f"{target}: output exists (use --force to overwrite)")
            check_output(target, True)
            if not wrote_by_invisp(target):
                raise OutputError(f"{target}: exists and was not written by invisp; refusing to replace it")

    @contextlib.contextmanager
    def file(self, name: str) -> Iterator[Path]:
        """A temporary path for ``name`` inside the folder, renamed onto it on success."""
        if self.created and not self.path.exists():
            try:
                os.mkdir(self.path, 0o777)
            except OSError as e:
                raise write_error(self.path, e) from None
        with atomic_output(self.path / name, self.force, self.inputs) as tmp:
            yield tmp
        self.written.append(self.path / name)

    def abort(self) -> None:
        """Remove what this run wrote (only that), and the folder if this run created it and it is empty."""
        for p in self.written:
            with contextlib.suppress(OSError):
                p.unlink()
        if self.created:
            with contextlib.suppress(OSError):
                self.path.rmdir()
