"""A property computed on first use and kept on the instance, without a lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class memoized(Generic[T]):
    """functools.cached_property without its lock: Python 3.11's takes a lock on every first use (3.12 dropped it),
    and a 1,000-cell render makes thousands of first uses (each cell's name, facts, pins). The value is stored in
    the instance's __dict__, so a frozen dataclass can have one (its fields, equality and hash leave it out). Two
    threads may both compute it the first time: only for pure functions of the instance."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> memoized[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | memoized[T]:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value
