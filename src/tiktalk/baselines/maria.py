"""Maria family (Maria, Maria+Audio, Maria+C3KG and their text ablations): train / predict.

``params`` (the baseline's config block, :class:`MariaParams`)::

    family: maria
    tokenizer: dir or hub name   # optional, else inputs.tokenizer (e.g. bert-base-chinese)
    init: scratch | <dir>        # the encoder's initialisation: random, or a BERT checkpoint
    model:  {MariaConfig fields}   # use_visual, use_audio, use_knowledge, hidden_size,
                                   # num_hidden_layers, num_attention_heads, intermediate_size
                                   # (scratch only), max_response_len (40), max_text_len (180),
                                   # max_knowledge_len, max_flows, max_frames (50),
                                   # max_audio_frames (50), mask_prob_* (0.7/0.15/0.15)
    train:  {TrainConfig fields}   # epochs (20), batch_size, lr (3e-5), weight_decay (0.05)...
    decode: {MariaDecode fields}   # batch_size (16), beam_size (5), length_penalty (0.3),
                                   # repetition_penalty (3), max_len (40), min_len (1)

The model config is built once (:func:`model_config`): the ``model:`` block, the tokenizer's
vocabulary and special ids, and the feature dims of the shards (visual_dim / audio_dim, unless
the block sets them); :func:`tiktalk.models.maria.build_backbone` completes it with the
encoder's architecture. Outputs in ``out_dir``: ``model.pt`` ({family, version, config,
state_dict, provenance: the fingerprints of the encoder init and tokenizer it loaded,
:func:`tiktalk.io.provenance`}), ``tokenizer/``, ``checkpoints/last.pt`` and ``train_log.jsonl``
(the trainer).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from tiktalk.baselines.common import (cpu_state, device_for, load_model_blob, load_tokenizer_for,
                                      table, write_model)
from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.io import provenance
from tiktalk.knowledge.flows import format_flows, iter_knowledge
from tiktalk.logs import batch_starts
from tiktalk.media.store import FeatureStore
from tiktalk.data.predictions import write_predictions
from tiktalk.models.maria import (Maria, MariaConfig, MariaDecode, build_backbone, build_example,
                                  cap_frames, collate, tokenizer_fields)
from tiktalk.models.packed import PackedExamples
from tiktalk.models.tokenizer import decode_tokens, load_tokenizer
from tiktalk.settings import from_mapping, to_mapping
from tiktalk.training.trainer import TrainConfig, train as run_training

log = logging.getLogger("tiktalk.baselines.maria")
FAMILY = "maria"
VERSION = 2   # 2: the encoder's init and the decoding settings left the model config


@dataclass(frozen=True)
class MariaParams:
    """A Maria baseline's ``params:`` block."""

    family: str = FAMILY
    name: str | None = None
    description: str | None = None
    tokenizer: str | None = None
    init: str = "scratch"              # the encoder: "scratch" or a BERT checkpoint dir
    model: dict | None = None          # MariaConfig fields (see model_config)
    train: dict | None = None          # TrainConfig fields
    decode: MariaDecode = field(default_factory=MariaDecode)


def _params(params: dict) -> MariaParams:
    return from_mapping(MariaParams, params, where="maria params")


def training_pairs(dialogues: Sequence[dict], all_responses: bool = True) -> list[tuple[dict, str]]:
    """(dialogue, target) pairs: every response of a row (train has one), or the first only."""
    pairs = []
    for d in dialogues:
        targets = d["responses"] if all_responses else d["responses"][:1]
        pairs.extend((d, r) for r in targets if r.strip())
    return pairs


def open_feature_store(paths) -> FeatureStore | None:
    paths = list(paths or [])
    return FeatureStore(paths) if paths else None


def video_features(store: FeatureStore | None, video_id: str, visual: bool = True, audio: bool = True):
    """(frames, audio) float32 arrays (zero rows for a failed video / no audio), None if unused."""
    if not (visual or audio):
        return None, None
    if store is None:
        raise ValueError(f"video {video_id!r}: features requested but no feature shards given")
    frames = store.frames(video_id) if visual else None
    aud = store.audio(video_id) if audio else None
    return frames, aud


TEXT_FIELDS = {"resp_ids": "i", "text_ids": "i", "text_types": "b", "text_maskable": "b"}


class MariaDataset(torch.utils.data.Dataset):
    """Examples tokenised once and packed into flat arrays (:class:`PackedExamples`: a few
    hundred bytes an example); an item's frames and audio are read from the feature store when
    the item is asked for, so the dataset's memory is its text, never the features. Every
    video is checked to be in the store when the dataset is built."""

    def __init__(self, cfg: MariaConfig, tokenizer, pairs, store=None, knowledge=None):
        self.cfg, self.store = cfg, store
        knowledge = knowledge or {}
        uses_features = cfg.use_visual or cfg.use_audio
        if uses_features and store is None:
            raise ValueError("maria: features requested but no feature shards given")
        self.text = PackedExamples(TEXT_FIELDS)
        self.video_ids: list[str] = []
        interned: dict[str, str] = {}
        for dlg, target in pairs:
            vid = interned.setdefault(dlg["video_id"], dlg["video_id"])
            if uses_features and vid not in store:
                raise KeyError(f"dialogue {dlg['dialogue_id']!r}: video {vid!r} is in no feature shard")
            know = None
            if cfg.use_knowledge:        # its knowledge text, or its flows (read_knowledge)
                know = knowledge.get(dlg["dialogue_id"], "")
                know = know if isinstance(know, str) else format_flows(know, cfg.max_flows)
            self.text.append(build_example(cfg, tokenizer, dlg["context"], target, know))
            self.video_ids.append(vid)

    def __len__(self) -> int:
        return len(self.text)

    def features(self, video_id: str) -> tuple:
        """(frames, audio) of one video as the model reads them (capped), None where unused."""
        frames, audio = video_features(self.store, video_id, self.cfg.use_visual, self.cfg.use_audio)
        return cap_frames(frames, self.cfg.max_frames), cap_frames(audio, self.cfg.max_audio_frames)

    def __getitem__(self, i: int) -> dict:
        ex = self.text[i]
        ex["frames"], ex["audio"] = self.features(self.video_ids[i])
        return ex

    def collate(self, items):
        return collate(items, self.cfg)

    def feature_statistics_inputs(self):
        """For :meth:`Maria.set_feature_stats`: (visual, audio, weights), each video of the
        set read ONCE and weighted by its number of examples. Why per example: the statistics
        describe what the model reads in training, where a video's frames enter once for every
        dialogue about it (and the result equals the old fit over every example's frames)."""
        uses = Counter(self.video_ids)
        visual = (self.features(v)[0] for v in uses) if self.cfg.use_visual else None
        audio = (self.features(v)[1] for v in uses) if self.cfg.use_audio else None
        return visual, audio, list(uses.values())


def model_config(p: MariaParams, tokenizer, store: FeatureStore | None) -> MariaConfig:
    """The MariaConfig of a baseline: its ``model:`` block, the feature dims of the shards
    where the block leaves them out, and the tokenizer's vocabulary and ids."""
    fields = dict(p.model or {})
    if store is not None:
        if store.visual_dim and "visual_dim" not in fields:
            fields["visual_dim"] = store.visual_dim
        if store.audio_dim and "audio_dim" not in fields:
            fields["audio_dim"] = store.audio_dim
    fields.update(tokenizer_fields(tokenizer))
    return from_mapping(MariaConfig, fields, where="maria params.model")


def _knowledge(cfg: MariaConfig, inputs: BaselineInputs, split: str) -> dict[str, str]:
    """dialogue_id -> the knowledge text of its best ``max_flows`` flows (streamed: one string a
    dialogue is kept, not the flow records)."""
    if not cfg.use_knowledge:
        return {}
    return {did: format_flows(flows, cfg.max_flows) for did, flows in iter_knowledge(inputs.knowledge.get(split))}


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    p = _params(params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer_for(p.tokenizer, inputs)
    store = open_feature_store(inputs.features)
    cfg = model_config(p, tokenizer, store)
    tcfg = TrainConfig.from_dict({"seed": inputs.seed, **(p.train or {})}, where="maria params.train")
    torch.manual_seed(tcfg.seed)
    pretrained = cfg.bert_config is None and p.init != "scratch"
    loaded = provenance([p.init if pretrained else None, p.tokenizer or inputs.tokenizer],
                        random_init=not pretrained)
    mlm, cfg = build_backbone(cfg, p.init)
    model = Maria(cfg, mlm)
    train_set = MariaDataset(cfg, tokenizer, training_pairs(table(inputs, "train")), store,
                             _knowledge(cfg, inputs, "train"))
    val_set = None
    if "val" in inputs.dialogues:
        val_set = MariaDataset(cfg, tokenizer, training_pairs(table(inputs, "val"), all_responses=False),
                               store, _knowledge(cfg, inputs, "val"))
    rows = model.set_feature_stats(*train_set.feature_statistics_inputs())
    if rows:
        log.info("maria: features standardised with training statistics (%s)",
                 ", ".join(f"{k}: {n} rows" for k, n in rows.items()))
    log.info("maria: %d train examples, %d params, visual=%s audio=%s knowledge=%s",
             len(train_set), sum(p.numel() for p in model.parameters()), cfg.use_visual,
             cfg.use_audio, cfg.use_knowledge)
    run_training(model, train_set, train_set.collate, tcfg, out_dir, val_set=val_set, params=params)
    write_model(out_dir, FAMILY, VERSION, to_mapping(model.cfg), tokenizer=tokenizer,
                state_dict=cpu_state(model.state_dict()), provenance=loaded)


def load_model(model_dir: Path) -> tuple[Maria, object]:
    """(model in eval mode on the CPU, tokenizer) of a trained ``model_dir``."""
    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    model = Maria(from_mapping(MariaConfig, blob["config"], where=f"{model_dir}/model.pt config"))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), load_tokenizer(model_dir / "tokenizer")


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    dec = _params(params).decode
    device = device_for(params)
    model, tokenizer = load_model(model_dir)
    model.to(device)
    cfg = model.cfg
    rows = table(inputs, split)
    store = open_feature_store(inputs.features) if (cfg.use_visual or cfg.use_audio) else None
    data = MariaDataset(cfg, tokenizer, [(d, None) for d in rows], store, _knowledge(cfg, inputs, split))
    responses: list[str] = []
    for start in batch_starts(len(data), dec.batch_size, f"{FAMILY} predict {split}"):
        batch = data.collate([data[i] for i in range(start, min(len(data), start + dec.batch_size))])
        batch = {k: v.to(device) for k, v in batch.items()}
        for ids in model.generate(batch, dec):
            responses.append(decode_tokens(tokenizer, ids))
    write_predictions(out_path, rows, responses)


def score_candidates(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
                     candidates: dict, batch_size: int = 64):
    """Ranking: (summed log-likelihood, tokens), each (dialogues, candidates), of every candidate
    response of ``candidates`` (:func:`tiktalk.metrics.ranking.read_candidates`) under the UniLM
    mask, in one encoder pass per batch (:func:`tiktalk.models.scoring.maria_response_logprobs`)."""
    from tiktalk.models.scoring import as_matrix, candidate_pairs, maria_response_logprobs

    device = device_for(params)
    model, tokenizer = load_model(model_dir)
    model.to(device)
    cfg = model.cfg
    pairs = candidate_pairs(table(inputs, split), candidates)
    store = open_feature_store(inputs.features) if (cfg.use_visual or cfg.use_audio) else None
    knowledge = _knowledge(cfg, inputs, split)
    inputs_of: dict = {}   # the current dialogue's features and knowledge (pairs come in order)

    def example(row: dict, text: str) -> dict:
        did = row["dialogue_id"]
        if did not in inputs_of:
            inputs_of.clear()
            frames, audio = video_features(store, row["video_id"], cfg.use_visual, cfg.use_audio)
            know = knowledge.get(did, "") if cfg.use_knowledge else None
            inputs_of[did] = (know, frames, audio)
        return build_example(cfg, tokenizer, row["context"], text, *inputs_of[did])

    sums, counts = [], []
    for start in batch_starts(len(pairs), batch_size, f"{FAMILY} rank {split} candidates"):
        batch = collate([example(r, t) for r, t in pairs[start:start + batch_size]], cfg)
        s, n = maria_response_logprobs(model, {k: v.to(device) for k, v in batch.items()})
        sums.append(s)
        counts.append(n)
    return as_matrix(sums, counts, candidates["n_candidates"])
