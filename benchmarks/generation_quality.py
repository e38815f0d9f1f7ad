#!/usr/bin/env python
"""Generation quality table of a text-to-music generator, on the test prompts of a captioned dataset.

    PYTHONPATH=src python benchmarks/generation_quality.py --generator pipelines/<name> \
        [--clap pipelines/music-clap] [--data data/music21] [--num-prompts 32] [--seconds 10] [--json out.json]
    PYTHONPATH=src python benchmarks/generation_quality.py --reference-only      # just the real-clips row

The generator is any folder :func:`hf_musiccodec.pipelines.load_generator` opens (a pipeline of
this package or a transformers MusicGen folder), called as the package's convention says:
``pipe(prompt, audio_length_in_s=seconds, generator=torch.Generator().manual_seed(seed + i))``,
one prompt per call. Prompts are the ``caption`` of ``--num-prompts`` test rows (a seeded sample);
tempo and key are compared with those rows' metadata, whether or not the caption states them. A
prompt the generator refuses as bad input (its one-line ``GeneratorError``, e.g. a caption longer
than the prompts it was trained with) leaves its test row out of every row of the table; the
output lists it. Any other failure stops the run.
``--state tempo key`` writes each prompt anew (in the test phrasings) so that it states them
(the tempo as a number or a band word, the key or only its mode, as the captions do).

Rows (every row measured the same way, on clips cut to ``--seconds``):

* **real test clips**: the test clips themselves, the ceiling;
* **real test clips through the LM's codec** (a token LM): the clips encoded and decoded at the
  codebooks the LM predicts, the ceiling of anything its tokens can sound like (a codec that
  moves pitch caps the key and mode columns here);
* **generator**: the generator on the prompts;
* **generator, empty prompts**: the same seeds with ``""`` as prompt: what the text adds (its CLAP
  score is still against the real prompts).

``--data`` is a render folder with ``manifest.jsonl`` (``music21_caption_dataset``) or a folder
written by ``DatasetDict.save_to_disk`` with columns path, caption, tempo_bpm, key and splits
train / validation / test. Bad input is a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import numpy as np
import torch

from hf_musiccodec.audio.io import load_audio
from hf_musiccodec.metrics import (
    ClapAudioEmbedding,
    MelStatsEmbedding,
    clap_score,
    embed_audio,
    estimate_key,
    estimate_tempo,
    frechet_distance,
    key_accuracy,
    novelty,
    tempo_accuracy,
)
from hf_musiccodec.metrics.benchmark_cli import run_benchmark
from hf_musiccodec.pipelines import GeneratorError, check_generator_output, check_sampling_rate, load_generator

REPO = Path(__file__).resolve().parents[1]
REQUIRED_COLUMNS = ("path", "caption", "tempo_bpm", "key")
SPLITS = ("train", "validation", "test")

# Table header and meaning of each column (printed under every table, stored in the JSON).
COLUMNS = {
    "n": ("n", "clips in the row"),
    "fad_clap": ("FAD (clap)", "Fréchet distance to the reference set, CLAP audio embedding (one vector per clip); "
                 "lower is better; biased upward for small sets, so compare rows of equal n only"),
    "fad_mel": ("FAD (mel-stats)", "same with the non-learned 'mel-stats' embedding (log-mel band mean/std per "
                "1 s window)"),
    "clap_score": ("CLAP score", "cosine of the CLAP text embedding of the prompt and the clip's audio embedding, "
                   "[-1, 1]"),
    "tempo_4": ("tempo acc 4%", "share of clips whose estimated tempo (librosa) is within 4 % of the prompt row's"),
    "tempo_8": ("tempo acc 8%", "same within 8 %"),
    "key": ("key acc", "share of clips whose estimated key and mode (Albrecht-Shanahan profiles) equal the prompt row's"),
    "mode": ("mode acc", "share whose estimated mode (major/minor) equals the prompt row's"),
    "novelty": ("novelty (clap > {threshold:g})", "share of clips whose nearest training clip (CLAP cosine) is "
                "above the threshold: copying, lower is more novel"),
    "rtf": ("RTF", "real-time factor: generation wall time / seconds of audio generated (< 1: faster than "
            "real time)"),
}


class BenchmarkError(ValueError):
    """Bad input: reported in one line."""


@dataclass
class Row:
    name: str
    n: int
    fad_clap: float
    fad_mel: float
    clap_score: float
    tempo_4: float
    tempo_8: float
    key: float
    mode: float
    novelty: float
    rtf: float | None = None


# --------------------------------------------------------------------------- data


def load_splits(data):
    """Train / validation / test of a render folder (or its manifest) or of a saved DatasetDict."""
    from hf_musiccodec.metrics.benchmark_cli import load_caption_splits

    return load_caption_splits(data, SPLITS, REQUIRED_COLUMNS)


def sample_rows(split, n: int | None, seed: int) -> list[dict]:
    """``n`` rows drawn with ``seed`` (all when ``n`` is None or larger), as dicts."""
    order = np.random.default_rng(seed).permutation(len(split))
    return [split[int(i)] for i in order[: n or len(split)]]


def load_clips(rows: list[dict], seconds: float, sr: int | None = None) -> tuple[list[np.ndarray], int]:
    """The first ``seconds`` of each row's audio, mono, all at ``sr`` (default: the first clip's rate)."""
    clips = []
    for r in rows:
        audio, sr = load_audio(r["path"], sampling_rate=sr, channels=1, duration=seconds)
        clips.append(audio)
    return clips, sr


@torch.no_grad()
def codec_round_trip(pipe, rows: list[dict], seconds: float) -> tuple[list[np.ndarray], int] | None:
    """The rows' clips encoded and decoded by a token LM's own codec, at the codebooks the LM
    predicts: the best any output of that LM can sound (None for a generator without one)."""
    musicgen = getattr(pipe, "musicgen", None)
    if musicgen is None:
        return None
    codec = musicgen.audio_encoder
    clips, sr = load_clips(rows, seconds, codec.config.sampling_rate)
    out = []
    for clip in clips:
        encoded = codec.encode(torch.from_numpy(clip).float()[None])
        decoded = codec.decode(encoded.audio_codes, encoded.audio_scales).audio_values[0].numpy()
        out.append(decoded[..., : clip.shape[-1]])
    return out, sr


# --------------------------------------------------------------------------- measures


def load_clap(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchmarkError(f"--clap {folder} does not exist")
    import hf_musiccodec.conditioning  # noqa: F401  registers MusicClap with the Auto classes
    from transformers import AutoModel, AutoProcessor

    return AutoModel.from_pretrained(folder, local_files_only=True).eval(), AutoProcessor.from_pretrained(
        folder, local_files_only=True)


@torch.no_grad()
def text_embeddings(model, processor, texts: list[str], batch: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(texts), batch):
        features = processor(text=texts[i: i + batch], return_tensors="pt", padding=True)
        emb = model.get_text_features(**features)
        out.append(getattr(emb, "pooler_output", emb).float().numpy())
    return np.concatenate(out)


class Measures:
    """Everything a row is measured against: the reference set (validation clips) in both embeddings,
    the training clips' CLAP embeddings (novelty) and the prompts' rows and text embeddings."""

    def __init__(self, clap_model, clap_processor, reference, train, prompt_rows, novelty_threshold: float):
        self.embeddings = {"clap": ClapAudioEmbedding(clap_model, clap_processor), "mel": MelStatsEmbedding()}
        self.reference = {k: embed_audio(*reference, e) for k, e in self.embeddings.items()}
        self.train = embed_audio(*train, self.embeddings["clap"])
        self.rows = prompt_rows
        self.text = text_embeddings(clap_model, clap_processor, [r["caption"] for r in prompt_rows])
        self.novelty_threshold = novelty_threshold

    def row(self, name: str, clips: list[np.ndarray], sr: int, rtf: float | None = None) -> Row:
        emb = {k: embed_audio(clips, sr, e) for k, e in self.embeddings.items()}
        tempo = tempo_accuracy([estimate_tempo(c, sr) for c in clips], [r["tempo_bpm"] for r in self.rows])
        # A silent clip has no key: "X" (mir_eval's "no key") scores as wrong.
        keys = [estimate_key(c, sr) if np.any(c) else "X" for c in clips]
        modes = [k.split()[-1] == r["key"].split()[-1] for k, r in zip(keys, self.rows)]
        return Row(
            name=name,
            n=len(clips),
            fad_clap=frechet_distance(self.reference["clap"], emb["clap"]),
            fad_mel=frechet_distance(self.reference["mel"], emb["mel"]),
            clap_score=clap_score(self.text, emb["clap"]),
            tempo_4=tempo["acc_4pct"],
            tempo_8=tempo["acc_8pct"],
            key=key_accuracy(keys, [r["key"] for r in self.rows])["exact"],
            mode=float(np.mean(modes)),
            novelty=novelty(emb["clap"], self.train, self.novelty_threshold).share_above,
            rtf=rtf,
        )


# --------------------------------------------------------------------------- generation


def stated_prompt(row: dict, attributes, seed: int) -> str:
    """A test-phrased caption of ``row`` that mentions ``attributes`` (its metadata's values)."""
    from hf_musiccodec.data.captions import make_captions

    return make_captions(row, 1, seed, "test", item_id=f"{row['path']}#stated", always=tuple(attributes))[0]


def generate(pipe, prompts: list[str], seconds: float, seeds: list[int]) -> tuple[list, int, float, dict]:
    """One call per prompt, prompt i seeded ``seeds[i]``; returns clips cut to ``seconds`` (None
    where the generator refused the prompt as bad input), the rate, the RTF and ``{i: reason}`` of
    the refused prompts."""
    sr = check_sampling_rate(pipe)
    clips, wall, refused = [], 0.0, {}
    for i, (prompt, seed) in enumerate(zip(prompts, seeds)):
        started = time.perf_counter()
        try:
            out = pipe(prompt, audio_length_in_s=seconds, generator=torch.Generator().manual_seed(seed))
        except GeneratorError as e:  # the generator's own one-line refusal of this input
            clips.append(None)
            refused[i] = str(e)
            continue
        except Exception as e:  # whatever else the generator raises, the convention was not met
            raise GeneratorError(f"{type(pipe).__name__} failed on prompt {i}: {type(e).__name__}: {e}") from None
        wall += time.perf_counter() - started
        audios = check_generator_output(out, 1, sr, seconds)
        clips.append(audios[0, :, : round(seconds * sr)])
    made = len(prompts) - len(refused)
    return clips, sr, wall / max(made * seconds, 1e-9), refused


# --------------------------------------------------------------------------- output


def table(rows: list[Row], novelty_threshold: float) -> str:
    head = ["row"] + [h.format(threshold=novelty_threshold) for h, _ in COLUMNS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name, str(r.n)] + [f"{getattr(r, k):.3f}" for k in list(COLUMNS)[1:-1]]
        cells.append("—" if r.rtf is None else f"{r.rtf:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", help="pipeline folder (model_index.json) or transformers MusicGen folder")
    parser.add_argument("--reference-only", action="store_true", help="only the real-clips row")
    parser.add_argument("--clap", default=str(REPO / "pipelines" / "music-clap"), help="CLAP model folder")
    parser.add_argument("--data", default=str(REPO / "data" / "music21"), help="render folder or saved DatasetDict")
    parser.add_argument("--num-prompts", type=int, default=32, help="test rows used (default 32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of every clip (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--novelty-threshold", type=float, default=0.9, help="CLAP cosine (MusicLDM: 0.9, 0.95)")
    parser.add_argument("--novelty-clips", type=int, default=256,
                        help="training clips searched for nearest neighbours (seeded sample; 0 = all)")
    parser.add_argument("--state", nargs="+", default=[], choices=["tempo", "key"],
                        help="prompts that always state these attributes (test phrasings)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.num_prompts < 2 or args.seconds <= 0 or args.novelty_clips < 0:
        parser.error("--num-prompts must be >= 2 (FAD needs two clips), --seconds > 0, --novelty-clips >= 0")
    return args


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    pipe = None if args.reference_only or not args.generator else load_generator(args.generator)
    clap_model, clap_processor = load_clap(args.clap)
    splits = load_splits(args.data)
    prompt_rows = sample_rows(splits["test"], args.num_prompts, args.seed)
    if args.state:  # the prompt is the row's caption everywhere (generation and CLAP score)
        prompt_rows = [{**r, "caption": stated_prompt(r, args.state, args.seed)} for r in prompt_rows]
    generated, refused = {}, {}
    if pipe is not None:  # before the slow reference embeddings: a broken generator fails fast
        name = Path(args.generator).resolve().name
        seeds = [args.seed + i for i in range(len(prompt_rows))]
        clips, sr, rtf, refusals = generate(pipe, [r["caption"] for r in prompt_rows], args.seconds, seeds)
        refused = {prompt_rows[i]["caption"]: reason for i, reason in refusals.items()}
        kept = [i for i in range(len(prompt_rows)) if i not in refusals]
        if len(kept) < 2:
            raise GeneratorError(f"the generator refused {len(refusals)} of {len(prompt_rows)} prompts, "
                                 f"e.g. {next(iter(refused.values()))}")
        prompt_rows, seeds = [prompt_rows[i] for i in kept], [seeds[i] for i in kept]
        generated[name] = ([clips[i] for i in kept], sr, rtf)
        empty_clips, sr, empty_rtf, _ = generate(pipe, [""] * len(kept), args.seconds, seeds)  # same seeds, paired
        generated[f"{name}, empty prompts"] = (empty_clips, sr, empty_rtf)
    reference_rows = sample_rows(splits["validation"], None, args.seed)
    train_rows = sample_rows(splits["train"], args.novelty_clips or None, args.seed)
    measures = Measures(clap_model, clap_processor, load_clips(reference_rows, args.seconds),
                        load_clips(train_rows, args.seconds), prompt_rows, args.novelty_threshold)
    rows = [measures.row("real test clips (ceiling)", *load_clips(prompt_rows, args.seconds))]
    through_codec = None if pipe is None else codec_round_trip(pipe, prompt_rows, args.seconds)
    if through_codec is not None:
        rows.append(measures.row("real test clips through the LM's codec", *through_codec))
    rows += [measures.row(name, *clips) for name, clips in generated.items()]
    return {
        "generator": args.generator if pipe is not None else None,
        "data": str(args.data),
        "clap": str(args.clap),
        "seconds": args.seconds,
        "seed": args.seed,
        "prompts": (f"{len(prompt_rows)} test rows (seeded sample), "
                    + (f"captions stating {' and '.join(args.state)}" if args.state else "their 'caption'")),
        "prompt_texts": [r["caption"] for r in prompt_rows],
        "refused_prompts": refused,
        "reference_set": f"all {len(reference_rows)} validation clips (disjoint from test)",
        "novelty_training_set": (f"all {len(train_rows)} training clips" if len(train_rows) == len(splits["train"])
                                 else f"{len(train_rows)} of {len(splits['train'])} training clips (seeded sample; "
                                      f"--novelty-clips 0: all)"),
        "novelty_threshold": args.novelty_threshold,
        "columns": {k: d for k, (_, d) in COLUMNS.items()},
        "rows": [asdict(r) for r in rows],
    }


def report(result: dict) -> str:
    rows = [Row(**r) for r in result["rows"]]
    lines = [
        f"Generation quality: {result['prompts']}, {result['seconds']:g} s clips, seed {result['seed']}",
        f"data: {result['data']}; CLAP: {result['clap']}",
        f"reference set for FAD: {result['reference_set']}; novelty: nearest of {result['novelty_training_set']}",
        "",
        table(rows, result["novelty_threshold"]),
        "",
    ]
    refused = result.get("refused_prompts") or {}
    if refused:
        lines += [f"Left out of every row: {len(refused)} test rows whose prompt the generator refused:"]
        lines += [f"  {prompt[:60]!r}: {reason}" for prompt, reason in refused.items()] + [""]
    lines += [f"- {h.format(threshold=result['novelty_threshold'])}: {d}" for h, d in COLUMNS.values()]
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_benchmark("generation_quality", parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
