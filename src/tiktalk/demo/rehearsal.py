"""Data for the rehearsal (config/rehearsal.yaml): the demo's videos and mini C3KG, and its
dialogues as a release in the official layout WITHOUT a val split.

:func:`make_rehearsal_data` writes into ``out_dir``::

    release/train.json      the demo's train dialogues, plus every val dialogue as five train
                            dialogues sharing its context (one per reference): the "genuine
                            responses" the adapter carves val from (tiktalk.data.release.carve_val)
    release/test.json       the demo's test dialogues (5 references each)
    videos/<video_id>.mp4   every video (a local directory: media.source kind local_dir)
    c3kg.tsv                the mini C3KG table

Every video and dialogue of the release also carries fields the adapter does not read (a
title, a like count), as a real release would: the adapter counts them in its report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tiktalk.demo.generate import generate_demo
from tiktalk.io import read_json, write_json


def make_rehearsal_data(out_dir: str | Path, seed: int = 13, n_videos: dict | None = None,
                        dialogues_per_video: dict | None = None) -> dict:
    """Write the rehearsal's release, videos and C3KG into ``out_dir``; return a summary."""
    out = Path(out_dir)
    demo = out / ".demo"
    generate_demo(demo, seed=seed, n_videos=n_videos or {"train": 24, "val": 6, "test": 8},
                  dialogues_per_video=dialogues_per_video or {"train": 3, "val": 1, "test": 1})
    train = read_json(demo / "release" / "train.json")
    for vid, video in read_json(demo / "release" / "val.json").items():
        train[vid] = {"dialogues": [{"context": d["context"], "response": r}
                                    for d in video["dialogues"] for r in d["responses"]]}
    test = read_json(demo / "release" / "test.json")
    for split, data in (("train", train), ("test", test)):
        for i, (vid, video) in enumerate(sorted(data.items())):
            video["title"] = f"video {i}"
            for k, dialogue in enumerate(video["dialogues"]):
                dialogue["likes"] = (i + k) % 7
        write_json(out / "release" / f"{split}.json", dict(sorted(data.items())))
    (out / "release" / "val.json").unlink(missing_ok=True)
    if (out / "videos").exists():
        shutil.rmtree(out / "videos")
    shutil.copytree(demo / "videos", out / "videos")
    shutil.copyfile(demo / "c3kg.tsv", out / "c3kg.tsv")
    shutil.rmtree(demo)
    return {"train_videos": len(train), "test_videos": len(test),
            "videos": len(list((out / "videos").iterdir()))}
