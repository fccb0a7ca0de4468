import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import itertools

import pandas as pd
import pytest

NUMS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
COLS = ["red", "blue", "green", "pink", "grey", "black", "white", "brown", "gold", "teal"]


@pytest.fixture(scope="session")
def word_task_csv(tmp_path_factory):
    """Writes a small, separable two-class task as CSV and returns its path: class 0 is three-word sentences from
    `words_a`, class 1 from `words_b` (number words vs colour words by default)."""
    def write(name: str, words_a=NUMS, words_b=COLS):
        rows = [(" ".join(t), 0) for t in itertools.product(words_a, words_a[:4], words_a[5:9])] + \
               [(" ".join(t), 1) for t in itertools.product(words_b, words_b[:4], words_b[5:9])]
        path = tmp_path_factory.mktemp(name) / f"{name}.csv"
        pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1, random_state=0).to_csv(path, index=False)
        return path
    return write
