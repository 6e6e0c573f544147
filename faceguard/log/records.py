"""What the log holds: one frozen dataclass per kind of record, each a JSON line in a spool.

Every record is append-only: a later fact is a new record (an alert is acknowledged by an
``AlertAck``, a second review of an image supersedes the first in the queries), never an
update. Ids are uuid4 hex strings and timestamps timezone-aware UTC datetimes, both made by
default, so a record can be written the moment it is built.

On disk (one line of a spool file, see ``writer.py``) a record is its fields plus ``kind``::

    {"kind":"review","review_id":"9f0c...","ts":"2024-05-01T12:00:00.123456+00:00",...}

>>> r = ReviewRecord(image_id="ab12", reviewer="ann", model_version="v1.1.0-prod",
...                  verdict="correct", detection_index=0)
>>> record_from_json(r.to_json()) == r
True
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any, ClassVar


class Source(str, enum.Enum):
    """Where an image came from."""

    APP = "app"
    CLI = "cli"
    BATCH = "batch"
    EVAL = "eval"
    DEMO = "demo"


class Variant(str, enum.Enum):
    """The role the serving version played for this image."""

    STABLE = "stable"
    CANARY = "canary"
    SHADOW = "shadow"
    PINNED = "pinned"  # the caller asked for this version by name (CLI --model, the app's picker)


class Verdict(str, enum.Enum):
    """A reviewer's verdict on one detection, or a face the model missed."""

    CORRECT = "correct"
    FALSE_POSITIVE = "false_positive"
    MISSED = "missed"


class EventKind(str, enum.Enum):
    """Model-ops events."""

    SWITCH = "switch"
    CANARY_START = "canary_start"
    CANARY_STOP = "canary_stop"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    QUARANTINE = "quarantine"
    PRUNE = "prune"
    REVEAL = "reveal"
    ACK = "ack"


def new_id() -> str:
    """A fresh uuid4 as 32 hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the default of every record's ``ts``)."""
    return datetime.now(timezone.utc)


def _choice(enum_type: type[enum.Enum], name: str, value: Any) -> str:
    try:
        return enum_type(value).value
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None


def _utc(name: str, value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(timezone.utc)


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays (boxes straight from a detector) without importing numpy here
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to the log: {obj!r}")


def dumps(value: Any) -> str:
    """Compact JSON as stored in the log's text columns and spool lines."""
    return json.dumps(value, separators=(",", ":"), default=_json_default)


class _Record:
    """JSON round-trip shared by every record type."""

    KIND: ClassVar[str]
    ID_FIELD: ClassVar[str]

    def __post_init__(self) -> None:
        # Every record has ``ts``; a spool line carries it as ISO text, a caller as a datetime.
        object.__setattr__(self, "ts", _utc("ts", self.ts))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        data = dict(data)
        cls._check_kind(data.pop("kind", cls.KIND))
        return cls(**data)

    @classmethod
    def _check_kind(cls, kind: Any) -> None:
        if kind != cls.KIND:
            raise ValueError(f"expected a {cls.KIND!r} record, got {kind!r}")

    @classmethod
    def from_json(cls, text: str | bytes):
        return cls.from_dict(json.loads(text))

    @property
    def record_id(self) -> str:
        return getattr(self, self.ID_FIELD)


@dataclass(frozen=True, kw_only=True)
class ImageRecord(_Record):
    """One processed image: what was served, how long it took, what was found.

    ``input_sha256`` is a hash of the input bytes; pixels are never logged. ``boxes`` are
    ``{x, y, w, h, score}`` dicts in input-image pixels. ``status`` is ``"ok"`` or an error
    code (``InputError.code``, ``"detector_error"``...) with ``error`` the message.
    """

    KIND: ClassVar[str] = "image"
    ID_FIELD: ClassVar[str] = "image_id"

    image_id: str = field(default_factory=new_id)
    ts: datetime = field(default_factory=utcnow)
    input_sha256: str
    source: str
    model_version: str
    variant: str = Variant.STABLE.value
    num_faces: int = 0
    boxes: list[dict] = field(default_factory=list)
    processing_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    status: str = "ok"
    error: str | None = None
    flagged: bool = False
    flag_reason: str | None = None
    shadow_version: str | None = None
    shadow_boxes: list[dict] | None = None
    union_blur: bool = False
    review_path: str | None = None
    demo: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "source", _choice(Source, "source", self.source))
        object.__setattr__(self, "variant", _choice(Variant, "variant", self.variant))
        if self.num_faces < 0:
            raise ValueError(f"num_faces must be >= 0, got {self.num_faces}")
        if not self.status:
            raise ValueError("status must be 'ok' or an error code, got an empty string")
        if self.review_path is not None:
            object.__setattr__(self, "review_path", str(self.review_path))


@dataclass(frozen=True, kw_only=True)
class ReviewRecord(_Record):
    """A reviewer's verdict on one detection (``detection_index``), or a missed face (``box``)."""

    KIND: ClassVar[str] = "review"
    ID_FIELD: ClassVar[str] = "review_id"

    review_id: str = field(default_factory=new_id)
    ts: datetime = field(default_factory=utcnow)
    image_id: str
    reviewer: str
    model_version: str
    verdict: str
    detection_index: int | None = None
    box: dict | None = None
    demo: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "verdict", _choice(Verdict, "verdict", self.verdict))
        if self.verdict == Verdict.MISSED.value and self.box is None:
            raise ValueError("a 'missed' verdict needs the box of the missed face, got box=None")
        if self.verdict != Verdict.MISSED.value and self.detection_index is None:
            raise ValueError(f"a {self.verdict!r} verdict needs detection_index, got None")


@dataclass(frozen=True, kw_only=True)
class EventRecord(_Record):
    """A model-ops event: who did what to which versions, why, and on what evidence."""

    KIND: ClassVar[str] = "event"
    ID_FIELD: ClassVar[str] = "event_id"

    event_id: str = field(default_factory=new_id)
    ts: datetime = field(default_factory=utcnow)
    kind: str
    actor: str
    from_version: str | None = None
    to_version: str | None = None
    reason: str = ""
    evidence: dict = field(default_factory=dict)
    demo: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "kind", _choice(EventKind, "kind", self.kind))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["kind"] = self.KIND  # the record kind; the event's own kind travels as event_kind
        out["event_kind"] = self.kind
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EventRecord":
        data = dict(data)
        cls._check_kind(data.get("kind", cls.KIND))
        data["kind"] = data.pop("event_kind")
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class AlertRecord(_Record):
    """A guard rule fired."""

    KIND: ClassVar[str] = "alert"
    ID_FIELD: ClassVar[str] = "alert_id"

    alert_id: str = field(default_factory=new_id)
    ts: datetime = field(default_factory=utcnow)
    rule: str
    version: str | None = None
    message: str
    evidence: dict = field(default_factory=dict)
    demo: bool = False


@dataclass(frozen=True, kw_only=True)
class AlertAck(_Record):
    """Someone acknowledged an alert (a record of its own, so the log stays append-only)."""

    KIND: ClassVar[str] = "alert_ack"
    ID_FIELD: ClassVar[str] = "ack_id"

    alert_id: str
    ts: datetime = field(default_factory=utcnow)
    actor: str
    ack_id: str = field(default_factory=new_id)
    demo: bool = False


@dataclass(frozen=True, kw_only=True)
class ResourceSample(_Record):
    """CPU and resident memory of one engine process at one moment."""

    KIND: ClassVar[str] = "resource"
    ID_FIELD: ClassVar[str] = "sample_id"

    ts: datetime = field(default_factory=utcnow)
    pid: int
    source: str
    cpu_percent: float
    rss_mb: float
    sample_id: str = field(default_factory=new_id)
    demo: bool = False


@dataclass(frozen=True, kw_only=True)
class EvaluationRecord(_Record):
    """A version's result on a labelled data set; ``pr_curve`` rows are [recall, precision, threshold]."""

    KIND: ClassVar[str] = "evaluation"
    ID_FIELD: ClassVar[str] = "eval_id"

    eval_id: str = field(default_factory=new_id)
    ts: datetime = field(default_factory=utcnow)
    model_version: str
    dataset: str
    metrics: dict = field(default_factory=dict)
    pr_curve: list[list[float]] = field(default_factory=list)
    demo: bool = False


RECORD_TYPES: dict[str, type[_Record]] = {
    t.KIND: t
    for t in (ImageRecord, ReviewRecord, EventRecord, AlertRecord, AlertAck, ResourceSample, EvaluationRecord)
}

Record = ImageRecord | ReviewRecord | EventRecord | AlertRecord | AlertAck | ResourceSample | EvaluationRecord


def record_from_dict(data: dict[str, Any]) -> Record:
    """Rebuild any record from its ``to_dict()`` form (dispatching on ``kind``)."""
    kind = data.get("kind")
    if kind not in RECORD_TYPES:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_TYPES)}")
    return RECORD_TYPES[kind].from_dict(data)  # type: ignore[return-value]


def record_from_json(text: str | bytes) -> Record:
    """Rebuild any record from one spool line."""
    return record_from_dict(json.loads(text))
