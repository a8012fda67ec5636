"""What the kill and fault proofs share: a thread that notes, from the moment the fault
starts, when each event about the victim was first seen."""

from __future__ import annotations

import threading
import time


class EventWatch:
    """Polls every `poll_s` once started; `back` is the event that ends `finish`'s wait."""

    back = ""
    poll_s = 0.1

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.events: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        """Begin polling."""
        self._thread.start()

    def started(self, at: float) -> None:
        """Note the kill or the fault; events are timed from here."""
        self.started_at = at

    def finish(self, wait_for_return: float) -> None:
        """Stop polling once the victim is back, or after the wait."""
        deadline = time.monotonic() + wait_for_return
        while self.started_at is not None and self.back not in self.events \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            if self.started_at is not None:
                self._observe(time.monotonic() - self.started_at)
            time.sleep(self.poll_s)

    def _observe(self, since: float) -> None:
        """Note what is seen `since` seconds after the start (events.setdefault)."""
        raise NotImplementedError
