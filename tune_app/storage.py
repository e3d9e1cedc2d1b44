"""Where experiments live: a local folder, or a URI (s3://, gs://, file://...) that Ray Tune
writes through pyarrow. tune_app's own readers work on local files, so a URI experiment is
mirrored into a local cache (checkpoints left out: they are large and only Ray reads them) and
what tune_app writes is pushed back.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tune_app.errors import UsageError


def is_uri(location: str) -> bool:
    return "://" in location


class Location:
    """One folder of the results storage, local or remote, with a local working copy."""

    def __init__(self, location: str | os.PathLike):
        self.text = str(location)
        self.remote = is_uri(self.text)
        if self.remote:
            import pyarrow.fs

            # Here, not at the top: tune_app.data pulls in sklearn and datasets, which every
            # command with a local results folder would then pay for at start-up.
            from tune_app.data.cache import cache_root

            try:
                self.fs, self.root = pyarrow.fs.FileSystem.from_uri(self.text.rstrip("/"))
            except (pyarrow.ArrowInvalid, OSError) as err:
                raise UsageError(f"cannot open storage '{self.text}': {str(err).splitlines()[0][:160]}",
                                 key="--storage", fix="check the URI scheme and the credentials") from None
            digest = hashlib.sha1(self.text.encode()).hexdigest()[:10]
            self.local = cache_root(None) / "experiments" / f"{digest}-{Path(self.root).name}"
        else:
            self.local = Path(self.text).resolve()
            self.text = str(self.local)

    def __str__(self) -> str:
        return self.text

    @property
    def name(self) -> str:
        return self.local.name if not self.remote else Path(self.root).name

    def child(self, name: str) -> "Location":
        return Location(f"{self.text.rstrip('/')}/{name}")

    def exists(self) -> bool:
        if not self.remote:
            return self.local.exists()
        import pyarrow.fs

        return self.fs.get_file_info(self.root).type != pyarrow.fs.FileType.NotFound

    def mkdir(self) -> None:
        """Create the folder; raise FileExistsError if it is there (never reuse one)."""
        if self.exists():
            raise FileExistsError(self.text)
        if self.remote:
            self.fs.create_dir(self.root, recursive=True)
            self.local.mkdir(parents=True, exist_ok=True)  # a stale mirror of a deleted run may be there
        else:
            self.local.mkdir(parents=True)  # atomic: of two runs claiming one name, one fails

    def pull(self) -> Path:
        """Refresh the local copy (everything but checkpoints) and return its path."""
        if not self.remote:
            return self.local
        import pyarrow.fs

        selector = pyarrow.fs.FileSelector(self.root, recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            rel = os.path.relpath(info.path, self.root)
            if info.type != pyarrow.fs.FileType.File or any(p.startswith("checkpoint_") for p in Path(rel).parts):
                continue
            target = self.local / rel
            if target.is_file() and target.stat().st_size == info.size and target.stat().st_mtime_ns >= (info.mtime_ns or 0):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.fs.open_input_stream(info.path) as src, open(target, "wb") as dst:
                dst.write(src.read())
        return self.local

    def push(self, *relative: str) -> None:
        """Upload these files or folders of the local copy (no-op for a local folder)."""
        if not self.remote:
            return
        for rel in relative:
            source = self.local / rel
            files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
            for path in files:
                dest = f"{self.root}/{path.relative_to(self.local).as_posix()}"
                self.fs.create_dir(os.path.dirname(dest), recursive=True)
                with open(path, "rb") as src, self.fs.open_output_stream(dest) as dst:
                    dst.write(src.read())
