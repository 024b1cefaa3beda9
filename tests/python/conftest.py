"""Fixtures shared by the Python tests."""
import pytest
import torch

from genprm.testing import copy_tokenizer, make_random_qwen2


@pytest.fixture(scope="session")
def tiny_r1_checkpoint(tmp_path_factory):
    """Factory make(name, seed) -> directory of a 1-layer random Qwen2 checkpoint (hidden 32) whose
    vocabulary covers the R1-Distill tokenizer, with that tokenizer's files (genprm.testing)."""
    def make(name: str, seed: int) -> str:
        torch.set_num_threads(1)
        d = tmp_path_factory.mktemp(name)
        make_random_qwen2(d, vocab_size=151936, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, eos_token_id=151643, seed=seed)
        copy_tokenizer(d, "r1distill")
        return str(d)
    return make
