"""Stage contracts: the files that pass between the pipeline's rules.

Every boundary between two rules is one of the formats below. Each carries a version number;
a reader that meets a file of another version fails with a message naming the file.

Release (input, ``release/{split}.json``)
    The adapter in :mod:`tiktalk.data.release` reads it; see that module for the layout.

Dialogue table (``results/data/{split}.jsonl``, :data:`DIALOGUES_VERSION`)
    One JSON object per dialogue::

        {"dialogue_id": str, "video_id": str, "split": "train"|"val"|"test",
         "context": [str, ...],      # preceding utterances, oldest first (>= 1)
         "responses": [str, ...]}    # train: 1 (the target); val/test: 5 references

    Written and read only through :mod:`tiktalk.data.dialogues`.

References (``results/data/{split}_references.jsonl``)
    ``{"dialogue_id": str, "references": [str, ...]}`` (5 per val/test dialogue).

Video manifest (``results/data/videos.tsv``, :data:`MANIFEST_COLUMNS`)
    One row per distinct video over all splits: video_id, split, shard. Shards are
    ``shard_size`` consecutive videos of the id-sorted list; shard names are
    :func:`shard_name` (``s00000``...). Written and parsed only by :mod:`tiktalk.data.manifest`.

Video ids (:data:`VIDEO_ID_PATTERN`)
    An id becomes a file name and a URL query value, so every stage checks it against one
    pattern: config ``data.video_id_pattern`` when set, else :data:`VIDEO_ID_PATTERN`, always
    as a full match (the release check, the manifest and the media fetch use the same one).

Fetch table (``results/media/{shard}/fetch.tsv``, :data:`FETCH_COLUMNS`, :data:`FETCH_VERSION`)
    One row per distinct video id of the shard, in shard order, written LAST and atomically:
    video_id, status ("ok"|"failed"), reason ("" when ok; ``invalid id: ``, ``resolve: `` or
    ``download: ...``), path (the local file when ok: a download in ``{shard}/videos/`` or a
    local source used in place). Versioned by its header (version 1 is exactly these columns).

Media status (``results/media/{shard}.status.tsv``, :data:`STATUS_COLUMNS`, :data:`STATUS_VERSION`)
    One row per video of the shard, written LAST and atomically, after every feature shard:
    video_id, status ("ok"|"failed"), reason ("" when ok; ``fetch: ...`` or ``decode: ...``,
    e.g. ``decode: truncated: decoded 4.1 s of 30.0 s``), n_frames, n_audio_frames, duration
    (seconds, float; "" when unknown), decoded_s (seconds of the video stream the file holds;
    "" when not decoded), notes ("; "-joined decoder notes: no audio stream, damaged stream,
    duration capped...). Versioned by its header: version 1 had the first six columns only.

Features (``results/media/{shard}.features.npz``, :data:`FEATURES_VERSION`)
    NumPy ``.npz`` with, for N videos of the shard (all videos, ok or failed, same order as
    the status table)::

        version      int64 scalar
        video_ids    <U str array, (N,)
        frame_offsets int64 (N+1,)   frames of video i are frames[frame_offsets[i]:frame_offsets[i+1]]
        frames       float16 (F, D_visual)
        audio_offsets int64 (N+1,)
        audio        float16 (A, D_audio)   VGGish 128-d per 0.96 s
        provenance   str: JSON {"random_init": bool, "weights": [{"path", "sha256", "files"}]},
                     the weight files the encoders loaded (tiktalk.io.provenance)
    A failed video, or a video without an audio stream, simply has zero rows.

Image features (``results/media/{shard}.image.npz``, :data:`FEATURES_VERSION`)
    The frozen image encoder's tokens for the BLIP-2 baselines, written by the same shard job
    from the same decoded videos: the feature layout above (``frames`` holds the
    ``tokens_per_frame`` token rows of every frame, frame after frame, so a video with F frames
    has F * T rows; ``audio`` is empty, shape (0, 0)) plus ``tokens_per_frame`` (int64) and
    ``encoder`` (str, what produced them). Same version as the features.

Media coverage (``results/media/coverage.json``, ``tiktalk.media.coverage.COVERAGE_VERSION``)
    Per split the videos, how many have features and the share, plus the top failure reasons;
    the layout is in :mod:`tiktalk.media.coverage`. ``coverage.ok`` marks that every split
    reached ``media.min_coverage``.

Knowledge (``results/knowledge/{split}.jsonl``)
    ``{"dialogue_id": str, "flows": [{"head", "relation", "tail", "score"}, ...]}``
    top-k flows per dialogue, best first; written and read by :mod:`tiktalk.knowledge.flows`.
    Beside it ``{split}.provenance.json``: the retriever's model fingerprint
    (:func:`tiktalk.io.provenance`).

C3KG table (``c3kg.tsv``, :data:`C3KG_COLUMNS`)
    head, relation, tail, weight: tab-separated with a header; the only form of C3KG the
    pipeline reads (see :mod:`tiktalk.knowledge.c3kg`).

Model (``results/models/{baseline}/model.pt``, each family's ``VERSION``)
    A ``torch.save`` dict ``{"family": str, "version": int, "config": {...}, ...}``: the
    family's immutable model config as a plain mapping and its weights (``state_dict``; the
    causal LM's ``lora_state_dict`` and ``base``, DialoGPT's ``gpt2_config``, BLIP-2's
    ``llm_dir``), beside what the family reloads with it (``tokenizer/``; the causal LM's
    ``adapter/`` and ``base/``). Loaded with ``weights_only=True``; a file of another family or
    version is an error naming it (:func:`tiktalk.baselines.common.load_model_blob`).

Predictions (``results/predictions/{baseline}/{split}.jsonl``)
    ``{"dialogue_id": str, "response": str}``, one per dialogue of the split, in the dialogue
    table's order; written and read by :mod:`tiktalk.data.predictions`.

Metrics (``results/metrics/{baseline}/{split}.json``)
    keys bleu_1..bleu_4, meteor, rouge_l, cider, dist_1..dist_3 (all x100) and n.
"""

from __future__ import annotations

DIALOGUES_VERSION = 1
FEATURES_VERSION = 1
FETCH_VERSION = 1
STATUS_VERSION = 2
SPLITS = ("train", "val", "test")
N_REFERENCES = 5

MANIFEST_COLUMNS = ("video_id", "split", "shard")
FETCH_COLUMNS = ("video_id", "status", "reason", "path")
STATUS_COLUMNS = ("video_id", "status", "reason", "n_frames", "n_audio_frames", "duration",
                  "decoded_s", "notes")
#: The default video-id pattern (full match); config ``data.video_id_pattern`` overrides it.
#: Douyin item ids (19 digits) match it, and so do file-name-safe ASCII names.
VIDEO_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
C3KG_COLUMNS = ("head", "relation", "tail", "weight")
METRIC_KEYS = (
    "bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider",
    "dist_1", "dist_2", "dist_3",
)

# C3KG relation types that are dialogue flows (paper sec. 4.2; C3KG construct_edge.py).
FLOW_RELATIONS = (
    "next_sentence", "next_utterance",      # event flow
    "next_entity",                          # concept flow
    "emotion_cause", "emotion_intent",      # emotion flow
)


def shard_name(index: int) -> str:
    """Name of the shard with 0-based ``index``: ``s00000``, ``s00001``, ..."""
    if index < 0:
        raise ValueError(f"shard index must be >= 0, got {index}")
    return f"s{index:05d}"
