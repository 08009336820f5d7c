"""The one exception of the architecture package.

Every message has the same shape, ``<file>: <key.path>: <problem>; allowed: <...>``, so a user
can fix a YAML file from the message alone and the CLI can print it as one line.
"""

from __future__ import annotations


class ArchError(ValueError):
    """An architecture description is invalid.

    ``file`` is the YAML file (or ``<dict>``/``<ClassName>`` when built in Python), ``key`` the
    dotted key path, ``problem`` what is wrong and ``allowed`` what would be accepted.
    """

    def __init__(self, problem: str, *, key: str = "", allowed: str = "", file: str = "",
                 field: str = "") -> None:
        self.problem = problem
        self.key = key
        self.field = field or key  # key path relative to the object that raised
        self.allowed = allowed
        self.file = file
        parts = [p for p in (file, key) if p]
        msg = ": ".join([*parts, problem])
        if allowed:
            msg += f"; allowed: {allowed}"
        super().__init__(msg)

    def located(self, *, file: str, prefix: str = "") -> ArchError:
        """The same error re-anchored to a file and a key path (``prefix`` + own key)."""
        full = ".".join(p for p in (prefix, self.field) if p)
        return ArchError(self.problem, key=full, allowed=self.allowed, file=file)
