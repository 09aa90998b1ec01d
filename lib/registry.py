"""Backends that register themselves: disk templates and hypervisors.

A backend is a module of its kind's package (genet.storage, genet.hypervisor), or a sub-package
whose ``backend`` module holds it (genet.hypervisor.kvm). Its class names itself (``name =
"drbd"``) and joins its kind's registry when its module is imported; the first question about
names imports every module of the package once, so no list of backends is kept anywhere. Lists
of names, allowed values and the backends' parameter tables all come from here.
"""
from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self._classes: dict[str, type[T]] = {}
        self._loaded = False

    def add(self, cls: type[T]) -> type[T]:
        self._classes[cls.name] = cls
        return cls

    def remove(self, name: str) -> None:
        self._classes.pop(name, None)

    def _load(self) -> None:
        """Import every backend module once (two threads may both do it: imports are safe to
        repeat). Imported here, not at start-up: a command that names no backend pays nothing."""
        if self._loaded:
            return
        import importlib
        import pkgutil
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            name = f"{self.package}.{module.name}"
            importlib.import_module(f"{name}.backend" if module.ispkg else name)
        self._loaded = True

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(sorted(self._classes))

    def cls(self, name: str) -> type[T]:
        """The class of backend ``name``; LookupError naming the known ones."""
        self._load()
        try:
            return self._classes[name]
        except KeyError:
            raise LookupError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})") from None

    def classes(self) -> list[type[T]]:
        return [self._classes[name] for name in self.names()]
