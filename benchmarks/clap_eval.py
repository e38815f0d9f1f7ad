#!/usr/bin/env python
"""Retrieval and zero-shot evaluation of a saved MusicClap model (prints a Markdown table).

    PYTHONPATH=src python benchmarks/clap_eval.py --model pipelines/music-clap --data data/clap \
        [--splits validation test] [--json pipelines/music-clap/eval_results.json]

``--data`` holds ``<split>.jsonl`` files of captioned clips (see ``hf_musiccodec.training.clap_solver``
and ``pipelines/music-clap/train.yaml``). Measured per split:

* text->audio and audio->text R@1 / R@10 / mAP@10 over the whole split (gallery = all its clips,
  whole clips embedded window by window). Each clip has several phrasings; phrasing j of every
  clip forms one query set, and the metrics are averaged over j.
  - ``captions``: the split's own captions. On **test** these come from the held-out phrase bank
    (synonyms and sentence frames never used in training): paraphrase retrieval.
  - ``captions_train_style`` (when present): the same test clips captioned with the training
    phrase bank (new clips and attribute combinations, familiar wording).
* zero-shot accuracy with prompt templates (class embedding = mean of its templates' embeddings):
  lead instrument (classes: the lead instruments of the split), tempo (slow < 80 BPM vs fast >= 120
  BPM; moderate clips left out) and mode (major vs minor).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from hf_musiccodec.audio.io import load_audio
from hf_musiccodec.training.clap_solver import read_captioned_jsonl, retrieval_metrics

INSTRUMENT_TEMPLATES = ["the sound of {a} {i}", "{a} {i} playing a tune", "a recording featuring {a} {i}"]
TEMPO_TEMPLATES = {
    "slow": ["slow music", "a piece at a slow tempo", "a slowly paced melody"],
    "fast": ["fast music", "a piece at a fast tempo", "a quickly paced melody"],
}
MODE_TEMPLATES = {
    "major": ["music in a major mode", "a piece with major tonality", "major-mode harmony"],
    "minor": ["music in a minor mode", "a piece with minor tonality", "minor-mode harmony"],
}


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


@torch.no_grad()
def embed_texts(model, processor, texts: list[str], batch: int = 64) -> torch.Tensor:
    out = [model.get_text_features(**processor(text=texts[i: i + batch])).pooler_output
           for i in range(0, len(texts), batch)]
    return torch.cat(out)


@torch.no_grad()
def embed_audio(model, processor, paths: list[str], batch: int = 8) -> torch.Tensor:
    out = []
    for i in range(0, len(paths), batch):
        clips, rate = [], None
        for p in paths[i: i + batch]:
            audio, sr = load_audio(p, channels=1)
            if rate not in (None, sr):
                raise ValueError("clips of one batch must share a sampling rate")
            clips.append(audio[0])
            rate = sr
        out.append(model.get_audio_features(**processor(audio=clips, sampling_rate=rate)).pooler_output)
    return torch.cat(out)


def retrieval(text_sets: list[torch.Tensor], audio: torch.Tensor) -> dict:
    """Mean over phrasing sets of t2a / a2t R@1, R@10, mAP@10."""
    rows = []
    for text in text_sets:
        sim = text @ audio.T
        rows.append({**retrieval_metrics(sim, "t2a_"), **retrieval_metrics(sim.T, "a2t_")})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def zero_shot(model, processor, audio: torch.Tensor, labels: list[str], prompts: dict[str, list[str]]) -> dict:
    """Accuracy of the nearest class (mean template embedding) over clips whose label is a class."""
    classes = sorted(prompts)
    keep = [i for i, y in enumerate(labels) if y in prompts]
    if not keep:
        return {"n": 0}
    class_emb = torch.stack([torch.nn.functional.normalize(embed_texts(model, processor, prompts[c]).mean(0), dim=0)
                             for c in classes])
    pred = (audio[keep] @ class_emb.T).argmax(1).tolist()
    truth = [labels[i] for i in keep]
    acc = float(np.mean([classes[p] == t for p, t in zip(pred, truth)]))
    majority = Counter(truth).most_common(1)[0][1] / len(truth)
    return {"accuracy": acc, "n": len(keep), "classes": len(classes), "majority_baseline": majority,
            "chance": 1 / len(classes)}


def evaluate_split(model, processor, records: list[dict]) -> dict:
    started = time.time()
    audio = embed_audio(model, processor, [r["path"] for r in records])
    result = {"clips": len(records), "hours": sum(r.get("duration", 0.0) for r in records) / 3600}
    n_phr = min(len(r["captions"]) for r in records)
    result["captions"] = retrieval([embed_texts(model, processor, [r["captions"][j] for r in records])
                                    for j in range(n_phr)], audio)
    if all(r.get("captions_train_style") for r in records):
        n_train = min(len(r["captions_train_style"]) for r in records)
        result["captions_train_style"] = retrieval(
            [embed_texts(model, processor, [r["captions_train_style"][j] for r in records]) for j in range(n_train)],
            audio)
    leads = [r.get("lead_instrument") or r["instruments"][0] for r in records]
    inst_prompts = {i: [t.format(a=_article(i), i=i) for t in INSTRUMENT_TEMPLATES] for i in sorted(set(leads))}
    result["zero_shot_instrument"] = zero_shot(model, processor, audio, leads, inst_prompts)
    tempo = ["slow" if r["tempo_bpm"] < 80 else "fast" if r["tempo_bpm"] >= 120 else "moderate" for r in records]
    result["zero_shot_tempo"] = zero_shot(model, processor, audio, tempo, TEMPO_TEMPLATES)
    modes = [r.get("mode") or r["key"].split()[-1] for r in records]
    result["zero_shot_mode"] = zero_shot(model, processor, audio, modes, MODE_TEMPLATES)
    novel = [i for i, r in enumerate(records) if r.get("novel_combination")]
    if novel and len(novel) < len(records):
        sub = [records[i] for i in novel]
        result["novel_combination_clips"] = len(sub)
        result["novel_combination_captions"] = retrieval(
            [embed_texts(model, processor, [r["captions"][j] for r in sub]) for j in range(n_phr)], audio[novel])
    result["seconds"] = time.time() - started
    return result


def table(results: dict) -> str:
    lines = ["| split | captions | clips | t2a R@1 | t2a R@10 | t2a mAP@10 | a2t R@1 | a2t R@10 | a2t mAP@10 "
             "| chance R@1 / R@10 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for split, r in results.items():
        for key, name in (("captions_train_style", "training wording"), ("captions", "split's own")):
            if key in r:
                m = r[key]
                if split == "test" and key == "captions":
                    name = "paraphrased (held-out wording)"
                lines.append(f"| {split} | {name} | {r['clips']} | " + " | ".join(
                    f"{m[f'{d}_{k}']:.3f}" for d in ("t2a", "a2t") for k in ("R@1", "R@10", "mAP@10"))
                    + f" | {1 / r['clips']:.3f} / {min(1.0, 10 / r['clips']):.3f} |")
    lines += ["", "| split | zero-shot task | clips | classes | accuracy | majority baseline | chance |",
              "|---|---|---|---|---|---|---|"]
    for split, r in results.items():
        for task in ("instrument", "tempo", "mode"):
            z = r[f"zero_shot_{task}"]
            if z.get("n"):
                lines.append(f"| {split} | {task} | {z['n']} | {z['classes']} | {z['accuracy']:.3f} | "
                             f"{z['majority_baseline']:.3f} | {z['chance']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pipelines/music-clap")
    parser.add_argument("--data", default="data/clap", help="folder of <split>.jsonl files")
    parser.add_argument("--splits", nargs="+", default=["validation", "test"])
    parser.add_argument("--max-clips", type=int, default=None, help="first N clips per split")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import hf_musiccodec.conditioning  # noqa: F401  registers MusicClap with the Auto classes
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(args.model).eval()
    processor = AutoProcessor.from_pretrained(args.model)
    results = {}
    for split in args.splits:
        records = read_captioned_jsonl(Path(args.data) / f"{split}.jsonl")[: args.max_clips]
        results[split] = evaluate_split(model, processor, records)
        print(f"{split}: {json.dumps(results[split])}", file=sys.stderr)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(args.model), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
