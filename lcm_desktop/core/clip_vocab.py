"""CLIP tokenizer files (``vocab.json`` + ``merges.txt``), written without the network.

Two sources, no library writes either for us:
- the real CLIP BPE vocabulary (49,408 tokens), derived deterministically from the
  ``bpe_simple_vocab_16e6.txt.gz`` file that the ``open_clip_torch`` wheel ships, exactly as
  OpenAI's ``simple_tokenizer.py`` builds its encoder (byte-to-unicode table, the same with
  ``</w>``, the first 48,894 merges joined, then the two special tokens);
- a small word-level vocabulary for our own tiny models: each word is made one token by the
  merges that rebuild it from its characters, so transformers' ``CLIPTokenizer`` (and Apple's
  Core ML tokenizer, which reads the same two files) turn it into exactly one id.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
CLIP_MAX_LENGTH = 77
_CLIP_MERGE_COUNT = 49152 - 256 - 2  # merges used by CLIP: lines 1..48894 of the BPE file


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def open_clip_bpe_file() -> Path:
    """The BPE file inside the installed ``open_clip_torch`` wheel (not imported: it needs torchvision)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("open_clip_torch")
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            "The CLIP vocabulary needs the open_clip_torch package: pip install --no-deps open_clip_torch."
        ) from exc
    path = Path(dist.locate_file("open_clip/bpe_simple_vocab_16e6.txt.gz"))
    if not path.is_file():
        raise FileNotFoundError(f"open_clip_torch is installed but {path} is missing; reinstall it.")
    return path


def clip_vocab_from_bpe(bpe_gz: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's vocabulary and merges from the gzipped BPE merges file."""
    lines = gzip.open(bpe_gz, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _CLIP_MERGE_COUNT + 1]]
    base = list(bytes_to_unicode().values())
    tokens = base + [t + "</w>" for t in base] + ["".join(m) for m in merges] + [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}, merges  # type: ignore[return-value]


def word_level_vocab(words: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A tiny BPE vocabulary in which every given word (lower case) is a single token.

    Characters of the words are tokens too (so unknown words still tokenize), the special
    tokens come last, as in CLIP (so ``argmax(input_ids)`` finds the end token).
    """
    words = sorted({w.lower() for w in words if w.strip()})
    chars = sorted({c for w in words for c in w})
    tokens: list[str] = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    seen = set(tokens)
    for word in words:
        # Merge left to right: ((c0 c1) c2) ... (… c_last</w>); each product is a token.
        current = word[0] if len(word) > 1 else word + "</w>"
        for i, char in enumerate(word[1:], start=1):
            piece = char + "</w>" if i == len(word) - 1 else char
            pair = (current, piece)
            current = current + piece
            if pair not in merges:
                merges.append(pair)
            if current not in seen:
                seen.add(current)
                tokens.append(current)
    tokens += [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def write_tokenizer_files(
    out_dir: Path, vocab: dict[str, int], merges: list[tuple[str, str]], max_length: int = CLIP_MAX_LENGTH
) -> None:
    """Write a transformers ``CLIPTokenizer`` folder (also Apple's vocab.json/merges.txt layout)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(merges_text(merges), encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "do_lower_case": True, **special}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")


def merges_text(merges: list[tuple[str, str]]) -> str:
    """The ``merges.txt`` format: a version line, then one ``a b`` pair per line."""
    return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)


def parse_merges(text: str) -> list[tuple[str, str]]:
    """``merges.txt`` text → pairs (the version line and blank lines skipped)."""
    return [tuple(line.split()) for line in text.splitlines()  # type: ignore[misc]
            if line.strip() and not line.startswith("#version")]
