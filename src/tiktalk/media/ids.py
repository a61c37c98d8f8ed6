"""Video id validation: an id becomes a file name and a URL query value, so it is checked."""

from __future__ import annotations

import re

from tiktalk.formats import VIDEO_ID_PATTERN

#: The one default (:data:`tiktalk.formats.VIDEO_ID_PATTERN`); config ``data.video_id_pattern``
#: overrides it for every stage.
DEFAULT_ID_PATTERN = VIDEO_ID_PATTERN


class InvalidVideoId(ValueError):
    """A video id that may not be used as a file name / query value."""


def validate_video_id(video_id: object, pattern: str = DEFAULT_ID_PATTERN) -> str:
    """Return ``video_id`` if it is a safe id, else raise :class:`InvalidVideoId` naming it.

    The pattern must match the whole id. Always rejected, whatever the pattern: non-strings,
    empty ids, ``/`` or ``\\``, ``..``, NUL and other control characters, leading ``-`` or ``.``.
    """
    if not isinstance(video_id, str):
        raise InvalidVideoId(f"video id must be a string, got {type(video_id).__name__}: {video_id!r}")
    if not video_id:
        raise InvalidVideoId("video id is empty")
    if "/" in video_id or "\\" in video_id:
        raise InvalidVideoId(f"video id {video_id!r} contains a path separator")
    if ".." in video_id:
        raise InvalidVideoId(f"video id {video_id!r} contains '..'")
    if any(ord(c) < 32 or ord(c) == 127 for c in video_id):
        raise InvalidVideoId(f"video id {video_id!r} contains a control character")
    if video_id[0] in "-.":
        raise InvalidVideoId(f"video id {video_id!r} starts with {video_id[0]!r}")
    if not re.fullmatch(pattern, video_id):
        raise InvalidVideoId(f"video id {video_id!r} does not match the id pattern {pattern!r}")
    return video_id
