#!/usr/bin/env python3
"""Reference data for Tests/SDPAEmbeddingTests, computed with transformers and sentence-transformers.

    ~/.torchenv/bin/python Scripts/make_embedding_fixtures.py [--minilm Models/all-MiniLM-L6-v2]

Writes into Tests/SDPAEmbeddingTests/Fixtures:
  tiny-bert/               a tiny BERT (2 layers, D = 32, 4 heads, a 300-token vocabulary) with every parameter
                           drawn at random (seeded), as a sentence-transformers directory (max_seq_length 24)
  tiny_reference.json      sentences, their token ids from Hugging Face's tokenizer, and SentenceTransformer.encode
                           of them (float32 values as JSON numbers, exact to the bit); token ids of tricky strings
                           and of 300 random ones (fuzz_strings)
  minilm_reference.json    with --minilm: the same for all-MiniLM-L6-v2 (the model itself is not committed:
                           Scripts/install-minilm.sh installs it), plus token ids of tricky strings
Deterministic: the same files on every run with the same library versions (recorded in the JSON).
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import transformers
import sentence_transformers
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer, BertConfig, BertModel

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "SDPAEmbeddingTests", "Fixtures")

# Strings that exercise each step of BERT's tokenizer: clean-up (controls, zero-width, NUL, U+FFFD, exotic
# whitespace), CJK splitting, accent stripping (NFD, Hangul to jamo), lower-casing without context (final
# sigma, dotted I, ligatures), punctuation (ASCII symbols and Unicode P*), special tokens written in the text,
# WordPiece (continuations, unknown words, a word past 100 characters), empty and blank input.
TRICKY = [
    "", " ", "\t\n\r ", "hello", "Hello, World!", "HELLO world",
    "Héllo wörld naïve café façade déjà-vu", "e\u0301 vs \u00e9", "\u0130stanbul", "ΣΑΣ ς όλα", "\ufb01ne \u01c4",
    "中文字测试", "日本語のテキスト", "한국어 문장", "mixed中文and English", "\U0002B8A0x \U0002B920y",
    "don't stop!!! ... ???", "$5.00 + 3% = ~x^2 | a_b `c` {d} [e] <f> @g #h &i *j",
    "¿Qué? ¡Sí! «quote» “curly” ‘single’ — dash – en … ellipsis · middle",
    "a\u200bb\u200dc\ufeffd", "\x00null\ufffdreplacement\x85nel", "x\u00a0y\u2003z\u3000w\u2028v",
    "tab\there\nnew\rline", "hello [MASK] world", "a[SEP]b[CLS]c", "[cls] lower [Mask]", "[UNK][PAD]",
    "unaffable unbelievably tokenization", "x" * 100, "y" * 101, "emoji 😀 and ☃ snow", "Ⅻ ① ²",
    "नमस्ते दुनिया", "مرحبا بالعالم", "Привет, мир!", "https://example.com/path?q=1&r=2",
    "email@example.com", "C++ and C# and F#", "3.14159 1,000,000 1e-5",
]


# Code-point ranges the random strings draw from: scripts, marks, symbols, CJK (its extension E boundary at
# U+2B920 included), Hangul, compatibility forms, emoji, tag characters (format, dropped), unassigned points.
FUZZ_BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
               (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0x2070, 0x22FF),
               (0x2E80, 0x2FDF), (0x3000, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF),
               (0xFB00, 0xFDFF), (0xFE00, 0xFFFF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF), (0x2B700, 0x2B93F),
               (0xE0000, 0xE007F), (0x10000, 0x1014F), (0x1D400, 0x1D7FF)]


def fuzz_strings(count, seed=5):
    """Random strings of 1 to 12 code points (and spaces) from FUZZ_BLOCKS, without line breaks or surrogates."""
    import random
    rng = random.Random(seed)
    strings = []
    for _ in range(count):
        text = ""
        for _ in range(rng.randint(1, 12)):
            c = rng.randint(*rng.choice(FUZZ_BLOCKS))
            if 0xD800 <= c <= 0xDFFF or chr(c) in "\n\r\x85\u2028\u2029":
                continue
            text += chr(c) + (" " if rng.random() < 0.2 else "")
        strings.append(text)
    return strings


def write_safetensors(path, tensors):
    """A minimal safetensors writer (sorted names, F32), so the tiny model needs no extra package."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name].detach().numpy().astype("<f4")).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def tiny_vocabulary():
    words = ["the", "a", "man", "is", "eating", "food", "someone", "bread", "hello", "world", "cafe", "naive",
             "un", "##aff", "##able", "token", "##ization", "quick", "brown", "fox", "jump", "##s", "over", "lazy",
             "dog", "and", "english", "mixed", "word", "##ing", "##ed", "##ly", "##er", "stop", "don", "sentence"]
    characters = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    extra = ["中", "文", "字", "测", "试", "σ", "α", "ς", "ᄒ", "##ᅡ", "##ᆫ", "—", "¿", "¡", "«", "»", "…"]
    vocabulary = ["[PAD]"] + [f"[unused{i}]" for i in range(4)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for token in characters + ["##" + c for c in characters if c.isalnum()] + words + extra:
        if token not in vocabulary:
            vocabulary.append(token)
    return vocabulary


def make_tiny(directory):
    os.makedirs(os.path.join(directory, "1_Pooling"), exist_ok=True)
    vocabulary = tiny_vocabulary()
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")
    config = BertConfig(vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
                        hidden_act="gelu")
    torch.manual_seed(18)
    model = BertModel(config, add_pooling_layer=False).eval()
    # BERT's own initialisation leaves biases at 0 and layer norms at identity: draw everything, so every
    # parameter matters to the result.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
    tensors = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    write_safetensors(os.path.join(directory, "model.safetensors"), tensors)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"architectures": ["BertModel"], "model_type": "bert", **{k: getattr(config, k) for k in (
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
            "max_position_embeddings", "type_vocab_size", "vocab_size", "layer_norm_eps", "pad_token_id")},
            "position_embedding_type": "absolute"}, f, indent=2, sort_keys=True)
    files = {
        "tokenizer_config.json": {"do_lower_case": True, "tokenize_chinese_chars": True, "strip_accents": None,
                                  "tokenizer_class": "BertTokenizer", "model_max_length": 64},
        "special_tokens_map.json": {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"},
        "sentence_bert_config.json": {"max_seq_length": 24, "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                                  "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False},
        "modules.json": [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                         {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                         {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
    }
    for name, content in files.items():
        with open(os.path.join(directory, name), "w") as f:
            json.dump(content, f, indent=2, sort_keys=True)


def sentences_for(tokenizer, maximum_length):
    """Sentences of different lengths, punctuation, accents, an empty one, and one a token past the maximum."""
    base = [
        "A man is eating food.",
        "Someone is eating a piece of bread, and the bread is delicious!",
        "Héllo wörld — naïve café, déjà vu.",
        "",
        "中文字测试 mixed with English and 한국어.",
        "Punctuation!!! ... ??? (brackets) [MASK] {braces} \"quotes\"",
        "hello",
        "The quick brown fox jumps over the lazy dog. " * 3,
    ]
    # Exactly one word piece too many: [CLS] + (maximum - 1) pieces + [SEP] is one past the maximum.
    pieces = len(tokenizer("word", add_special_tokens=False)["input_ids"])
    assert pieces == 1
    base.append(" ".join(["word"] * (maximum_length - 1)))
    return base


def encode_reference(model_directory, sentences, tricky):
    tricky = tricky + fuzz_strings(300)
    model = SentenceTransformer(model_directory, device="cpu")
    tokenizer = model.tokenizer
    maximum = model.max_seq_length
    if sentences is None:
        sentences = sentences_for(tokenizer, maximum)
    ids = [tokenizer(s, truncation=True, max_length=maximum)["input_ids"] for s in sentences]
    embeddings = model.encode(sentences, convert_to_numpy=True, normalize_embeddings=False, batch_size=4)
    return {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "sentence_transformers": sentence_transformers.__version__},
        "maxSeqLength": maximum,
        "sentences": sentences,
        "tokenIDs": ids,
        "embeddings": [[float(x) for x in row] for row in embeddings.astype(np.float32)],
        "tricky": [{"text": t, "ids": tokenizer(t, truncation=True, max_length=maximum)["input_ids"]} for t in tricky],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minilm", help="an all-MiniLM-L6-v2 directory (Scripts/install-minilm.sh)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tiny = os.path.join(FIXTURES, "tiny-bert")
    make_tiny(tiny)
    with open(os.path.join(FIXTURES, "tiny_reference.json"), "w") as f:
        json.dump(encode_reference(tiny, None, TRICKY), f, indent=1, ensure_ascii=False)
    if args.minilm:
        with open(os.path.join(FIXTURES, "minilm_reference.json"), "w") as f:
            json.dump(encode_reference(args.minilm, None, TRICKY), f, indent=1, ensure_ascii=False)
    print("wrote", FIXTURES, file=sys.stderr)


if __name__ == "__main__":
    main()
