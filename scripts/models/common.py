"""Shared pieces of the tiny-model training scripts (tokenizer, policy, GenPRM).

Everything here is deterministic: data come from seeded generators, training runs with fixed
seeds and a fixed thread count, and the outputs are written in a fixed order.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "python" / "genprm" / "models"  # shipped inside the package
TOKENIZER_DIR = MODELS / "arith-tokenizer"


def load_synthetic():
    """genprm.synthetic, loaded by path (it needs only the standard library, not the build)."""
    spec = importlib.util.spec_from_file_location("genprm_synthetic", ROOT / "python" / "genprm" / "synthetic.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["genprm_synthetic"] = mod
    spec.loader.exec_module(mod)
    return mod


S = load_synthetic()

# --- the DeepSeek-R1-Distill chat format (tokenizer_config.json's chat_template) -------------
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
SPECIAL_TOKENS = [EOS, USER, ASSISTANT, BOS, "<|EOT|>", "<think>", "</think>"]
GENERATION_PROMPT = ASSISTANT + "<think>\n"


def render_r1(messages: Sequence[Tuple[str, str]], add_generation_prompt: bool) -> str:
    """The R1-Distill template over (role, content) turns (checked against jinja2 rendering of
    the real template when the tokenizer is made)."""
    system = ""
    for role, content in messages:
        if role == "system":
            system = content
    out = BOS + system
    for role, content in messages:
        if role == "user":
            out += USER + content
        elif role == "assistant":
            if "</think>" in content:
                content = content.split("</think>")[-1]
            out += ASSISTANT + content + EOS
    if add_generation_prompt:
        out += GENERATION_PROMPT
    return out


# --- the policy's prompts (the forms genprm's search, refinement and RPE build) ---------------
# genprm.search.DEFAULT_INSTRUCTION and the default refine template of search/refine.hpp.
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
REFINE_TEMPLATE = ("{problem}\n\nHere is a previous solution, paragraph by paragraph:\n\n{solution}\n\n"
                   "A reviewer found errors in these paragraphs:\n\n{feedback}\n\n"
                   "Please correct the errors and write a complete revised solution, step by step. "
                   "Put your final answer within \\boxed{}.")

# --- the GenPRM's stage texts (the reference's, as prm/config.hpp defines them) ----------------
PRM_SYSTEM = ("You are a math teacher. Your task is to review and critique the paragraphs in solution "
              "step by step.")
PRM_DIRECT_SYSTEM = ("You are a math teacher. Your task is to review and critique the paragraphs in solution "
                     "directly. Output your judgement in the format of `\\boxed{Yes}` if the paragraph is "
                     "correct, or `\\boxed{No}` if the paragraph is incorrect.")
ANALYZE_OPENING = "<analyze>\nLet's analyze the Paragraph {t} step by step: "
VERIFY_OPENING = "<verify>\nLet's use python code to find any potential error:\n```python\n"
OUTPUT_OPENING = S.OUTPUT_OPENING
CODE_OUTPUT_OPEN = "[Code Output]\n\n```\n"
CODE_OUTPUT_CLOSE = "\n```\n"


def prm_base_prompt(system: str, problem: str, steps: Sequence[str], history: Sequence[str], t: int) -> str:
    """The reference's prompt of step t (1-based) before the stage opening: the template over
    system, user 1, assistant 1, ..., user t, without a generation prompt."""
    turns = [("system", system)]
    for i in range(t):
        turns.append(("user", problem + "\n" + steps[0] if i == 0 else steps[i]))
        if i + 1 < t:
            turns.append(("assistant", history[i]))
    text = render_r1(turns, add_generation_prompt=False)
    return text[:-len(EOS)] if text.endswith(EOS) else text


# --- tokenizer --------------------------------------------------------------------------------
def load_tokenizer(path: Path = TOKENIZER_DIR):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(path / "tokenizer.json"))


SPLIT = ("", None)  # a piece marking where the engine's prompt ends and generation begins


def encode_with_mask(tok, pieces: Sequence[Tuple[str, Optional[bool]]]) -> Tuple[List[int], List[int]]:
    """Token ids of the concatenated pieces and a 0/1 mask: 1 for tokens that start inside a piece
    marked True (the text the model learns to write). At a SPLIT piece the text before and the
    text after are encoded apart, as at inference, where the prompt is encoded whole and the model
    then writes its own tokens (so a prompt ending in a space is followed by a word without its
    leading space, not by the merged " word" token)."""
    chunks: List[List[Tuple[str, bool]]] = [[]]
    for piece, learn in pieces:
        if learn is None:
            chunks.append([])
        else:
            chunks[-1].append((piece, learn))
    ids: List[int] = []
    mask: List[int] = []
    for chunk in chunks:
        text, spans, pos = "", [], 0
        for piece, learn in chunk:
            if learn:
                spans.append((pos, pos + len(piece)))
            text += piece
            pos += len(piece)
        if not text:
            continue
        enc = tok.encode(text, add_special_tokens=False)
        ids.extend(enc.ids)
        mask.extend(1 if any(a <= start < b for a, b in spans) else 0 for (start, _end) in enc.offsets)
    return ids, mask


# --- training ---------------------------------------------------------------------------------
def qwen2_config(vocab_size: int, hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int,
                 eos_id: int, bos_id: int, max_positions: int = 2048):
    from transformers import Qwen2Config
    return Qwen2Config(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                       max_position_embeddings=max_positions, rope_theta=10000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, bos_token_id=bos_id, eos_token_id=eos_id,
                       torch_dtype="float32", use_sliding_window=False)


class TinyQwen2:
    """Builds a torch module that computes exactly Qwen2ForCausalLM's forward (RMSNorm, rotary
    embedding in HF's rotate-half layout, GQA attention with q/k/v biases, SwiGLU, tied head) with
    fewer small operations than transformers' implementation (fused RMSNorm, one causal
    scaled-dot-product attention call, logits only where the loss is taken). Its parameter names
    are Hugging Face's, so its state_dict loads into Qwen2ForCausalLM unchanged."""

    @staticmethod
    def make(config):
        import torch
        import torch.nn.functional as F
        from torch import nn

        d, h, kvh = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
        hd = d // h
        eps = config.rms_norm_eps
        rp = getattr(config, "rope_parameters", None) or {}
        theta = float(rp.get("rope_theta", getattr(config, "rope_theta", 10000.0)))

        class Attn(nn.Module):
            def __init__(self):
                super().__init__()
                self.q_proj = nn.Linear(d, h * hd)
                self.k_proj = nn.Linear(d, kvh * hd)
                self.v_proj = nn.Linear(d, kvh * hd)
                self.o_proj = nn.Linear(h * hd, d, bias=False)

        class Mlp(nn.Module):
            def __init__(self):
                super().__init__()
                self.gate_proj = nn.Linear(d, config.intermediate_size, bias=False)
                self.up_proj = nn.Linear(d, config.intermediate_size, bias=False)
                self.down_proj = nn.Linear(config.intermediate_size, d, bias=False)

        class Norm(nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = nn.Parameter(torch.ones(d))

            def forward(self, x):
                return F.rms_norm(x, (d,), self.weight, eps)

        class Layer(nn.Module):
            def __init__(self):
                super().__init__()
                self.self_attn = Attn()
                self.mlp = Mlp()
                self.input_layernorm = Norm()
                self.post_attention_layernorm = Norm()

        class Body(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed_tokens = nn.Embedding(config.vocab_size, d)
                self.layers = nn.ModuleList(Layer() for _ in range(config.num_hidden_layers))
                self.norm = Norm()

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.model = Body()
                for mod in self.modules():
                    if isinstance(mod, (nn.Linear, nn.Embedding)):
                        nn.init.normal_(mod.weight, std=0.02)
                    if isinstance(mod, nn.Linear) and mod.bias is not None:
                        nn.init.zeros_(mod.bias)

            def forward(self, ids, labels):
                b, n = ids.shape
                pos = torch.arange(n, dtype=torch.float32)
                inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
                ang = torch.outer(pos, inv)
                cos = torch.cat([ang.cos(), ang.cos()], -1)
                sin = torch.cat([-ang.sin(), ang.sin()], -1)  # rotate_half folded into the sign

                def rope(x):  # x: b, heads, n, hd
                    x2 = torch.cat([x[..., hd // 2:], x[..., :hd // 2]], -1)
                    return x * cos + x2 * sin

                x = self.model.embed_tokens(ids)
                for L in self.model.layers:
                    a = L.input_layernorm(x)
                    q = L.self_attn.q_proj(a).view(b, n, h, hd).transpose(1, 2)
                    k = L.self_attn.k_proj(a).view(b, n, kvh, hd).transpose(1, 2)
                    v = L.self_attn.v_proj(a).view(b, n, kvh, hd).transpose(1, 2)
                    o = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True, enable_gqa=True)
                    x = x + L.self_attn.o_proj(o.transpose(1, 2).reshape(b, n, h * hd))
                    m = L.post_attention_layernorm(x)
                    x = x + L.mlp.down_proj(F.silu(L.mlp.gate_proj(m)) * L.mlp.up_proj(m))
                x = self.model.norm(x)
                # next-token loss where labels are set: position i predicts labels[i + 1]
                tgt = labels[:, 1:]
                keep = tgt != -100
                logits = x[:, :-1][keep] @ self.model.embed_tokens.weight.t()
                return F.cross_entropy(logits.float(), tgt[keep])

        return Model()


def train(config, sequences: List[Tuple[List[int], List[int]]], *, steps: int, batch_tokens: int, lr: float,
          seed: int, log: Callable[[str], None], warmup: int = 100, threads: int = 2,
          time_limit_s: Optional[float] = None, bf16: bool = False) -> Tuple[object, Dict[str, object]]:
    """Trains a Qwen2 model from scratch on (ids, mask) sequences: AdamW, linear warm-up then
    cosine decay, loss on masked tokens only, batches of about ``batch_tokens`` tokens drawn from
    length-sorted buckets (right padding: with causal attention no real token sees a pad).
    Returns a transformers Qwen2ForCausalLM holding the trained weights, and a record."""
    import torch
    from transformers import Qwen2ForCausalLM
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = random.Random(seed)
    model = TinyQwen2.make(config)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-8)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    batches: List[List[int]] = []
    cur: List[int] = []
    for i in order:
        n = len(sequences[i][0])
        if cur and (len(cur) + 1) * max(n, len(sequences[cur[-1]][0])) > batch_tokens:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    pad = config.eos_token_id
    t0, c0 = time.time(), time.process_time()
    losses: List[float] = []
    history = []
    seen_tokens = 0
    step = 0
    while step < steps:
        rng.shuffle(batches)
        for b in batches:
            if step >= steps:
                break
            width = max(len(sequences[i][0]) for i in b)
            ids = torch.full((len(b), width), pad, dtype=torch.long)
            labels = torch.full((len(b), width), -100, dtype=torch.long)
            for r, i in enumerate(b):
                s, m = sequences[i]
                ids[r, :len(s)] = torch.tensor(s)
                labels[r, :len(s)] = torch.tensor([x if keep else -100 for x, keep in zip(s, m)])
            scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps)))
            for g in opt.param_groups:
                g["lr"] = lr * max(scale, 0.02)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(ids, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            seen_tokens += sum(len(sequences[i][0]) for i in b)
            step += 1
            if step % 100 == 0 or step == steps or step == 10:
                avg = sum(losses[-100:]) / len(losses[-100:])
                history.append({"step": step, "loss": round(avg, 4)})
                log(f"step {step}/{steps} loss {avg:.4f} tokens {seen_tokens} {time.time() - t0:.0f}s "
                    f"(cpu {time.process_time() - c0:.0f}s)")
            if time_limit_s is not None and time.time() - t0 > time_limit_s:
                log(f"time limit {time_limit_s:.0f}s reached at step {step}")
                steps = step
                break
    record = {"steps": step, "tokens_seen": seen_tokens, "train_seconds": round(time.time() - t0, 1),
              "train_cpu_seconds": round(time.process_time() - c0, 1),
              "final_loss": history[-1]["loss"] if history else None, "loss_history": history,
              "threads": threads, "seed": seed, "lr": lr, "batch_tokens": batch_tokens,
              "autocast": "bfloat16" if bf16 else None}
    if warmup != 100:  # recorded only when it is not the default (the shipped records predate it)
        record["warmup"] = warmup
    hf = Qwen2ForCausalLM(config)
    missing, unexpected = hf.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    hf.tie_weights()
    hf.eval()
    # The two implementations agree (same function, so the trained weights mean the same thing).
    probe = torch.tensor([sequences[order[len(order) // 2]][0]])
    with torch.no_grad():
        want = hf(input_ids=probe).logits[0, :-1]
        model.eval()
        lab = probe.clone()
        mine = torch.nn.functional.cross_entropy(want, probe[0, 1:])
        got = model(probe, lab)
    assert abs(float(mine) - float(got)) < 1e-3, (float(mine), float(got))
    return hf, record


def save_model(model, out_dir: Path, tokenizer_dir: Path = TOKENIZER_DIR) -> None:
    """config.json + model.safetensors (float32) + the tokenizer files, as save_pretrained does."""
    import shutil
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in out_dir.glob("*"):
        if f.is_file():
            f.unlink()
    model.save_pretrained(out_dir, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(tokenizer_dir / name, out_dir / name)


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def logger(prefix: str) -> Callable[[str], None]:
    def log(msg: str) -> None:
        print(f"[{prefix}] {msg}", flush=True)
    return log


# --- training texts ---------------------------------------------------------------------------
Pieces = List[Tuple[str, bool]]  # (text, learned?) in order


def policy_prompt(problem: str, form: str) -> str:
    """The prompt forms the policy meets: 'chat' (search: instruction as the system turn),
    'chat-nosys' (RPE: the template's default, no system turn), 'plain' (no chat template)."""
    if form == "chat":
        return render_r1([("system", INSTRUCTION), ("user", problem)], add_generation_prompt=True)
    if form == "chat-nosys":
        return render_r1([("user", problem)], add_generation_prompt=True)
    if form == "plain":
        return f"{problem}\n\n{INSTRUCTION}\n\n"
    raise ValueError(form)


def refine_prompt(problem, previous: Sequence[int], wrong: Sequence[int]) -> str:
    """A revision request as genprm.search.refine builds it (default template, chat-rendered):
    the previous solution stating ``previous`` and, as the critique of each step judged wrong
    (0-based ``wrong``), that step's GenPRM analysis."""
    steps = S.solution_steps(problem, previous)
    feedback = "\n\n".join(
        f"Paragraph {k + 1}: " + (ANALYZE_OPENING.format(t=k + 1)[len("<analyze>\n"):]
                                  + S.verification(problem, previous, k).analysis).replace("\n</analyze>\n", "")
        for k in wrong)
    message = (REFINE_TEMPLATE.replace("{problem}", problem.text).replace("{solution}", "\n\n".join(steps))
               .replace("{feedback}", feedback))
    return render_r1([("system", INSTRUCTION), ("user", message)], add_generation_prompt=True)


def prm_rationale(problem, claimed: Sequence[int], k: int, mode: str, written=None,
                  check: str = "step") -> Tuple[Pieces, str]:
    """The verification of step k (0-based) in `mode` as the verifier assembles it (openings
    written by genprm, the rest by the model; the code output by the sandbox). Returns the pieces
    after the base prompt and the whole assistant text (the next steps' history)."""
    v = S.verification(problem, claimed, k, written, check)
    t = k + 1
    if mode == "full":
        pieces = [(ANALYZE_OPENING.format(t=t), False), (v.analysis, True), (VERIFY_OPENING, False), (v.code, True),
                  (CODE_OUTPUT_OPEN + v.output + CODE_OUTPUT_CLOSE, False), (v.conclusion, True)]
    elif mode == "cot":
        pieces = [(ANALYZE_OPENING.format(t=t), False), (v.analysis, True), (OUTPUT_OPENING, False),
                  (S.judgement_text(v.judgement), True)]
    elif mode == "direct":
        pieces = [(OUTPUT_OPENING, False), (S.judgement_text(v.judgement), True)]
    else:
        raise ValueError(mode)
    return pieces, "".join(p for p, _ in pieces)


def prm_example(problem, claimed: Sequence[int], mode: str, t: int, written=None, check: str = "step") -> Pieces:
    """The training sequence of step t (1-based): the prompt of step t as the verifier builds it
    (this solution's earlier rationales as the assistant turns), then step t's rationale. The
    rationales in the history are learned too (same text, in its history position), so one
    sequence teaches t rationales."""
    steps = S.solution_steps(problem, claimed, written)
    system = PRM_DIRECT_SYSTEM if mode == "direct" else PRM_SYSTEM
    rationales = [prm_rationale(problem, claimed, k, mode, written, check) for k in range(t)]
    history = [text for _, text in rationales[:-1]]
    base = prm_base_prompt(system, problem.text, steps, history, t)
    pieces: Pieces = []
    pos = 0
    for h, (h_pieces, _) in zip(history, rationales):  # the base prompt around each history rationale
        at = base.index(h, pos)
        pieces.append((base[pos:at], False))
        pieces.extend(h_pieces)
        pos = at + len(h)
    pieces.append((base[pos:], False))
    last = rationales[-1][0]
    # the prompt of the first stage (base + its opening) is encoded whole; the model writes on
    return pieces + last[:1] + [SPLIT] + last[1:]


def prm_examples(problem, claimed: Sequence[int], steps: Sequence[str], mode: str,
                 check: str = "step") -> List[Pieces]:
    """Every step's training sequence of one solution."""
    return [prm_example(problem, claimed, mode, t, check=check) for t in range(1, len(steps) + 1)]


def train_main(doc: str, name: str, make_examples: Callable, *, seed: int, shape: Dict[str, int],
               defaults: Dict[str, object], data_record: Dict[str, object],
               add_args: Optional[Callable] = None, configure: Optional[Callable] = None) -> int:
    """The command line of a training script: builds its examples, trains, saves the model with
    the tokenizer and its training.json record (script, data, shape, the run). ``add_args(parser)``
    adds a script's own options; ``configure(args)`` then returns (make_examples, shape,
    data_record) for them."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--steps", type=int, default=defaults["steps"])
    ap.add_argument("--examples", type=int, default=defaults["examples"])
    ap.add_argument("--batch-tokens", type=int, default=defaults["batch_tokens"])
    ap.add_argument("--lr", type=float, default=defaults["lr"])
    ap.add_argument("--warmup", type=int, default=defaults.get("warmup", 100))
    ap.add_argument("--out", default=str(MODELS / f"arith-{name}"))
    if add_args is not None:
        add_args(ap)
    args = ap.parse_args()
    if configure is not None:
        make_examples, shape, data_record = configure(args)
    log = logger(name)
    tok = load_tokenizer()
    data = make_examples(args.examples, seed, tok)
    n_tokens = sum(len(s) for s, _ in data)
    log(f"{len(data)} examples, {n_tokens} tokens, {sum(sum(m) for _, m in data)} learned, "
        f"longest {max(len(s) for s, _ in data)}")
    cfg = qwen2_config(vocab_size=576, eos_id=tok.token_to_id(EOS), bos_id=tok.token_to_id(BOS), **shape)
    model, record = train(cfg, data, steps=args.steps, batch_tokens=args.batch_tokens, lr=args.lr, seed=seed, log=log,
                          warmup=args.warmup)
    out = Path(args.out)
    save_model(model, out)
    record.update({"script": f"scripts/models/train_{name}.py",
                   "data": dict({"examples": len(data), "tokens": n_tokens, "seed": seed}, **data_record),
                   "shape": shape, "parameters": sum(p.numel() for p in model.parameters())})
    write_json(out / "training.json", record)
    log(f"saved to {out}: {record['parameters']} parameters, final loss {record['final_loss']}, "
        f"{record['train_seconds']} s")
    return 0
