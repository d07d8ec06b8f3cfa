"""Progress per block: a live line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, block_id: str, cells: int, total: int, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if enabled is None else enabled
        self.block_id, self.cells, self.total = block_id, cells, total
        self.start = time.perf_counter()
        self.last_log = 0.0

    def update(self, cells_done: int, accepted: int, attempts: int, new_records: int, force: bool = False) -> None:
        now = time.perf_counter()
        elapsed = max(now - self.start, 1e-9)
        rate = new_records / elapsed
        accept = accepted / attempts if attempts else 0.0
        width = 24
        filled = int(width * accepted / self.total) if self.total else width
        line = (f"{self.block_id}: [{'#' * filled}{'.' * (width - filled)}] {accepted}/{self.total} records, "
                f"cells {cells_done}/{self.cells}, {rate:.2f} rec/s, acceptance {accept:.0%}")
        if self.tty:
            self.stream.write("\r" + line + " " * 4)
            if force:
                self.stream.write("\n")
            self.stream.flush()
        elif force or now - self.last_log >= 10:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_log = now
