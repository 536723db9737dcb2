"""``[plugins.uploads]`` in plugins.toml, validated at start-up."""

from __future__ import annotations

from typing import Annotated

import msgspec

GIB = 1024**3


class UploadSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Settings of the uploads plugin (every key is optional).

    ``max_bytes`` bounds the file of one upload (413 beyond it); the request around it
    may be a little larger (the form's other fields and the multipart framing). Left
    unset, the kernel's older ``[kernel] upload_max_bytes`` is honoured if an operator
    still has it, else 4 GiB.
    """

    max_bytes: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: the largest text field (``path``, ``library``): a folder path is at most PATH_MAX.
    max_field_bytes: Annotated[int, msgspec.Meta(ge=256, le=65536)] = 4096

    def file_limit(self, legacy: int | None) -> int:
        """The effective file limit: ours, else the kernel's legacy key, else 4 GiB."""
        return self.max_bytes or legacy or 4 * GIB
