"""Image decoding: one encoded image (as `datasets` stores it) -> uint8 (3, H, W) at a fixed size.

Only used when the decode-once cache is cold; everything after reads the cached arrays.
"""

from __future__ import annotations

import io
import os
import queue
import sys
import threading
from collections import deque
from typing import Any, Callable, Iterable, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm

# Chunks of this many images go to one worker: large enough to amortise the hand-off,
# small enough that the progress bar moves and memory in flight stays bounded.
CHUNK = 64


def open_image(cell: Any) -> Image.Image:
    """A PIL image from a `datasets` Image cell: {"bytes", "path"}, a path, or a PIL image."""
    if isinstance(cell, Image.Image):
        return cell
    if isinstance(cell, dict):
        if cell.get("bytes") is not None:
            return Image.open(io.BytesIO(cell["bytes"]))
        if cell.get("path"):
            return Image.open(cell["path"])
        raise ValueError("image cell has neither bytes nor a path")
    if isinstance(cell, (str, os.PathLike)):
        return Image.open(cell)
    raise TypeError(f"cannot decode an image from {type(cell).__name__}")


def decode_image(cell: Any, size: tuple[int, int]) -> np.ndarray:
    """uint8 (3, H, W) RGB at `size` = (H, W): greyscale, CMYK, palette and RGBA become RGB."""
    image = open_image(cell)
    image = image.convert("RGB")
    height, width = size
    if image.size != (width, height):
        # A plain resize to the target shape (no crop), as the reference projects did:
        # a centre crop could cut off the bird.
        image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def image_size_of(cell: Any) -> tuple[int, int]:
    """(H, W) of an encoded image, read from its header only."""
    width, height = open_image(cell).size
    return height, width


class DecodeError(Exception):
    """Image `position` of the output (0-based) could not be decoded; `reason` is one line."""

    def __init__(self, position: int, reason: str):
        self.position, self.reason = position, reason
        super().__init__(f"image {position}: {reason}")


def _reason(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:160]


def _decode_chunk(cells: list[Any], size: tuple[int, int], out: np.ndarray, start: int,
                  stop: threading.Event) -> int:
    for offset, cell in enumerate(cells):
        if stop.is_set():  # checked per image: a 10,000 px JPEG alone takes about a second
            return offset
        try:
            out[start + offset] = decode_image(cell, size)
        except Exception as err:  # Pillow raises OSError, ValueError, DecompressionBombError...
            raise DecodeError(start + offset, _reason(err)) from err
    return len(cells)


def decode_workers() -> int:
    """Threads for decoding: the CPUs this process may use, capped where returns flatten."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


class _Pool:
    """Daemon threads decoding chunks in order of submission.

    Not a ThreadPoolExecutor: its threads are joined at exit, so after Ctrl-C the process
    went on decoding every queued chunk (over a minute for large images) before it ended.
    Here an interrupt sets `stop`, each thread quits after its current image, and exit
    does not wait for them.
    """

    def __init__(self, workers: int):
        self.stop = threading.Event()
        self.tasks: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"decode-{i}")
                        for i in range(workers)]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        while not self.stop.is_set():
            item = self.tasks.get()
            if item is None:
                return
            function, args, result = item
            try:
                result.put((function(*args, self.stop), None))
            except BaseException as err:  # handed to the main thread, which raises it
                result.put((0, err))

    def submit(self, function: Callable[..., int], *args: Any) -> queue.Queue:
        """A queue that receives (images decoded, exception or None) when the task is done."""
        result: queue.Queue = queue.Queue(maxsize=1)
        self.tasks.put((function, args, result))
        return result

    def close(self) -> None:
        self.stop.set()
        for _ in self.threads:
            self.tasks.put(None)


def _wait(result: queue.Queue) -> int:
    count, error = result.get()
    if error is not None:
        raise error
    return count


def decode_images(batches: Iterable[list[Any]], out: np.ndarray, size: tuple[int, int],
                  desc: str, workers: Optional[int] = None) -> None:
    """Decode a stream of cell batches into `out` (N, 3, H, W) in order, with a progress bar.

    Threads, not processes: Pillow releases the GIL while decoding and resizing, so threads
    scale on large JPEGs without pickling images or re-importing the caller's __main__
    (which spawned processes do, and which breaks inside Ray workers). Raises DecodeError
    naming the position of the first image that cannot be decoded.
    """
    workers = workers or decode_workers()
    # A bar on a terminal only: in logs and CI it is a stray stderr line, and a run that stops
    # on a bad image must print exactly one (its error), so a failed bar is also cleared.
    with tqdm(total=out.shape[0], desc=desc, unit="img", mininterval=1.0, disable=not sys.stderr.isatty()) as bar:
        try:
            _decode_into(batches, out, size, workers, bar)
        except BaseException:
            bar.leave = False
            raise


def _decode_into(batches: Iterable[list[Any]], out: np.ndarray, size: tuple[int, int], workers: int,
                 bar: tqdm) -> None:
    position = 0
    if workers == 1:
        never = threading.Event()
        for cells in batches:
            position += _decode_chunk(cells, size, out, position, never)
            bar.update(len(cells))
    else:
        pool = _Pool(workers)
        try:
            pending: deque = deque()
            for cells in batches:
                for first in range(0, len(cells), CHUNK):
                    chunk = cells[first:first + CHUNK]
                    pending.append(pool.submit(_decode_chunk, chunk, size, out, position))
                    position += len(chunk)
                    # Bound the encoded bytes held in memory to a few chunks per worker.
                    while len(pending) > 4 * workers:
                        bar.update(_wait(pending.popleft()))
            while pending:
                bar.update(_wait(pending.popleft()))
        finally:
            pool.close()  # on Ctrl-C too: the threads stop after their current image
    if position != out.shape[0]:
        raise RuntimeError(f"decoded {position} images into an array of {out.shape[0]}")
