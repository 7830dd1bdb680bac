"""What every remote scheduler adapter (lrsched.torch, lrsched.timm, lrsched.megatron) has
beside its framework's own methods: the session as last reported, and closing the Client it
created (not one it was given) by close() or at the end of a `with` block."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, TypeVar

if TYPE_CHECKING:  # no import cycle at run time
    from lrsched.client import Client
    from lrsched.values import Session

_Self = TypeVar("_Self", bound="OwnedClientMixin")


class OwnedClientMixin:
    """Needs `self._session` (the last lrsched.values.Session), `self.client` and
    `self._owns_client` (True when the adapter created the client)."""

    _session: Session
    _owns_client: bool
    client: Optional[Client]

    @property
    def session(self) -> Session:
        """The session as the last reply reported it (lrsched.values.Session)."""
        return self._session

    def close(self) -> None:
        """Closes the client if this object created it (the session stays on the server).
        Idempotent."""
        self._close_client()

    def _close_client(self):
        if self._owns_client and getattr(self, "client", None) is not None:
            self.client.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
