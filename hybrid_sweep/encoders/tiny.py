"""A tiny random-initialised BERT with a word-level tokenizer built from the texts it will see.

For tests and the offline demo: the model class, pooling and prefixes are those of real encoders, the
vocabulary is the ``vocab_size`` most frequent words of the given texts (sorted by count, then word, so
the same texts always give the same tokenizer; the WordPiece trainer of ``tokenizers`` is not
deterministic across runs).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer(texts: list[str], vocab_size: int, max_length: int) -> PreTrainedTokenizerFast:
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts = Counter(
        w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t))
    )
    words = sorted(counts, key=lambda w: (-counts[w], w))[: max(0, vocab_size - len(SPECIALS))]
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length,
    )


def build_tiny_model(
    texts: list[str], folder: Path, *, hidden: int = 64, layers: int = 2, heads: int = 4, intermediate: int = 128,
    vocab_size: int = 8000, max_length: int = 64, pooling: str = "mean", seed: int = 0,
) -> SentenceTransformer:
    """Create the tiny model in ``folder`` (HF format) and return it as a SentenceTransformer."""
    folder = Path(folder)
    tokenizer = build_tokenizer(texts, vocab_size, max_length)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=max_length + 2, pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    transformer = Transformer(str(folder), max_seq_length=max_length)
    return SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), pooling), Normalize()], device="cpu"
    )
