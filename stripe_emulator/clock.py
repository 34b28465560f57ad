"""The emulator's notion of "now": wall-clock time plus an offset that tests can advance."""

import threading
import time


class Clock:
    def __init__(self):
        self._offset = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        return int(time.time()) + self._offset

    def advance(self, seconds: int) -> int:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += int(seconds)
        return self.now()

    @property
    def offset(self) -> int:
        return self._offset

    def reset(self, offset: int = 0) -> None:
        with self._lock:
            self._offset = int(offset)
