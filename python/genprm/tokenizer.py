"""Hugging Face compatible tokenizer (byte-level BPE of Qwen2/2.5/3 and DeepSeek-R1-Distill-Qwen).

    tok = genprm.Tokenizer.from_pretrained(model_dir)      # tokenizer.json + tokenizer_config.json
    ids = tok.encode("text")                               # list[int], no special tokens added
    text = tok.decode(ids)                                 # str
    prompt = tok.apply_chat_template([{"role": "user", "content": "1+1?"}], add_generation_prompt=True)

Encoding and decoding run in C++ (``include/genprm/tokenizer``) and equal Hugging Face
``tokenizers`` exactly. Chat templates of the DeepSeek-R1 and ChatML families are rendered natively;
any other template (or extra template variables) is rendered from the model's own Jinja template
with jinja2, the way ``transformers``' ``apply_chat_template`` does. The native renderer is checked
once against jinja2 on a probe conversation; if they ever disagree, jinja2 is used.

Invalid UTF-8 (``encode_bytes``) is not an error: each maximal ill-formed subsequence becomes
U+FFFD, as ``bytes.decode("utf-8", "replace")`` does.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Union

from . import _core

_PROBE = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "<think>\nr1\n</think>\n\nA1"},
    {"role": "user", "content": "Q2"},
    {"role": "assistant", "content": "<think>\nr2\n</think>\n\nA2"},
]
_PROBE_NO_SYSTEM = [{"role": "user", "content": "Q"}]


def _special_token_str(value: Any) -> Optional[str]:
    if isinstance(value, dict):
        return value.get("content")
    return value


class Tokenizer:
    """A loaded tokenizer. Cheap to share; thread-safe (encode releases the GIL)."""

    def __init__(self, core: "_core.Tokenizer", config: Optional[Mapping[str, Any]] = None):
        self._core = core
        self._config = dict(config or {})
        self._native_checked: Optional[bool] = None
        self._jinja_template = None

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> "Tokenizer":
        """Loads a tokenizer.json (no chat template, no bos/eos)."""
        return cls(_core.Tokenizer.from_file(os.fspath(path)))

    @classmethod
    def from_pretrained(cls, model_dir: Union[str, os.PathLike]) -> "Tokenizer":
        """Loads ``model_dir/tokenizer.json`` and ``model_dir/tokenizer_config.json``."""
        model_dir = os.fspath(model_dir)
        core = _core.Tokenizer.from_pretrained(model_dir)
        config: dict = {}
        cfg_path = os.path.join(model_dir, "tokenizer_config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                config = json.load(f)
        return cls(core, config)

    # ---- encode / decode -----------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = False) -> List[int]:
        """Token ids of ``text``. A str with lone surrogates has no UTF-8 form: UnicodeEncodeError
        (a ValueError); pass bytes to ``encode_bytes`` for U+FFFD replacement instead."""
        try:
            return self._core.encode(text, add_special_tokens)
        except TypeError:
            if isinstance(text, str):
                text.encode("utf-8")  # raises UnicodeEncodeError naming the position
            raise

    def encode_bytes(self, data: bytes, add_special_tokens: bool = False) -> List[int]:
        """Encodes UTF-8 bytes; invalid sequences become U+FFFD (maximal subparts)."""
        return self._core.encode_bytes(data, add_special_tokens)

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> List[List[int]]:
        return self._core.encode_batch(list(texts), add_special_tokens)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids`` (a list, or anything with ``tolist()`` such as a tensor or array)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return self._core.decode(list(ids), skip_special_tokens)

    def stream_decoder(self, skip_special_tokens: bool = False) -> "_core.StreamDecoder":
        """Incremental detokenizer: ``push(id) -> str`` then ``flush() -> str``."""
        return _core.StreamDecoder(self._core, skip_special_tokens)

    def token_to_id(self, token: str) -> Optional[int]:
        return self._core.token_to_id(token)

    def id_to_token(self, id: int) -> Optional[str]:
        return self._core.id_to_token(id)

    def is_special(self, id: int) -> bool:
        return self._core.is_special(id)

    @property
    def vocab_size(self) -> int:
        """Regular + added tokens (``tokenizers``' ``get_vocab_size(with_added_tokens=True)``)."""
        return self._core.vocab_size

    def get_vocab_size(self) -> int:
        return self._core.vocab_size

    def __len__(self) -> int:
        return self._core.vocab_size

    @property
    def eos_token_id(self) -> Optional[int]:
        return self._core.eos_token_id

    @property
    def bos_token_id(self) -> Optional[int]:
        return self._core.bos_token_id

    @property
    def eos_token(self) -> Optional[str]:
        return self._core.eos_token

    @property
    def bos_token(self) -> Optional[str]:
        return self._core.bos_token

    @property
    def chat_family(self) -> str:
        """'deepseek_r1', 'chatml', 'unknown' or 'none' (no template)."""
        return self._core.chat_family

    @property
    def chat_template(self) -> str:
        return self._core.chat_template

    @property
    def core(self) -> "_core.Tokenizer":
        """The C++ tokenizer (to hand to other genprm classes)."""
        return self._core

    # ---- chat ----------------------------------------------------------------------------------
    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False,
                            **template_kwargs: Any) -> str:
        """Renders a conversation (a list of {"role", "content"} dicts) as the model's chat template.

        DeepSeek-R1 and ChatML templates are rendered natively; other templates, extra keyword
        arguments (e.g. ``tools``, ``enable_thinking``) or messages with other fields go through
        jinja2 exactly like ``transformers``' ``apply_chat_template``.
        """
        messages = [m if isinstance(m, Mapping) else {"role": m.role, "content": m.content} for m in messages]
        if not template_kwargs and self._native_usable(messages):
            try:
                return self._core.apply_chat_template(messages, add_generation_prompt)
            except ValueError:
                pass  # e.g. a role the native renderer does not know: jinja2 below
        return self._render_jinja(messages, add_generation_prompt, **template_kwargs)

    def _native_usable(self, messages: List[Mapping[str, Any]]) -> bool:
        if self.chat_family not in ("deepseek_r1", "chatml"):
            return False
        if any(set(m.keys()) - {"role", "content"} or not isinstance(m.get("content"), str) for m in messages):
            return False
        if self._native_checked is None:
            self._native_checked = self._probe_native()
        return self._native_checked

    def _probe_native(self) -> bool:
        """Checks the native renderer against jinja2 on probe conversations (once)."""
        if not self.chat_template:
            return True
        try:
            for msgs in (_PROBE, _PROBE_NO_SYSTEM):
                for gen in (False, True):
                    if self._core.apply_chat_template(msgs, gen) != self._render_jinja(msgs, gen):
                        return False
        except Exception:  # a template jinja2 cannot render: trust the native renderer
            return True
        return True

    def _render_jinja(self, messages: List[Mapping[str, Any]], add_generation_prompt: bool,
                      **kwargs: Any) -> str:
        if not self.chat_template:
            raise ValueError(f"{self._core.path}: this tokenizer has no chat template "
                             "(load it with Tokenizer.from_pretrained(model_dir) next to a tokenizer_config.json)")
        if self._jinja_template is None:
            self._jinja_template = _compile_jinja(self.chat_template)
        special = {}
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            special[key] = _special_token_str(self._config.get(key))
        if "additional_special_tokens" in self._config:
            special["additional_special_tokens"] = [
                _special_token_str(t) for t in self._config["additional_special_tokens"]]
        variables = dict(special)
        variables.update(kwargs)
        return self._jinja_template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                           **variables)


def problem_prompt(tokenizer: Any, problem: str, system: Optional[str] = None) -> str:
    """The policy prompt of ``problem``: ``tokenizer.apply_chat_template`` over [system (when
    given), user = problem] with the generation prompt (C++: ``genprm::problem_conversation``,
    which the RPE bindings render the same way)."""
    msgs = [{"role": "system", "content": system}] if system is not None else []
    msgs.append({"role": "user", "content": problem})
    return tokenizer.apply_chat_template(msgs, add_generation_prompt=True)


def _compile_jinja(source: str):
    """Compiles a chat template with the environment transformers uses."""
    try:
        import jinja2
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as e:  # pragma: no cover - jinja2 is a requirement
        raise ValueError("rendering this chat template needs jinja2 (pip install jinja2)") from e

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        from datetime import datetime
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


StreamDecoder = _core.StreamDecoder
ChatMessage = _core.ChatMessage

__all__ = ["Tokenizer", "StreamDecoder", "ChatMessage", "problem_prompt"]
