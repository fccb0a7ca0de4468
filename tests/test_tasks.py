import json

import pandas as pd
import pytest

from ddplug.core import DDPlugError
from ddplug.tasks import file_task, hub_task, load_task


def test_builtin_tasks_load_offline_with_fixed_validation():
    agn = load_task("ag_news")
    assert agn.num_labels == 4 and list(agn.splits) == ["train", "validation", "test"]
    assert len(agn["train"]) == 25_722 and len(agn["test"]) == 7_600
    assert agn["validation"]["text"] == load_task("ag_news")["validation"]["text"]
    sst = load_task("sst2")
    assert list(sst.splits) == ["train", "validation", "test", "heldout"]
    assert (len(sst["test"]), len(sst["heldout"])) == (872, 1821)
    assert set(sst["test"]["label"]) == {0, 1}


@pytest.fixture
def table(tmp_path):
    df = pd.DataFrame({"sentence": [f"row {i} says {'good' if i % 2 else 'bad'}" for i in range(100)],
                       "y": [i % 2 for i in range(100)]})
    return tmp_path, df


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet", ".csv.gz"])
def test_local_file_formats(table, suffix):
    tmp, df = table
    path = tmp / f"data{suffix}"
    if suffix in (".csv", ".csv.gz"): df.to_csv(path, index=False)
    elif suffix == ".tsv": df.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl": df.to_json(path, orient="records", lines=True)
    elif suffix == ".json": path.write_text(json.dumps(df.to_dict(orient="records")))
    else: df.to_parquet(path)
    task = load_task(str(path), text_column="sentence", label_column="y", label_names=["bad", "good"])
    assert task.label_names == ["bad", "good"] and sum(map(len, task.splits.values())) == 100
    assert len(task["test"]) == 10 and len(task["validation"]) == 9


def test_folder_keeps_its_splits_and_string_labels(tmp_path):
    for split, n in (("train", 50), ("test", 20)):
        pd.DataFrame({"text": [f"{split} {i}" for i in range(n)], "label": ["b", "a"] * (n // 2)}).to_csv(tmp_path / f"{split}.csv", index=False)
    task = file_task(tmp_path)
    assert task.label_names == ["a", "b"] and len(task["test"]) == 20 and len(task["train"]) + len(task["validation"]) == 50
    assert task["test"]["label"][:2] == [1, 0]


def test_hub_loader_on_a_local_dataset_folder(tmp_path):
    pd.DataFrame({"text": [f"t{i}" for i in range(40)], "label": [i % 3 for i in range(40)]}).to_csv(tmp_path / "train.csv", index=False)
    task = hub_task(str(tmp_path))
    assert task.num_labels == 3 and sum(map(len, task.splits.values())) == 40
    task = load_task(f"hf:{tmp_path}")
    assert task.num_labels == 3


def one_line_error(*args, **kwargs):
    with pytest.raises(DDPlugError) as e:
        load_task(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_error_paths(tmp_path):
    assert "Valid tasks: ag_news, sst2" in one_line_error("agnews")
    assert "no such file" in one_line_error(str(tmp_path / "missing.csv"))
    pd.DataFrame({"sentence": ["a"] * 20, "label": [0] * 20}).to_csv(tmp_path / "cols.csv", index=False)
    msg = one_line_error(str(tmp_path / "cols.csv"))
    assert "no column 'text'" in msg and "sentence" in msg and "--text-column" in msg
    pd.DataFrame({"text": ["x"] * 20, "label": [0, 1, 2, 7] * 5}).to_csv(tmp_path / "range.csv", index=False)
    assert "outside 0..2" in one_line_error(str(tmp_path / "range.csv"), label_names=["a", "b", "c"])
    pd.DataFrame({"text": ["x", ""] * 20, "label": [0, 1] * 20}).to_csv(tmp_path / "empty.csv", index=False)
    assert "empty text" in one_line_error(str(tmp_path / "empty.csv"))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 truncated")
    assert "cannot be read as parquet" in one_line_error(str(tmp_path / "bad.parquet"))
    (tmp_path / "data.xlsx").write_bytes(b"")
    assert "unknown file type" in one_line_error(str(tmp_path / "data.xlsx"))
    assert "cannot load data set" in one_line_error("hf:" + str(tmp_path / "nothing-here"))
