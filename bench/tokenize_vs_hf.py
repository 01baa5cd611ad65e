#!/usr/bin/env python3
"""tokenize_vs_hf.py: `hug prepare` throughput against Hugging Face
tokenizers' encode_batch on the same text, tokenizer and thread count.

    make build/bin/hug && pip install tokenizers
    python3 bench/tokenize_vs_hf.py [--threads N] [--mb 8] [TOKENIZER.json ...]

The text: Python's standard library sources (as found on this machine, in
sorted order, cut to --mb MB), documents split at blank lines as `hug
prepare --format text` splits them. The library encodes the documents with
encode_batch(add_special_tokens=True) under RAYON_NUM_THREADS=N (timed
alone); hug runs the whole `hug prepare --threads N` (reading, encoding,
writing shards). Prints MB/s of input for each and the ratio hug / HF.
Default tokenizers: the pipeline fixtures of tests/fixtures/tokenizer/.
"""
import argparse
import glob
import os
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus(mb):
    out, n = [], 0
    for p in sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "**", "*.py"),
                              recursive=True)):
        try:
            t = open(p, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        out.append(t)
        n += len(t.encode())
        if n >= mb << 20:
            break
    return "\n\n".join(out)


def docs_of(text):
    """Documents as hug prepare --format text cuts them: at blank lines
    (spaces, tabs and CR only), without the last newline."""
    docs, cur = [], []
    for line in text.split("\n"):
        if line.strip(" \t\r") == "":
            if cur:
                docs.append("\n".join(cur).removesuffix("\r"))
                cur = []
        else:
            cur.append(line)
    if cur:
        docs.append("\n".join(cur).removesuffix("\r"))
    return docs


def hf_time(tok_path, docs, threads):
    code = ("import sys,time,pickle;from tokenizers import Tokenizer;"
            "t=Tokenizer.from_file(sys.argv[1]);d=pickle.load(open(sys.argv[2],'rb'));"
            "t.encode_batch(d[:200]);s=time.perf_counter();"
            "e=t.encode_batch(d,add_special_tokens=True);"
            "print(time.perf_counter()-s, sum(len(x.ids) for x in e))")
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        import pickle
        pickle.dump(docs, f)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    out = subprocess.run([sys.executable, "-c", code, tok_path, f.name], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    os.unlink(f.name)
    return float(out[0]), int(out[1])


def hug_time(tok_path, text_path, threads):
    hug = os.path.join(ROOT, "build", "bin", "hug")
    with tempfile.TemporaryDirectory() as d:
        s = time.perf_counter()
        out = subprocess.run([hug, "prepare", "--tokenizer", tok_path, "--out", d + "/out",
                              "--format", "text", "--threads", str(threads), "--quiet",
                              text_path], check=True, capture_output=True, text=True).stdout
        sec = time.perf_counter() - s
        return sec, int(out.split(" tokens")[0].split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mb", type=int, default=8)
    ap.add_argument("tokenizers", nargs="*")
    a = ap.parse_args()
    toks = a.tokenizers or [os.path.join(ROOT, "tests/fixtures/tokenizer/pipelines", n + ".json")
                            for n in ("llama3", "qwen2", "llama2", "gemma")] + \
        [os.path.join(ROOT, "tests/fixtures/tokenizer/gpt2.json")]
    text = corpus(a.mb)
    docs = docs_of(text)
    mb = len(text.encode()) / 1e6
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
    print("%.1f MB, %d documents, %d thread(s)" % (mb, len(docs), a.threads))
    for t in toks:
        hf_s, n_ids = hf_time(t, docs, a.threads)
        hug_s, hug_ids = min(hug_time(t, f.name, a.threads) for _ in range(2))
        # hug adds EOS to each document (unless the template ends with it)
        print("%-22s HF encode_batch %7.2f MB/s   hug prepare %7.2f MB/s   ratio %.2f  "
              "(ids: HF %d + %d EOS, hug %d)" % (os.path.basename(t), mb / hf_s, mb / hug_s,
                                                 hf_s / hug_s, n_ids, len(docs), hug_ids))
    os.unlink(f.name)


if __name__ == "__main__":
    main()
