"""Text generation over genprm's paged, prefix-shared KV cache.

    engine = genprm.Engine("path/to/model", device="cpu", dtype="float32", kv_blocks=1024)
    params = genprm.SamplingParams(temperature=0.6, top_p=0.95, top_k=20, max_tokens=256,
                                   stop=["</analyze>\\n"], seed=0)
    outs = engine.generate(["Hello", [1, 2, 3]], params, n=4)

Outputs (``GenerationOutput``, one per prompt, in order):
  * ``.samples``: the ``n`` samples (``SampleOutput``: ``.token_ids``, ``.text``,
    ``.finish_reason`` in {"stop", "length", "abort"}, ``.stop_reason`` (the stop string, or the
    stop token id as text; None otherwise), ``.logprobs`` (None unless requested: one
    ``TokenLogprobs`` per generated token with ``.token``, ``.logprob``, ``.top`` [(id, logprob)],
    ``.tracked`` [one per tracked id])).
  * ``.token_ids``, ``.text``, ``.finish_reason``, ``.stop_reason``, ``.logprobs``: those of the
    first sample (the whole answer when n == 1).
  * ``.prompt_ids``, ``.cached_prompt_tokens`` (found in the prefix cache), ``.error`` (None, or
    why the request failed, e.g. it can never fit in the KV cache), ``.request_id``.

Prompts are token-id lists or strings (tokenized without special tokens: chat templates already
contain them). Everything sharing a prefix shares its KV blocks: n samples prefill once, and a
re-submitted conversation recomputes only from the first token that differs.
"""
from __future__ import annotations

import re
from collections import deque
from typing import Callable, Iterator, List, Optional, Sequence, Union

from . import _core

SamplingParams = _core.SamplingParams
GenerationOutput = _core.GenerationOutput
SampleOutput = _core.SampleOutput
TokenLogprobs = _core.TokenLogprobs

Prompt = Union[str, Sequence[int]]

_ENGINE = _core.EngineOptions()  # the defaults, defined once in C++
_PLACE = _core.GenPRMOptions()   # device and dtype defaults

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def _parse_bytes(value: Union[int, str, None]) -> Optional[int]:
    if value is None or isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"kv_memory: cannot read {value!r} as a size (e.g. 2000000000, '2GB', '1.5GiB')")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _is_single_prompt(prompts) -> bool:
    if isinstance(prompts, str):
        return True
    seq = list(prompts)
    return len(seq) > 0 and all(isinstance(t, int) or hasattr(t, "__index__") and not isinstance(t, (str, list))
                                for t in seq)


class TextStream:
    """Iterates over the text of one request as it becomes final; ``.output`` holds the
    ``GenerationOutput`` once the iteration has ended."""

    def __init__(self, engine: "Engine", prompt: Prompt, params: SamplingParams):
        self._engine = engine
        self._pieces: deque = deque()
        self.output: Optional[GenerationOutput] = None

        def on_done(out):
            self.output = out

        self.request_id = engine._core.submit(_as_prompt(prompt), params, 1, on_done,
                                              lambda i, piece: self._pieces.append(piece))

    def __iter__(self) -> Iterator[str]:
        while True:
            while self._pieces:
                yield self._pieces.popleft()
            if self.output is not None:
                if self.output.error is not None:
                    raise RuntimeError(f"request {self.request_id} failed: {self.output.error}")
                return
            if not self._engine._core.poll() and self.output is None and not self._pieces:
                raise RuntimeError(f"stream: the engine went idle before request {self.request_id} completed")

    def cancel(self) -> None:
        self._engine.cancel(self.request_id)


def _as_prompt(p: Prompt):
    if isinstance(p, str):
        return p
    return [int(t) for t in p]


class Engine:
    """A Qwen2 model directory served by genprm's continuous-batching engine.

    Options are the fields of ``genprm.EngineOptions`` (defaults from C++).
    kv_blocks: KV blocks of ``block_size`` tokens; or kv_memory: a byte budget (int or '2GB');
    neither: 1024 blocks. max_batch_tokens: new tokens per forward step (chunked prefill).
    The tokenizer is loaded from the model directory (or ``tokenizer_dir``) when it has a
    tokenizer.json; without one, prompts must be token ids and stop strings are unavailable.
    ``prefix_caching=False`` disables reuse across requests (a baseline for measurements).
    ``decode_graphs``: "auto" (decode steps as CUDA graphs on a GPU, when genprm is built with
    its CUDA kernels), "off", or "static" (the same fixed buffers without capture, any device).
    """

    def __init__(self, model_dir: str, device: str = _PLACE.device, dtype: str = _PLACE.dtype,
                 kv_blocks: Optional[int] = None, kv_memory: Union[int, str, None] = None,
                 block_size: int = _ENGINE.block_size, max_batch_tokens: int = _ENGINE.max_batch_tokens,
                 max_running_seqs: int = _ENGINE.max_running_seqs, seed: int = _ENGINE.seed,
                 prefix_caching: bool = _ENGINE.prefix_caching, tokenizer_dir: Optional[str] = None,
                 decode_graphs: str = _ENGINE.decode_graphs):
        kv_memory = _parse_bytes(kv_memory)
        for name, value in (("kv_blocks", kv_blocks), ("kv_memory", kv_memory)):
            if value is not None and value <= 0:
                raise ValueError(f"Engine: {name} must be positive, got {value}")
        opts = _core.EngineOptions(kv_blocks=kv_blocks, kv_memory_bytes=kv_memory, block_size=block_size,
                                   max_batch_tokens=max_batch_tokens, max_running_seqs=max_running_seqs, seed=seed,
                                   prefix_caching=prefix_caching, decode_graphs=decode_graphs)
        self._core = _core.Engine(str(model_dir), device, dtype, opts,
                                  None if tokenizer_dir is None else str(tokenizer_dir))

    # --- synchronous helpers -------------------------------------------------------------
    def generate(self, prompts: Union[Prompt, Sequence[Prompt]],
                 params: Union[SamplingParams, Sequence[SamplingParams], None] = None,
                 n: int = 1) -> List[GenerationOutput]:
        """Generates for one prompt or a list of prompts; returns one output per prompt."""
        plist = [prompts] if _is_single_prompt(prompts) else list(prompts)
        if not plist:
            raise ValueError("generate: no prompt given")
        if params is None or isinstance(params, SamplingParams):
            params_list = [params or SamplingParams()] * len(plist)
        else:
            params_list = list(params)
            if len(params_list) != len(plist):
                raise ValueError(f"generate: {len(params_list)} SamplingParams for {len(plist)} prompts")
        results: List[Optional[GenerationOutput]] = [None] * len(plist)

        def keep(i):
            def cb(out):
                results[i] = out
            return cb

        for i, (p, sp) in enumerate(zip(plist, params_list)):
            self._core.submit(_as_prompt(p), sp, n, keep(i))
        while any(r is None for r in results):
            if not self._core.poll() and any(r is None for r in results):
                raise RuntimeError("generate: the engine went idle before every request completed")
        return results  # type: ignore[return-value]

    def stream(self, prompt: Prompt, params: Optional[SamplingParams] = None) -> TextStream:
        """``for piece in engine.stream(prompt, params): ...`` yields text as it becomes final
        (held back while it could still be the start of a stop string)."""
        if not self._core.has_tokenizer:
            raise ValueError("stream: the engine has no tokenizer (no tokenizer.json in the model directory)")
        return TextStream(self, prompt, params or SamplingParams())

    # --- asynchronous interface (the Generator concept) ------------------------------------
    def submit(self, prompt: Prompt, params: Optional[SamplingParams] = None, n: int = 1,
               on_done: Optional[Callable[[GenerationOutput], None]] = None,
               on_text: Optional[Callable[[int, str], None]] = None) -> int:
        """Queues a request and returns its id; callbacks run inside poll()."""
        return self._core.submit(_as_prompt(prompt), params or SamplingParams(), n, on_done, on_text)

    def poll(self) -> bool:
        """One scheduler step; False when nothing is left to do."""
        return self._core.poll()

    def run_until_idle(self) -> None:
        self._core.run_until_idle()

    def cancel(self, request_id: int) -> None:
        self._core.cancel(request_id)

    def stats(self) -> dict:
        """Counters: prompt tokens submitted/computed/cached, generated tokens, preemptions,
        forward/decode steps, batch sizes, KV blocks in use/free/cached, evictions."""
        return self._core.stats()

    @property
    def has_tokenizer(self) -> bool:
        return self._core.has_tokenizer

    @property
    def vocab_size(self) -> int:
        return self._core.vocab_size

    def __repr__(self) -> str:
        s = self._core.stats()
        return (f"Engine(device={self._core.device}, dtype={self._core.dtype}, blocks={s['blocks_total']}x"
                f"{s['block_size']}, running={s['running']}, waiting={s['waiting']})")
