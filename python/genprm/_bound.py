"""What every bound option / result struct of ``genprm._core`` has beyond its fields (C++
``bindings/bound.hpp`` gives each class keyword construction, a property per field, ``FIELDS``,
``to_dict()`` and ``from_dict()``): read access like a mapping (``r["steps"]``, ``keys()``,
``get()``, ``in``), equality, a repr of the fields that differ from their defaults, pickling."""
from __future__ import annotations

from typing import Any

from . import _core


def _getitem(self: Any, key: str) -> Any:
    d = self.to_dict()
    if key not in d:
        raise KeyError(key)
    return d[key]


def _get(self: Any, key: str, default: Any = None) -> Any:
    return self.to_dict().get(key, default)


def _short(v: Any) -> str:
    if isinstance(v, list) and len(v) > 4:
        return f"[{len(v)} items]"
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _repr(self: Any) -> str:
    d, default = self.to_dict(), type(self)().to_dict()
    parts = [f"{k}={_short(v)}" for k, v in d.items() if k not in default or default[k] != v]
    return f"{type(self).__name__}({', '.join(parts)})"


def _eq(self: Any, other: Any) -> bool:
    return type(self) is type(other) and self.to_dict() == other.to_dict()


def _rebuild(cls: type, d: dict) -> Any:
    return cls.from_dict(d)


def _reduce(self: Any) -> Any:
    return _rebuild, (type(self), self.to_dict())


for _name in dir(_core):
    _cls = getattr(_core, _name)
    if isinstance(_cls, type) and hasattr(_cls, "FIELDS") and hasattr(_cls, "to_dict"):
        _cls.__getitem__ = _getitem
        _cls.__contains__ = lambda self, key: key in self.to_dict()
        _cls.keys = lambda self: self.to_dict().keys()
        _cls.get = _get
        _cls.__eq__ = _eq
        _cls.__hash__ = None
        _cls.__repr__ = _repr
        _cls.__reduce__ = _reduce
