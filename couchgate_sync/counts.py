"""What one sync cycle did, counted as it goes (``live`` and ``cli`` report it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counts:
    uploaded: int = 0
    downloaded: int = 0
    local_changes: int = 0
    written: int = 0
    removed: int = 0
    moved: int = 0
    resolved: int = 0
    waiting: int = 0  # documents the server refused (its quota): not synced (see failures)
    failed: list[str] = field(default_factory=list)

    def any(self) -> bool:
        return bool(
            self.uploaded
            or self.downloaded
            or self.local_changes
            or self.written
            or self.removed
            or self.moved
            or self.resolved
        )
