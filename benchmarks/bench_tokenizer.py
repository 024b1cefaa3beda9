"""Tokenizer encode throughput: genprm vs Hugging Face `tokenizers` (and `bpe-qwen` when installed),
single-threaded, on the same ~1 MB mixed corpus (English math prose, LaTeX, Python code, CJK,
emoji) in the same run.

    PYTHONPATH=build/python python benchmarks/bench_tokenizer.py [--mb 1.0] [--repeat 5]

Prints MB/s for each tokenizer and genprm's ratio against each peer, for the whole corpus in one
call and for the corpus as 1 KB documents (one call each). "warm" = best of --repeat runs after
one untimed run (word caches filled); "cold" = first run of a freshly loaded tokenizer. Every
peer's ids are checked against Hugging Face's.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")      # single-threaded peers
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "qwen_tokenizer"

ENGLISH = ("the of and to a in is that for it as with was on be by this are from at or an which we can "
           "find number sum total each step first second then so answer problem solution let value equal "
           "therefore since because must integer positive negative difference product remainder divided "
           "multiply add subtract square root prime factor probability expected triangle circle area "
           "perimeter angle degree side length height width volume rate speed time distance work hours "
           "minutes dollars cents apples students books Jo Kate Paragraph analyze verify correct incorrect "
           "don't it's we'll they're I'm formula compute directly rounding nearest multiple").split()
LATEX = [r"\frac{n(n+1)}{2}", r"\sqrt{x^2+y^2}", r"\boxed{5050}", r"\sum_{k=1}^{100} k", r"x^{2} - 5x + 6 = 0",
         r"\left(\dfrac{a}{b}\right)^2", r"\int_0^1 x\,dx", r"\binom{10}{3}", r"\pi r^2", r"\cdot", r"\leq",
         r"\mathbb{Z}", r"\text{cm}^2", r"45^\circ", r"\{1, 2, 3\}", r"\lim_{n\to\infty}"]
CODE = ["def solve(n):\n    total = 0\n    for i in range(1, n + 1):\n        total += round(i / 10) * 10\n    return total\n",
        "import math\nprint(math.comb(10, 3))\n", "x = [i**2 for i in range(10) if i % 2 == 0]\nprint(sum(x))\n",
        "```python\nfrom sympy import symbols, solve\nx = symbols('x')\nprint(solve(x**2 - 5*x + 6, x))\n```\n",
        "[Code Output]\n\n```\n5050\n```\n", "if (a > b) {\n\treturn a - b;\n} else {\n\treturn 0;\n}\n"]
EMOJI = ["😀", "👍", "👍🏽", "🎉", "✅", "❌", "🤔", "🔥", "💯", "🧮", "📐", "🇺🇸", "👨‍👩‍👧", "❤️"]


def _cjk(rng, n):
    common = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质"
    return "".join(rng.choice(common) for _ in range(n)) + rng.choice(["。", "，", "：", "？"])


def make_corpus(n_bytes, seed=0):
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_bytes:
        r = rng.random()
        if r < 0.45:
            words = [rng.choice(ENGLISH) for _ in range(rng.randrange(5, 30))]
            if rng.random() < 0.5:
                words.insert(rng.randrange(len(words)), str(rng.randrange(0, 100000)))
            s = " ".join(words).capitalize() + rng.choice([". ", ", ", "? ", ".\n\n", ":\n"])
        elif r < 0.6:
            s = "$" + " ".join(rng.choice(LATEX) for _ in range(rng.randrange(1, 5))) + "$ "
        elif r < 0.72:
            s = rng.choice(CODE)
        elif r < 0.9:
            s = _cjk(rng, rng.randrange(5, 40))
        else:
            s = " ".join(rng.choice(EMOJI) for _ in range(rng.randrange(1, 4))) + " "
        parts.append(s)
        size += len(s.encode("utf-8"))
    return "".join(parts)


def timed(fn, repeat):
    fn()  # warm
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import genprm
    import tokenizers

    corpus = make_corpus(int(args.mb * 1e6))
    nbytes = len(corpus.encode("utf-8"))
    docs, cur = [], 0
    while cur < len(corpus):
        docs.append(corpus[cur:cur + 1000])
        cur += 1000
    mb = nbytes / 1e6
    print(f"corpus: {nbytes} bytes ({len(docs)} documents of ~1 KB), single thread, best of {args.repeat}")

    path = str(DATA / "tokenizer.json")
    results = {}

    def bench(name, load, encode_one):
        t0 = time.perf_counter()
        tok = load()
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = encode_one(tok, corpus)
        cold = time.perf_counter() - t0
        whole = timed(lambda: encode_one(tok, corpus), args.repeat)
        per_doc = timed(lambda: [encode_one(tok, d) for d in docs], args.repeat)
        results[name] = dict(ids=ids, load_s=t_load, cold=mb / cold, whole=mb / whole, docs=mb / per_doc)

    bench("genprm", lambda: genprm.Tokenizer.from_file(path), lambda t, s: t.encode(s))
    bench("hf_tokenizers", lambda: tokenizers.Tokenizer.from_file(path),
          lambda t, s: t.encode(s, add_special_tokens=False).ids)
    try:
        import bpe_qwen
        tmp = tempfile.mkdtemp(prefix="bpe_qwen_")
        tj = json.loads(Path(path).read_text(encoding="utf-8"))
        Path(tmp, "vocab.json").write_text(json.dumps(tj["model"]["vocab"], ensure_ascii=False), encoding="utf-8")
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        Path(tmp, "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        bench("bpe_qwen", lambda: bpe_qwen.QwenTokenizer(tmp), lambda t, s: t.encode(s))
    except ImportError:
        print("bpe-qwen: not installed (pip install bpe-qwen) - skipped")

    ref = results["hf_tokenizers"]["ids"]
    print(f"{'tokenizer':<14} {'load s':>7} {'cold MB/s':>10} {'warm MB/s':>10} {'1KB docs MB/s':>14}  ids == HF")
    for name, r in results.items():
        same = r["ids"] == ref
        print(f"{name:<14} {r['load_s']:7.2f} {r['cold']:10.2f} {r['whole']:10.2f} {r['docs']:14.2f}  {same}")
    g = results["genprm"]
    for name, r in results.items():
        if name == "genprm":
            continue
        print(f"ratio genprm / {name}: whole corpus {g['whole'] / r['whole']:.2f}x, "
              f"cold {g['cold'] / r['cold']:.2f}x, 1 KB documents {g['docs'] / r['docs']:.2f}x")
    if g["ids"] != ref:
        print("ERROR: genprm ids differ from Hugging Face", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
