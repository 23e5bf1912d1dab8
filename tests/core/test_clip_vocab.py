from __future__ import annotations

from lcm_desktop.core.clip_vocab import (
    BOS,
    EOS,
    clip_vocab_from_bpe,
    open_clip_bpe_file,
    word_level_vocab,
    write_tokenizer_files,
)


def test_real_clip_vocabulary_from_open_clip_bpe(tmp_path):
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_from_bpe(open_clip_bpe_file())
    assert len(vocab) == 49408 and len(merges) == 48894
    assert (vocab[BOS], vocab[EOS]) == (49406, 49407)
    write_tokenizer_files(tmp_path, vocab, merges)
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path)
    # ids known from Stable Diffusion's tokenizer (openai/clip-vit-large-patch14)
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_word_level_vocab_makes_one_token_per_word(tmp_path):
    from transformers import CLIPTokenizer

    vocab, merges = word_level_vocab(["a", "large", "red", "circle", "background", ","])
    write_tokenizer_files(tmp_path, vocab, merges)
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("A large red circle, background").input_ids)
    assert tokens == [BOS, "a</w>", "large</w>", "red</w>", "circle</w>", ",</w>", "background</w>", EOS]
    assert vocab[EOS] == max(vocab.values())
