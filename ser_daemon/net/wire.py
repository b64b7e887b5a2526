"""One dataclass per JSON wire message, which both writes and reads it (pure).

Each message the daemon or a client sends as JSON (the WebSocket's ``hello``, ``state``,
``status``, ``mood``, ``event``; the ingest protocol's ``start``, ``started``, ``stop``) is a
frozen dataclass deriving from :class:`WireMessage`: its fields are the message's fields in
wire order, after ``type`` (and ``protocol`` where the message carries one).  ``to_json()``
writes the text that goes out; ``from_json()`` reads it back, so an app, a test or a second
server parses with the very definition that wrote it.  The layout of the text is fixed by the
class (compact for the daemon's messages, ``json.dumps``'s default spacing for the ingest
replies, as they always were); ``tests/unit/outputs/test_wire_messages.py`` holds every message
to ``ser_daemon/schema/messages.schema.json`` (the ingest ones are its ``ingest_*`` definitions)
and to the bytes it had before.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, Mapping, TypeVar

from ..bounded import loads_json

__all__ = ["MessageError", "WireMessage"]

M = TypeVar("M", bound="WireMessage")


class MessageError(ValueError):
    """Text that is not the message it should be: not JSON, another ``type``, a field missing."""


@dataclasses.dataclass(frozen=True)
class WireMessage:
    """Base of the wire messages (a dataclass with no fields of its own).

    Class attributes:
        TYPE: the ``type`` field's value.
        PROTOCOL: the ``protocol`` field's value, or None where the message has none.
        OMIT_NONE: fields left out of the text while they are None (the others are written
            as ``null``).
        COMPACT: written without spaces (``dumps``), else with ``json.dumps``'s default spacing.
    """

    TYPE: ClassVar[str] = ""
    PROTOCOL: ClassVar[int | None] = None
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()
    COMPACT: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        """The message as a JSON object, fields in wire order."""
        out: dict[str, Any] = {"type": self.TYPE}
        if self.PROTOCOL is not None:
            out["protocol"] = self.PROTOCOL
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.OMIT_NONE:
                continue
            out[f.name] = value
        return out

    def to_json(self) -> str:
        """The text that goes on the wire."""
        if self.COMPACT:
            return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
        """The message of a decoded JSON object; fields it does not know are ignored (a newer sender's).

        Raises:
            MessageError: another ``type`` or ``protocol``, or a field without a default missing.
        """
        cls.check_header(data)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                kwargs[f.name] = data[f.name]
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise MessageError(f"{cls.TYPE} message without {f.name!r}")
        return cls(**kwargs)

    @classmethod
    def check_header(cls, data: Mapping[str, Any]) -> None:
        """Raise :class:`MessageError` unless ``data`` is an object of this ``type`` (and ``protocol``)."""
        if not isinstance(data, Mapping) or data.get("type") != cls.TYPE:
            raise MessageError(f'expected a {{"type": "{cls.TYPE}", ...}} object')
        if cls.PROTOCOL is not None and data.get("protocol") != cls.PROTOCOL:
            raise MessageError(f"{cls.TYPE} message of protocol {data.get('protocol')!r}, not {cls.PROTOCOL}")

    @classmethod
    def from_json(cls: type[M], text: str | bytes) -> M:
        """The message of its wire text.

        Raises:
            MessageError: not JSON, or not this message (see :meth:`from_dict`).
        """
        try:
            data = loads_json(text)
        except ValueError:
            raise MessageError(f"a {cls.TYPE} message must be JSON") from None
        return cls.from_dict(data)
