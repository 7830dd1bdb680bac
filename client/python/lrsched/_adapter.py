"""What every remote scheduler adapter (lrsched.torch, lrsched.timm, lrsched.megatron) has
beside its framework's own methods: the session as last reported, and closing the Client it
created (not one it was given) by close() or at the end of a `with` block."""


class OwnedClientMixin:
    """Needs `self._session` (the last lrsched.values.Session), `self.client` and
    `self._owns_client` (True when the adapter created the client)."""

    @property
    def session(self):
        """The session as the last reply reported it (lrsched.values.Session)."""
        return self._session

    def close(self):
        """Closes the client if this object created it (the session stays on the server).
        Idempotent."""
        self._close_client()

    def _close_client(self):
        if self._owns_client and getattr(self, "client", None) is not None:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
