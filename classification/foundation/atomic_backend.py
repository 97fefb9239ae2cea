"""mmengine's ``atomic_local`` file backend (registered on import): checkpoints and their ``last_checkpoint`` pointer
written through :func:`classification.foundation.atomic.atomic_write`. Configs select it with
``backend_args=dict(backend='atomic_local')``; segmentation, detection and ``classification.register_all`` import it.
"""
from __future__ import annotations

from mmengine.fileio.backends import LocalBackend, register_backend

from classification.foundation.atomic import atomic_write_bytes


@register_backend("atomic_local")
class AtomicLocalBackend(LocalBackend):
    """Local files written atomically (:func:`~classification.foundation.atomic.atomic_write`): a killed save never
    leaves a truncated checkpoint or pointer file."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        self.put(obj.encode(encoding), filepath)
