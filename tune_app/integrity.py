"""The trust boundary: no pickle is read from a results folder unless this user's key signed it.

Ray Tune restores an experiment by unpickling files of the results folder (tuner.pkl, the
experiment state, searcher and callback state, params.pkl, error.pkl) and tune_app's workers
load checkpoints from it. Anyone who can write to a shared --storage could plant such a file.
So every file of that kind carries an HMAC-SHA256 under a per-user secret, and is read only
if one of its recorded HMACs matches.

How the signatures get there: Ray does all its storage I/O through the pyarrow filesystem
given as `RunConfig(storage_filesystem=...)` / `Tuner.restore(storage_filesystem=...)`
(public API). `signing_filesystem` wraps the real one: a write of a protected file is signed
from the exact bytes before they are written (signature first, then the data, each replaced
atomically), a read is verified before Ray sees a byte. No Ray function is patched.

The manifest is one entry file per protected file, `NAME.sig` beside it, holding the
HMACs of its current and previous contents: a file has one writer (the driver for the
experiment state, the trial's worker for a checkpoint, possibly on another node), so
per-file entries need no cross-process locking, and keeping the previous HMAC means a
SIGKILL between writing the entry and replacing the data leaves a file that still verifies.
An HMAC covers the path inside the experiment folder and the contents, so an entry cannot
be forged, or moved to another file, without the key.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
import uuid
from pathlib import Path, PurePosixPath
from typing import Iterator

import pyarrow
import pyarrow.fs

from tune_app.errors import UsageError

SECRET_ENV = "TUNE_APP_SECRET_FILE"
SIG_SUFFIX = ".sig"
TMP_MARK = ".tune_app-tmp-"
# The entry keeps the previous HMAC too: a kill after the entry is replaced but before the
# data is leaves the old data, which must still verify. Writes of one file never overlap
# (one writer, under a lock), so one previous HMAC is enough; more would widen the window in
# which older genuine contents could be put back.
KEEP_MACS = 2
_DOMAIN = b"tune_app-integrity-v1\0"

# Files Ray or tune_app unpickles, relative to the experiment folder. Ray's
# basic-variant/search_gen state files are cloudpickles despite their .json names.
PROTECTED = ("*.pkl", "experiment_state-*.json", "basic-variant-state-*.json",
             "search_gen_state-*.json", "checkpoint_*/*", "*/checkpoint_*/*")


class IntegrityError(UsageError):
    """A protected file without a valid signature: never read, whatever else is wrong with it."""


def secret_path() -> Path:
    return Path(os.environ.get(SECRET_ENV) or Path.home() / ".config" / "tune_app" / "secret")


_KEYS: dict[Path, bytes] = {}
_KEY_LOCK = threading.Lock()


def load_key(create: bool = False) -> bytes:
    """The per-user secret. Created (mode 0600) only by a new search: a resume, or a worker on
    another node, without it must fail rather than sign with a fresh key."""
    path = secret_path()
    with _KEY_LOCK:
        if path in _KEYS:
            return _KEYS[path]
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: read theirs
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
        try:
            st = path.stat()
        except FileNotFoundError:
            raise UsageError("no tune_app secret file: this machine cannot check who wrote the experiment",
                             file=str(path), fix=f"copy the secret file of the machine that ran the search "
                             f"here (mode 0600), or point {SECRET_ENV} at it") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(f"secret file is readable or writable by others (mode {stat.S_IMODE(st.st_mode):o})",
                             file=str(path), fix=f"chmod 600 {path}")
        if st.st_uid != os.getuid():
            raise UsageError("secret file belongs to another user", file=str(path),
                             fix="use a secret file of your own")
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise UsageError("secret file is too short to be a key (at least 32 bytes)", file=str(path),
                             fix="delete it and start a new search, which creates one")
        _KEYS[path] = key
        return key


def is_protected(relpath: str) -> bool:
    name = PurePosixPath(relpath).name
    if name.endswith(SIG_SUFFIX) or TMP_MARK in name:
        return False
    return any(fnmatch.fnmatchcase(relpath, pattern) for pattern in PROTECTED)


def sign(key: bytes, relpath: str, data: bytes) -> str:
    message = _DOMAIN + relpath.encode() + b"\0" + hashlib.sha256(data).digest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(key: bytes, relpath: str, data: bytes, macs: list[str]) -> bool:
    expected = sign(key, relpath, data)
    return any(hmac.compare_digest(expected, m) for m in macs if isinstance(m, str))


def parse_entry(raw: bytes) -> list[str]:
    """The HMACs of a `.sig` entry; a damaged entry is an empty one (it verifies nothing)."""
    try:
        macs = json.loads(raw).get("hmac_sha256", [])
    except (ValueError, AttributeError):
        return []
    return [m for m in macs if isinstance(m, str)] if isinstance(macs, list) else []


def entry_bytes(macs: list[str]) -> bytes:
    return json.dumps({"hmac_sha256": macs[:KEEP_MACS]}).encode()


# --------------------------------------------------------------------------- filesystem


def _read_all(fs: pyarrow.fs.FileSystem, path: str) -> bytes | None:
    try:
        with fs.open_input_stream(path) as f:
            return f.readall()
    except FileNotFoundError:
        return None


def _write_atomic(fs: pyarrow.fs.FileSystem, path: str, data: bytes) -> None:
    tmp = f"{path}{TMP_MARK}{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, path)  # a rename on a local disk: never a torn file


class SigningHandler(pyarrow.fs.FileSystemHandler):
    """`base` with the protected files under `root` (the storage folder holding experiment
    folders) signed on write and verified on read. Pickled to Ray's workers without the key:
    each process reads the secret file of its own node."""

    def __init__(self, base: pyarrow.fs.FileSystem, root: str) -> None:
        self.base = base
        self.root = root.rstrip("/")
        self._lock = threading.Lock()

    def __reduce__(self):
        return SigningHandler, (self.base, self.root)

    def __eq__(self, other) -> bool:
        return isinstance(other, SigningHandler) and other.base.equals(self.base) and other.root == self.root

    def __ne__(self, other) -> bool:
        return not self == other

    def relpath(self, path: str) -> str | None:
        """The path inside its experiment folder, if it is a protected file there."""
        path = path.rstrip("/")
        if not path.startswith(self.root + "/"):
            return None
        parts = path[len(self.root) + 1:].split("/", 1)  # [experiment, rest]
        if len(parts) < 2 or not is_protected(parts[1]):
            return None
        return parts[1]

    # -- the two places the boundary is enforced

    def write_signed(self, path: str, relpath: str, data: bytes) -> None:
        key = load_key()
        with self._lock:
            old = parse_entry(_read_all(self.base, path + SIG_SUFFIX) or b"{}")
            _write_atomic(self.base, path + SIG_SUFFIX, entry_bytes([sign(key, relpath, data), *old]))
            _write_atomic(self.base, path, data)

    def read_verified(self, path: str, relpath: str) -> bytes:
        data = _read_all(self.base, path)
        if data is None:
            raise FileNotFoundError(path)
        check(load_key(), relpath, data, _read_all(self.base, path + SIG_SUFFIX), path)
        return data

    # -- pyarrow's FileSystemHandler

    def get_type_name(self) -> str:
        return f"tune_app-signed-{self.base.type_name}"

    def normalize_path(self, path):
        return self.base.normalize_path(path)

    def get_file_info(self, paths):
        return self.base.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.base.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.base.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self.base.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.base.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        self.base.delete_dir_contents("/", accept_root_dir=True)

    def delete_file(self, path):
        self.base.delete_file(path)
        if self.relpath(path) is not None and _exists(self.base, path + SIG_SUFFIX):
            self.base.delete_file(path + SIG_SUFFIX)

    def copy_file(self, src, dest):
        if self.relpath(src) is None and self.relpath(dest) is None:
            self.base.copy_file(src, dest)
            return
        with self.open_input_stream(src) as f:  # verified if protected
            data = f.readall()
        with self.open_output_stream(dest, None) as f:  # signed if protected
            f.write(data)

    def move(self, src, dest):
        if self.relpath(src) is None and self.relpath(dest) is None:
            self.base.move(src, dest)
            return
        self.copy_file(src, dest)
        self.delete_file(src)

    def open_input_stream(self, path):
        relpath = self.relpath(path)
        if relpath is None:
            return self.base.open_input_stream(path)
        return pyarrow.BufferReader(self.read_verified(path, relpath))

    def open_input_file(self, path):
        relpath = self.relpath(path)
        if relpath is None:
            return self.base.open_input_file(path)
        return pyarrow.BufferReader(self.read_verified(path, relpath))

    def open_output_stream(self, path, metadata):
        relpath = self.relpath(path)
        if relpath is None:
            return self.base.open_output_stream(path, metadata=metadata)
        return pyarrow.PythonFile(_SignOnClose(self, path, relpath), mode="w")

    def open_append_stream(self, path, metadata):
        if self.relpath(path) is not None:
            raise OSError(f"{path}: a signed file is written whole, never appended to")
        return self.base.open_append_stream(path, metadata=metadata)


class _SignOnClose:
    """Collects what Ray writes; signs and writes it when the stream is closed."""

    def __init__(self, handler: SigningHandler, path: str, relpath: str) -> None:
        self.handler, self.path, self.relpath = handler, path, relpath
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return sum(map(len, self.chunks))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.handler.write_signed(self.path, self.relpath, b"".join(self.chunks))


def _exists(fs: pyarrow.fs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def signing_filesystem(base: pyarrow.fs.FileSystem, root: str) -> pyarrow.fs.PyFileSystem:
    return pyarrow.fs.PyFileSystem(SigningHandler(base, root))


# --------------------------------------------------------------------------- checks


def check(key: bytes, relpath: str, data: bytes, entry: bytes | None, shown: str) -> None:
    """Raise UsageError naming `shown` unless `data` carries a valid signature."""
    if entry is None:
        raise IntegrityError("not signed by this user's tune_app key: refusing to unpickle it", file=shown,
                         fix="resume only experiments you ran, or move the file out of the folder if you "
                         "know where it came from")
    if not verify(key, relpath, data, parse_entry(entry)):
        raise IntegrityError("changed since tune_app wrote it (signature mismatch): refusing to unpickle it",
                         file=shown, fix="restore the file from a backup, or move it out of the folder and "
                         "resume from an earlier checkpoint")


def protected_files(fs: pyarrow.fs.FileSystem, experiment: str) -> Iterator[tuple[str, str]]:
    """(fs path, path inside the experiment) of every protected file of an experiment folder."""
    selector = pyarrow.fs.FileSelector(experiment, recursive=True, allow_not_found=True)
    infos = sorted(fs.get_file_info(selector), key=lambda i: i.path)
    for info in infos:
        if info.type != pyarrow.fs.FileType.File:
            continue
        relpath = info.path[len(experiment.rstrip("/")) + 1:]
        if is_protected(relpath):
            yield info.path, relpath


def verify_experiment(fs: pyarrow.fs.FileSystem, experiment: str, shown: str | None = None) -> None:
    """Every protected file of the experiment folder, checked before anything is unpickled.
    Reads only: a refusal leaves the folder exactly as it was."""
    key = load_key()
    for path, relpath in protected_files(fs, experiment):
        where = f"{shown.rstrip('/')}/{relpath}" if shown else path
        check(key, relpath, _read_all(fs, path) or b"", _read_all(fs, path + SIG_SUFFIX), where)
