"""genprm.math: the labelled corpus through the Python API, extraction, normalisation, errors,
and concurrent use from threads (the grader has no global state)."""
import pathlib
import threading

import pytest

import genprm  # noqa: F401  (loads torch and the core)
from genprm import math as gm

DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / "data"
DATA = DATA_DIR / "math_equiv_cases.tsv"


def load_corpus(path=DATA):
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        cols += [""] * (3 - len(cols))
        assert len(cols) == 3, f"line {n}: {cols}"
        rows.append((n, *cols))
    return rows


CORPUS = load_corpus()
# Issue 17: exact big numbers and the answer forms the grader missed (shared with the C++ test).
EXACT_FORMS = load_corpus(DATA_DIR / "math_equiv_exact_forms.tsv")


def test_corpus_size_and_labels():
    assert len(CORPUS) >= 300
    labels = [r[1] for r in CORPUS]
    assert set(labels) <= {"equal", "not_equal", "unknown"}
    assert labels.count("equal") >= 100 and labels.count("not_equal") >= 80


def test_corpus_verdicts():
    wrong = [(n, p, r, exp, gm.compare(p, r)) for n, exp, p, r in CORPUS if gm.compare(p, r) != exp]
    assert not wrong, "\n".join(f"line {n}: compare({p!r}, {r!r}) = {got}, expected {exp}"
                                for n, p, r, exp, got in wrong)
    for n, exp, p, r in CORPUS:
        assert gm.is_equiv(p, r) == (exp == "equal"), n


def test_is_equiv_many_matches_single_calls():
    preds = [p for _, _, p, _ in CORPUS]
    refs = [r for _, _, _, r in CORPUS]
    assert gm.is_equiv_many(preds, refs) == [gm.is_equiv(p, r) for p, r in zip(preds, refs)]
    with pytest.raises(ValueError, match="same length"):
        gm.is_equiv_many(["1"], [])


@pytest.mark.parametrize("n,expected,prediction,reference", EXACT_FORMS, ids=[f"line{r[0]}" for r in EXACT_FORMS])
def test_exact_numbers_and_forms(n, expected, prediction, reference):
    assert gm.compare(prediction, reference) == expected
    assert gm.compare(reference, prediction) == expected
    assert gm.is_equiv(prediction, reference) == (expected == "equal")


def test_exact_numbers_and_forms_many():
    assert len(EXACT_FORMS) >= 90
    preds = [p for _, _, p, _ in EXACT_FORMS]
    refs = [r for _, _, _, r in EXACT_FORMS]
    assert gm.is_equiv_many(preds, refs) == [exp == "equal" for _, exp, _, _ in EXACT_FORMS]
    assert gm.is_equiv_many(refs, preds) == [exp == "equal" for _, exp, _, _ in EXACT_FORMS]


def test_counted_noun_in_normalize():
    assert gm.normalize("18 eggs") == "18"
    assert gm.normalize("5 hundred") == "5hundred"
    assert gm.normalize("\u22125") == "-5"
    assert gm.normalize("x_{1}") == "x_1"


@pytest.mark.parametrize("text,answer,rule", [
    (r"Hence $\boxed{\frac{3}{4}}$.", r"\frac{3}{4}", "boxed"),
    (r"\boxed{1} and finally \boxed{\{1,2\}}", r"\{1,2\}", "boxed"),
    (r"$\boxed 5$", "5", "boxed"),
    (r"\fbox{x+1}", "x+1", "fbox"),
    ("Final Answer: The final answer is $12$. I hope it is correct.", "12", "final answer"),
    ("So the answer is 3.5.", "3.5", "the answer is"),
    ("She has 5 apples.\n#### 5", "5", "####"),
    ("we get 7 and then 8.25 in total", "8.25", "last number"),
    (r"truncated \boxed{4} then \boxed{\frac{1}{", "4", "boxed"),
])
def test_extract(text, answer, rule):
    assert gm.extract(text) == (answer, rule)
    assert gm.extract_answer(text) == answer


def test_extract_none():
    assert gm.extract_answer("no number here") is None
    assert gm.extract("") is None


def test_normalize_and_compare_strings():
    assert gm.normalize(r"\left( \dfrac12, 3 \right)") == r"(\frac{1}{2},3)"
    assert gm.normalize(r"x = 10\text{ cm}") == "10"
    assert gm.compare("x", "y") == "not_equal"
    assert gm.compare(r"\sqrt{x^2}", "x") == "unknown"
    assert gm.compare(r"\frac{1}{2^{99}}", r"\frac{1}{2^{98}}") == "not_equal"
    with pytest.raises(TypeError):
        gm.is_equiv(1, 2)


def test_threads_agree_with_serial():
    pairs = [(p, r) for _, _, p, r in CORPUS]
    expected = [gm.compare(p, r) for p, r in pairs]
    results = [None] * 4

    def work(k):
        results[k] = [gm.compare(p, r) for p, r in pairs]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)


def test_hostile_inputs_return():
    deep = "(" * 20000 + "1" + ")" * 20000
    assert gm.compare(deep, "1") in ("not_equal", "unknown")
    big = "9" * (1 << 20)
    assert gm.is_equiv(big, big)
    assert not gm.is_equiv(big, "9")
    assert gm.extract_answer(r"\boxed{" * 50000) is None


def _old_split_solution(text, delimiters=("\n\n", "\nStep ")):
    # genprm.search.split_solution as it was written in Python before the C++ splitter
    pieces = [text]
    for d in delimiters:
        keep = d.lstrip("\n")
        nxt = []
        for p in pieces:
            parts = p.split(d)
            nxt.extend([parts[0]] + [keep + q if keep.strip() else q for q in parts[1:]])
        pieces = nxt
    steps = [p.strip() for p in pieces if p.strip()]
    return steps or [""]


def test_step_rules_match_their_python_definitions():
    import random

    from genprm import _core, rpe, search
    rng = random.Random(7)
    atoms = ["\n", "\n\n", "Step ", "\nStep ", " ", "\t", "\u00a0", "\u3000", "\u200b", "x", "é", "the", "\x0b"]
    delimiter_sets = [("\n\n", "\nStep "), ("\n\n", " the"), ("\n \n",), (), ("\nStep ", "\n\n"), ("x", "\n")]
    for _ in range(3000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randrange(12)))
        delims = rng.choice(delimiter_sets)
        assert search.split_solution(text, delims) == _old_split_solution(text, delims), (text, delims)
        parts = text.split("\nStep ")
        steps = rpe.split_steps(text)
        assert steps == parts[:1] + ["Step " + p for p in parts[1:]], text
        assert rpe.join_steps(steps) == text
        assert _core.math.split_steps(text, "paragraphs") == [p for p in text.split("\n\n") if p.strip()], text
    assert search.split_solution("a\n\nb\nStep 2: c\n\n\n") == ["a", "b", "Step 2: c"]
    assert _core.math.split_steps("a;;b; ;", "paragraphs", [";"]) == ["a", "b"]
    with pytest.raises(ValueError, match="empty delimiter"):
        search.split_solution("a", ["\n\n", ""])
    with pytest.raises(ValueError, match="one string"):
        search.split_solution("a", "\n\n")
    with pytest.raises(ValueError, match="step rule"):
        _core.math.split_steps("a", "lines")
