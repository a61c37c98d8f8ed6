"""Data stage: the release adapter and the canonical dialogue / manifest tables."""

from tiktalk.data.build import (
    build_manifest,
    build_split,
    check_video_ids,
    manifest_from_ids,
    read_dialogues,
    read_manifest,
    shards_of,
    videos_of_shard,
    write_manifest,
)
from tiktalk.data.release import (
    DEFAULT_VIDEO_ID_PATTERN,
    ReleaseError,
    dialogue_id,
    load_release,
    release_schema,
)

__all__ = [
    "DEFAULT_VIDEO_ID_PATTERN", "ReleaseError", "build_manifest", "build_split",
    "check_video_ids", "dialogue_id", "load_release", "manifest_from_ids", "read_dialogues",
    "read_manifest", "release_schema", "shards_of", "videos_of_shard", "write_manifest",
]
