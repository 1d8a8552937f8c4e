"""A one-line progress bar of chunks on standard error (or a callback)."""

from __future__ import annotations

import sys
import time


class ChunkProgress:
    """A one-line progress bar on standard error (or a callback ``progress(done, total)``)."""

    def __init__(self, total: int, done: int, mode):
        self.total, self.done, self.mode, self.t0 = total, done, mode, time.perf_counter()
        self.start = done
        self._show()

    def __call__(self, k: int) -> None:
        self.done += k
        self._show()

    def _show(self) -> None:
        if callable(self.mode):
            self.mode(self.done, self.total)
            return
        if not self.mode or self.total == 0:
            return
        frac = self.done / self.total
        run = self.done - self.start
        dt = time.perf_counter() - self.t0
        eta = f"{dt / run * (self.total - self.done):4.0f} s" if run else "   ? s"
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r  [{bar:<30}] {self.done}/{self.total} chunks, {dt:5.0f} s, ETA {eta}")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
