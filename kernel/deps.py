"""Annotations for route handlers: ``kernel: KernelDep`` and ``user: CurrentUser``.

The kernel provides both as dependencies on every app; marking them explicitly keeps
Litestar from guessing (name-inferred dependencies are deprecated there).
"""

from typing import TypeAlias

from litestar.di import NamedDependency

from kernel.auth import User
from kernel.core import Kernel

KernelDep: TypeAlias = NamedDependency[Kernel]
CurrentUser: TypeAlias = NamedDependency[User]
