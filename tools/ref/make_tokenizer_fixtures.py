#!/usr/bin/env python3
"""make_tokenizer_fixtures.py: reference fixtures for hug's tokenizer, made
with Hugging Face tokenizers and committed under tests/fixtures/tokenizer/.

    pip install tokenizers
    python3 tools/ref/make_tokenizer_fixtures.py           # fixtures
    python3 tools/ref/make_tokenizer_fixtures.py --hug     # + check hug's trainer

Writes:

  corpus.txt        a small multilingual training text (generated, seeded)
  gpt2.json         byte-level BPE, GPT-2 ByteLevel pre-tokenizer (regex),
                    trained on corpus.txt by BpeTrainer (600 tokens), with
                    added tokens: <|endoftext|> (special), <mask> (special,
                    lstrip + rstrip), [NOTE] (not special, normalized)
  gpt2_strmerges.json  the same with merges written as "a b" strings
  gpt2_prefix.json  the same with ByteLevel add_prefix_space = true
  gpt2_ignore_merges.json  the same with model.ignore_merges = true
  bloom.json        BLOOM's pre-tokenizer (Split with BLOOM's regex, then
                    ByteLevel without regex), <unk> <s> </s> <pad> special
                    (ids 0..3), 600 tokens
  hf_trained.json   what BpeTrainer makes of corpus.txt with the settings
                    `hug tokenizer train` uses by default (vocab 500)
  hf_trained_bloom.json  the same with BLOOM's pre-tokenizer
                    (`--pre-tokenizer bloom`)
  expected.json     {"texts": [hex...], "ids": {fixture: [[ids]...]}}: HF's
                    encode(text, add_special_tokens=False) per text
  pipelines/*.json  (--pipelines) small tokenizers trained by BpeTrainer in
                    the pipeline shapes of the major open models (see
                    PIPELINES below: Llama 3, Qwen2, Llama 2/Mistral,
                    Gemma, GPT-2 with specials in the text, and the other
                    pre-tokenizers, normalizers and decoders hug reads)
  pipelines/EXPECTED.json  {"texts": [hex...], "fixtures": {name: {"ids",
                    "ids_special", "decoded", "decoded_skip"}}}: HF's
                    encode(text, add_special_tokens=False/True) and
                    decode(ids, skip_special_tokens=False/True) per text
                    (hex UTF-8); texts with invalid UTF-8 get ids only, for
                    byte-level fixtures without a normalizer, made from
                    HF's parts as below
  pipelines/CHAT.json  per chat template of data/chat_template.c (the
                    Jinja strings in CHAT_TEMPLATES) and a pipeline
                    tokenizer: transformers' apply_chat_template text (hex),
                    ids and assistant_masks for a few conversations
  hug_trained.json, hug_trained_expected.json   (--hug) the file
                    `build/bin/hug tokenizer train --vocab-size 500` writes
                    for corpus.txt, and HF's ids for it on the texts

Texts with invalid UTF-8 cannot go through HF (its input is a Rust
String). For them the expected ids are made from HF's parts: each invalid
byte is replaced by a private-use character (class "other", like hug
treats invalid bytes), HF's pre-tokenizer splits that string, and HF's BPE
model (tokenizer.model.tokenize) encodes each piece's original bytes in
byte-level form. The script checks that this path equals encode() on every
valid text first.
"""
import json
import os
import random
import subprocess
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
BLOOM_REGEX = " ?[^(\\s|[.,!?…。，、।۔،])]+"

PARAGRAPHS = [
    "The quick brown fox jumps over the lazy dog. It's 3:45 pm, and we're "
    "late: they've said they'd wait, but I'm not sure they'll stay.",
    "Héllo wörld! Ça va? Le garçon naïf a mangé une crème brûlée au café; "
    "l'été dernier, à Besançon, c'était très agréable.",
    "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. "
    "Österreichische Straßen sind schön.",
    "El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío, "
    "añoraba a su querido cachorro. ¿Qué tal? ¡Muy bien!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир! "
    "Москва — столица России.",
    "我们在北京的大学学习中文。今天天气很好，我们去公园散步吧！人工智能正在改变世界。",
    "日本語のテキストです。東京は大きな都市で、カタカナとひらがなを使います。",
    "한국어 문장도 있습니다. 서울은 아름다운 도시입니다.",
    "مرحبا بالعالم! هذا نص عربي قصير، يحتوي على أرقام ١٢٣ وكلمات كثيرة.",
    "नमस्ते दुनिया। यह हिंदी में लिखा गया एक छोटा पाठ है॥ संख्या १२३४ है।",
    "Emoji time 👍🏽 👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, ❤️ love, 🇫🇷 France 🎉🎉",
    "Numbers: 12345 3.14159 1,000,000 ２０２４ Ⅻ ½ 0x1F 42nd 1990s.",
    "def main(argc, argv):\n\tif argc > 1:\n\t\treturn argv[1]  # comment\n"
    "    return None\n",
    "Punctuation!!! Really??? Wait... (a|b) [x] {y} <z> @#$%^&*_+=~` «quotes» "
    "‘single’ “double” — dash – dash",
    "Ελληνικά: Γειά σου κόσμε. עברית: שלום עולם. ไทย: สวัสดีชาวโลก",
]

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Héllo wörld! Ça va? naïve café, résumé — «quotes» ‘single’ “double”",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "日本語のテキストと中文文本，还有한국어 문장。",
    "مرحبا بالعالم! هذا نص عربي ١٢٣.",
    "नमस्ते दुनिया। यह हिंदी पाठ है॥ १२३",
    "Emoji: 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷🎉",
    "tabs\tand\t\ttabs\n\nnewlines\r\n  multiple   spaces    end   ",
    "digits 12345 3.14159 1,000,000 ２０２４ Ⅻ ½ x²",
    "punct: !!! ??? ... (a|b) [x] {y} <z> @#$%^&*_+=~`",
    "contractions: it's I'm we're they've he'd you'll don't IT'S 'tis o'clock",
    "special tokens: <s>hello</s> <pad><unk> <|endoftext|>x<|endoftext|>",
    "masks: a <mask> b<mask>c   <mask>   d [NOTE] e[NOTE]f",
    "   leading spaces and trailing   \n",
    "",
    " ",
    "\n",
    "a",
    "supercalifragilisticexpialidocious" * 3 + " " + "1234567890" * 8,
    "a" * 120 + " " + "ab" * 70,
    "abcабв中文123déjà",
    "zero\u200bwidth\u200djoiner nbsp\u00a0ideographic\u3000space\u2028sep\u0085nel",
    "Ελληνικά: Γειά σου κόσμε. עברית: שלום עולם. ไทย: สวัสดีชาวโลก",
    "\tdef f(x):\n\t\treturn x  # ok\n",
    "。、，।۔،…a。b，c、d",
]

INVALID = [
    b"bad \xff\xfe bytes \xc3( overlong \xc0\xaf surrogate \xed\xa0\x80 cut \xe2\x82",
    b"\x80\x80abc \xf5\x90 ok \xe2\x82\xac euro",
    b"mixed \xffword\xfe 12\xff34 \xff \xff\n",
]

GPT2_ADDED = [
    AddedToken("<mask>", lstrip=True, rstrip=True, special=True, normalized=False),
]


def corpus():
    rng = random.Random(1234)
    lines = []
    for _ in range(40):
        ps = PARAGRAPHS[:]
        rng.shuffle(ps)
        for p in ps[: rng.randint(5, len(ps))]:
            words = p.split(" ")
            k = rng.randint(0, len(words) // 3)
            lines.append(" ".join(words[k:]))
        lines.append("")
    return "\n".join(lines) + "\n"


def train(path, vocab, special, pretok, added=(), normal_added=()):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pretok
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tr = trainers.BpeTrainer(vocab_size=vocab, special_tokens=special,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                             show_progress=False)
    tok.train([path], tr)
    if added:
        tok.add_special_tokens(list(added))
    if normal_added:
        tok.add_tokens(list(normal_added))
    return tok


def gpt2_pretok():
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def bloom_pretok():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(BLOOM_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()


def split_invalid(data):
    """[(unit bytes, valid)] per character; an invalid byte is its own unit."""
    units, i = [], 0
    while i < len(data):
        for n in (1, 2, 3, 4):
            try:
                ch = data[i:i + n].decode("utf-8")
                if len(ch) == 1:
                    units.append((data[i:i + n], True))
                    i += n
                    break
            except UnicodeDecodeError:
                pass
        else:
            units.append((data[i:i + 1], False))
            i += 1
    return units


def encode_parts(tok, data):
    """HF's pre-tokenizer and BPE model, with invalid bytes as private-use
    characters for the split and as themselves for the BPE."""
    units = split_invalid(data)
    text = "".join(u.decode("utf-8") if ok else chr(0xE000 + u[0]) for u, ok in units)
    pieces = tok.pre_tokenizer.pre_tokenize_str(text)
    ids = []
    for _, (a, b) in pieces:
        raw = b"".join(u for u, _ in units[a:b])
        ids += [t.id for t in tok.model.tokenize("".join(B2U[c] for c in raw))]
    return ids


def hexs(b):
    return b.hex()


def save(tok, name):
    path = os.path.join(OUT, name)
    tok.save(path)
    return path


def rewrite(src, dst, fn):
    with open(src, encoding="utf-8") as f:
        j = json.load(f)
    fn(j)
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=2)
    return dst


def expected_ids(path, texts, invalid):
    tok = Tokenizer.from_file(path)
    out = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        if "<" not in t and "[NOTE]" not in t and not path.endswith("_prefix.json") \
                and not path.endswith("_ignore_merges.json"):
            assert encode_parts(tok, t.encode()) == ids, (path, t)
        out.append(ids)
    for b in invalid:
        out.append(encode_parts(tok, b))
    return out


def make():
    os.makedirs(OUT, exist_ok=True)
    cpath = os.path.join(OUT, "corpus.txt")
    with open(cpath, "w", encoding="utf-8") as f:
        f.write(corpus())
    gpt2 = train(cpath, 600, ["<|endoftext|>"], gpt2_pretok(), GPT2_ADDED,
                 [AddedToken("[NOTE]", special=False, normalized=True)])
    g = save(gpt2, "gpt2.json")

    def str_merges(j):
        j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]

    def prefix(j):
        j["pre_tokenizer"]["add_prefix_space"] = True

    def ignore(j):
        j["model"]["ignore_merges"] = True

    files = {
        "gpt2": g,
        "gpt2_strmerges": rewrite(g, os.path.join(OUT, "gpt2_strmerges.json"), str_merges),
        "gpt2_prefix": rewrite(g, os.path.join(OUT, "gpt2_prefix.json"), prefix),
        "gpt2_ignore_merges": rewrite(g, os.path.join(OUT, "gpt2_ignore_merges.json"), ignore),
    }
    bloom = train(cpath, 600, ["<unk>", "<s>", "</s>", "<pad>"], bloom_pretok())
    files["bloom"] = save(bloom, "bloom.json")
    hf = train(cpath, 500, ["<unk>", "<s>", "</s>", "<pad>"], gpt2_pretok())
    files["hf_trained"] = save(hf, "hf_trained.json")
    save(train(cpath, 500, ["<unk>", "<s>", "</s>", "<pad>"], bloom_pretok()),
         "hf_trained_bloom.json")

    texts = [t.encode("utf-8") for t in TEXTS] + INVALID
    exp = {"texts": [hexs(t) for t in texts], "ids": {}}
    for name, path in files.items():
        invalid = INVALID if name in ("gpt2", "bloom", "gpt2_strmerges", "hf_trained") else []
        exp["ids"][name] = expected_ids(path, TEXTS, invalid)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=0)
        f.write("\n")
    print("wrote %s: %d texts (%d with invalid UTF-8), fixtures %s" %
          (OUT, len(texts), len(INVALID), ", ".join(files)))


def same_training(ours_path, hf_name):
    with open(ours_path, encoding="utf-8") as f:
        oj = json.load(f)
    with open(os.path.join(OUT, hf_name), encoding="utf-8") as f:
        hj = json.load(f)
    same_vocab = oj["model"]["vocab"] == hj["model"]["vocab"]
    om, hm = oj["model"]["merges"], hj["model"]["merges"]
    first_diff = next((i for i, (a, b) in enumerate(zip(om, hm)) if a != b), None)
    print("hug vs HF trainer (%s): vocab %s, merges %d vs %d, first difference %s" %
          (hf_name, "identical" if same_vocab else "differs", len(om), len(hm), first_diff))
    return same_vocab and om == hm


def check_hug():
    """Trains with hug, loads the result in HF, compares with HF's trainer."""
    hug = os.path.join(ROOT, "build", "bin", "hug")
    cpath = os.path.join(OUT, "corpus.txt")
    out = os.path.join(OUT, "hug_trained.json")
    subprocess.run([hug, "tokenizer", "train", "--quiet", "--vocab-size", "500", "--out", out,
                    cpath], check=True)
    bloom_out = "/tmp/hug_trained_bloom.json"
    subprocess.run([hug, "tokenizer", "train", "--quiet", "--vocab-size", "500",
                    "--pre-tokenizer", "bloom", "--out", bloom_out, cpath], check=True)
    same = same_training(out, "hf_trained.json")
    same &= same_training(bloom_out, "hf_trained_bloom.json")
    ours = Tokenizer.from_file(out)
    ids = [ours.encode(t, add_special_tokens=False).ids for t in TEXTS]
    ids += [encode_parts(ours, b) for b in INVALID]
    with open(os.path.join(OUT, "hug_trained_expected.json"), "w") as f:
        json.dump({"ids": ids}, f, indent=0)
        f.write("\n")
    corpus_ids = ours.encode(open(cpath, encoding="utf-8").read(), add_special_tokens=False).ids
    print("HF loads hug_trained.json: vocab %d, corpus encodes to %d ids" %
          (ours.get_vocab_size(), len(corpus_ids)))
    return same


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

PIPE_TEXTS = TEXTS + [
    "CRLF line\r\nnext\r\n\r\nend\r",
    "combining e\u0301 a\u0308 n\u0303 vs é ä ñ; ligature ﬁ ﬂ; width ＡＢＣ １２３; ℌ ⅷ",
    "İstanbul ΣΟΦΟΣ Straße ǅ DŽ",
    "digits 1 12 123 1234 12345 123456 1234567 ٣٤٥ ৭৮",
    "emoji 😀😃 👩🏽‍💻 🧑‍🤝‍🧑 ☃️",
    "CJK 漢字かなカナ한글 𠀀𠀁 〜「」",
    "  two leading, and   inner    runs  ",
    "hyphen-ated words - and -- dashes - end-",
    "<s>begin</s> <unk> <|begin_of_text|>x<|end_of_text|> <|im_start|>user\nhi<|im_end|>",
    "<bos><start_of_turn>user\nhello<end_of_turn>\n<eos> <|endoftext|> [SW] a[SW]b [SW]!",
    "▁already▁has▁metaspace ▁ ▁▁",
]


def bpe_json(tok):
    return json.loads(tok.to_str())


def byte_fallback_vocab(j, specials):
    """Puts specials, then <0x00>..<0xFF>, then the trained tokens, as
    SentencePiece-converted tokenizers lay out their vocabularies."""
    trained = [t for t, _ in sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
               if t not in specials]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t in trained:
        if t not in vocab:
            vocab[t] = len(vocab)
    j["model"]["vocab"] = vocab
    j["added_tokens"] = [dict(a, id=vocab[a["content"]]) for a in j["added_tokens"]]
    return j


def train_pipeline(cpath, vocab, special, pretok=None, normalizer=None, limit_alphabet=None,
                   byte_level=True):
    tok = Tokenizer(models.BPE(unk_token=None if byte_level else "<unk>",
                               byte_fallback=not byte_level, fuse_unk=not byte_level))
    if normalizer is not None:
        tok.normalizer = normalizer
    if pretok is not None:
        tok.pre_tokenizer = pretok
    kw = dict(vocab_size=vocab, special_tokens=special, show_progress=False)
    if byte_level:
        kw["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
    if limit_alphabet:
        kw["limit_alphabet"] = limit_alphabet
    tok.train([cpath], trainers.BpeTrainer(**kw))
    return tok


def template(single, specials_ids):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": x, "type_id": 0}} if x != "$A" else
                       {"Sequence": {"id": "A", "type_id": 0}} for x in single],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {k: {"id": k, "ids": [v], "tokens": [k]} for k, v in specials_ids.items()}}


def from_json(j):
    return Tokenizer.from_str(json.dumps(j, ensure_ascii=False))


def sp_decoder(strip=True):
    d = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
         {"type": "ByteFallback"}, {"type": "Fuse"}]
    if strip:
        d.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    return {"type": "Sequence", "decoders": d}


def pipelines(cpath):
    """name -> tokenizers.Tokenizer, one per pipeline shape."""
    out = {}
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    # Llama 3: its regex, ignore_merges, <|begin_of_text|> template
    t = train_pipeline(cpath, 700, ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                    "<|end_header_id|>", "<|eot_id|>"], pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False), bl]))
    j = bpe_json(t)
    j["model"]["ignore_merges"] = True
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True}
    j["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        template(["<|begin_of_text|>", "$A"], {"<|begin_of_text|>": 0})]}
    out["llama3"] = from_json(j)
    # Qwen2: NFC, its regex, no template
    t = train_pipeline(cpath, 700, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                       pre_tokenizers.Sequence([pre_tokenizers.Split(
                           Regex(QWEN2_REGEX), behavior="isolated", invert=False), bl]),
                       normalizers.NFC())
    j = bpe_json(t)
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False,
                           "trim_offsets": False, "use_regex": False}
    out["qwen2"] = from_json(j)
    # Llama 2 / Mistral: SentencePiece-style byte_fallback BPE
    sp = ["<unk>", "<s>", "</s>"]
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t = train_pipeline(cpath, 500, sp, None, norm, limit_alphabet=90, byte_level=False)
    j = byte_fallback_vocab(bpe_json(t), sp)
    j["decoder"] = sp_decoder()
    j["post_processor"] = template(["<s>", "$A"], {"<s>": 1})
    out["llama2"] = from_json(j)
    # the same model behind the newer Metaspace pre-tokenizer (prepend "first")
    j2 = json.loads(json.dumps(j))
    j2["normalizer"] = None
    j2["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                           "split": False}
    out["mistral_metaspace"] = from_json(j2)
    # Metaspace splitting at every replacement, prepend always, its decoder
    j3 = json.loads(json.dumps(j))
    j3["normalizer"] = None
    j3["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                           "split": True}
    j3["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"},
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}]}
    j3["post_processor"] = template(["<s>", "$A", "</s>"], {"<s>": 1, "</s>": 2})
    out["metaspace_split"] = from_json(j3)
    # Gemma: Replace(" ", "▁"), no prefix, <bos> template, turn tokens
    sp = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    t = train_pipeline(cpath, 500, sp, None, normalizers.Replace(" ", "▁"), limit_alphabet=90,
                       byte_level=False)
    j = byte_fallback_vocab(bpe_json(t), sp)
    j["decoder"] = sp_decoder(strip=False)
    j["post_processor"] = template(["<bos>", "$A"], {"<bos>": 2})
    out["gemma"] = from_json(j)
    # GPT-2 with special tokens in the text: single_word, lstrip/rstrip,
    # a normalized non-special token, and an EOS template
    t = train_pipeline(cpath, 500, ["<|endoftext|>"], pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=True))
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, special=True,
                                     normalized=False),
                          AddedToken("[SW]", single_word=True, special=True, normalized=False)])
    t.add_tokens([AddedToken("<s>", special=False, normalized=True)])
    j = bpe_json(t)
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": True}
    j["post_processor"] = template(["$A", "<|endoftext|>"], {"<|endoftext|>": 0})
    out["gpt2_special"] = from_json(j)
    # the GPT-2 and BLOOM regexes through Oniguruma (an equivalent
    # spelling that hug does not match by hand)
    t = train_pipeline(cpath, 500, ["<|endoftext|>"], pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("(?:" + GPT2_REGEX + ")"), behavior="isolated"), bl]))
    out["gpt2_onig"] = t
    t = train_pipeline(cpath, 500, ["<unk>"], pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("(?:" + BLOOM_REGEX + ")"), behavior="isolated"), bl]))
    out["bloom_onig"] = t
    # the other pre-tokenizers and normalizers, byte-level
    t = train_pipeline(cpath, 500, ["<|endoftext|>"], pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\s+"), behavior="merged_with_next"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)]),
        normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase(),
                              normalizers.Strip(left=True, right=True)]))
    out["mix_bytelevel"] = t
    t = train_pipeline(cpath, 500, ["<|endoftext|>"], pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=False), bl]),
        normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\d"), "0")]))
    out["whitespace"] = t
    t = train_pipeline(cpath, 500, ["<|endoftext|>"], pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(r"\p{L}+"), behavior="removed", invert=True),
        pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="contiguous", invert=True), bl]),
        normalizers.NFD())
    out["split_invert"] = t
    t = train_pipeline(cpath, 500, ["<unk>"], pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"(?<=\s)|x*"), behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"\b"), behavior="merged_with_previous"), bl]))
    out["empty_matches"] = t
    return out


def make_pipelines():
    cpath = os.path.join(OUT, "corpus.txt")
    pdir = os.path.join(OUT, "pipelines")
    os.makedirs(pdir, exist_ok=True)
    texts = [t.encode("utf-8") for t in PIPE_TEXTS] + INVALID
    exp = {"texts": [hexs(t) for t in texts], "fixtures": {}}
    for name, tok in pipelines(cpath).items():
        path = os.path.join(pdir, name + ".json")
        tok.save(path, pretty=False)
        tok = Tokenizer.from_file(path)
        f = {"ids": [], "ids_special": [], "decoded": [], "decoded_skip": []}
        for t in PIPE_TEXTS:
            ids = tok.encode(t, add_special_tokens=False).ids
            f["ids"].append(ids)
            f["ids_special"].append(tok.encode(t, add_special_tokens=True).ids)
            f["decoded"].append(hexs(tok.decode(ids, skip_special_tokens=False).encode()))
            f["decoded_skip"].append(hexs(tok.decode(ids, skip_special_tokens=True).encode()))
        # random id sequences (byte tokens, specials, pieces of characters):
        # the decoders on whatever a model may emit, invalid UTF-8 included
        rng = random.Random(sum(map(ord, name)))
        nv = tok.get_vocab_size(with_added_tokens=True)
        f["random_ids"], f["random_decoded"], f["random_decoded_skip"] = [], [], []
        for _ in range(24):
            ids = [rng.randrange(nv) for _ in range(rng.randint(1, 12))]
            f["random_ids"].append(ids)
            f["random_decoded"].append(hexs(tok.decode(ids, skip_special_tokens=False).encode()))
            f["random_decoded_skip"].append(hexs(tok.decode(ids, skip_special_tokens=True).encode()))
        j = json.loads(tok.to_str())
        if tok.normalizer is None and j["pre_tokenizer"] and \
                "ByteLevel" in json.dumps(j["pre_tokenizer"]):
            for b in INVALID:
                f["ids"].append(encode_parts(tok, b))
        exp["fixtures"][name] = f
    with open(os.path.join(pdir, "EXPECTED.json"), "w") as fh:
        json.dump(exp, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote %s: %d fixtures, %d texts" % (pdir, len(exp["fixtures"]), len(texts)))


# The chat templates hug transcribes (data/chat_template.c), as the model
# families publish them, with {% generation %} around what is trained on
# (which renders nothing; transformers' return_assistant_tokens_mask reads
# it).
CHAT_TEMPLATES = {
    "chatml": ("qwen2", None, None,
               "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
               "{% if message['role'] == 'assistant' %}{% generation %}"
               "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
               "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
               "{{ '\\n' }}{% endfor %}"),
    "llama3": ("llama3", "<|begin_of_text|>", "<|eot_id|>",
               "{% set loop_messages = messages %}{% for message in loop_messages %}"
               "{% set header = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' %}"
               "{% if loop.index0 == 0 %}{% set header = bos_token + header %}{% endif %}"
               "{{ header }}{% if message['role'] == 'assistant' %}{% generation %}"
               "{{ message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
               "{% else %}{{ message['content'] | trim + '<|eot_id|>' }}{% endif %}{% endfor %}"),
    "mistral": ("llama2", "<s>", "</s>",
                "{{ bos_token }}{% for message in messages %}"
                "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
                "{% elif message['role'] == 'assistant' %}{% generation %}"
                "{{ message['content'] + eos_token }}{% endgeneration %}"
                "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
                "{% endif %}{% endfor %}"),
    "gemma": ("gemma", "<bos>", "<eos>",
              "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
              "{{ raise_exception('System role not supported') }}{% endif %}"
              "{% for message in messages %}"
              "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
              "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
              "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
              "{% else %}{% set role = message['role'] %}{% endif %}"
              "{{ '<start_of_turn>' + role + '\\n' }}{% if role == 'model' %}{% generation %}"
              "{{ message['content'] | trim + '<end_of_turn>' }}{% endgeneration %}"
              "{% else %}{{ message['content'] | trim + '<end_of_turn>' }}{% endif %}"
              "{{ '\\n' }}{% endfor %}"),
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello! What is 12345 + 1?"},
     {"role": "assistant", "content": "It is 12346."}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "  Translate 'cat' to French.\n"},
     {"role": "assistant", "content": " Chat. \n"},
     {"role": "user", "content": "Und auf Deutsch? 日本語でも。"},
     {"role": "assistant", "content": "Katze; 猫 (ねこ) 🐈"}],
    [{"role": "user", "content": "Write two lines.\r\nPlease."},
     {"role": "assistant", "content": "Line one,\nline two.\n\n"},
     {"role": "user", "content": "Thanks"},
     {"role": "assistant", "content": "You're welcome! <3"}],
]


def make_chat():
    from transformers import PreTrainedTokenizerFast
    pdir = os.path.join(OUT, "pipelines")
    exp = {}
    for name, (tok_name, bos, eos, tmpl) in CHAT_TEMPLATES.items():
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(pdir, tok_name + ".json"),
                                      bos_token=bos, eos_token=eos)
        tok.chat_template = tmpl
        convs = []
        for msgs in CONVERSATIONS:
            if name in ("mistral", "gemma") and msgs[0]["role"] == "system":
                msgs = msgs[1:]
            text = tok.apply_chat_template(msgs, tokenize=False)
            d = tok.apply_chat_template(msgs, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert list(d["input_ids"]) == ids, name
            convs.append({"messages": msgs, "text": hexs(text.encode()), "ids": ids,
                          "mask": list(d["assistant_masks"])})
        exp[name] = {"tokenizer": tok_name + ".json", "conversations": convs}
    with open(os.path.join(pdir, "CHAT.json"), "w") as fh:
        json.dump(exp, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
    print("wrote pipelines/CHAT.json: %s" % ", ".join(exp))


if __name__ == "__main__":
    if "--pipelines" in sys.argv:
        make_pipelines()
        make_chat()
        sys.exit(0)
    make()
    make_pipelines()
    make_chat()
    if "--hug" in sys.argv:
        sys.exit(0 if check_hug() else 1)
