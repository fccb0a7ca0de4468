"""`ddplug transfer` on the tiny backbone: a run end to end into a folder, and one-line errors for bad input."""
import json
import subprocess
import sys

import pytest

from ddplug.cli import main
from ddplug.models import load_backbone, tiny

SMALL = ["--backbone", "tiny", "--finetune-max-train", "64", "--epochs", "2", "--max-train", "100", "--limit", "100",
         "--device", "cpu", "--quiet"]


def test_transfer_command_end_to_end(tmp_path):
    out = tmp_path / "enc"
    run = subprocess.run([sys.executable, "-m", "ddplug", "transfer", "--from", "ag_news", "--to", "sst2", *SMALL,
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "| Epoch | Acc. original | Acc. adapted |" in run.stdout and "\n| 2 |" in run.stdout
    result = json.loads((out / "transfer.json").read_text())
    assert (result["source"], result["target"]) == ("ag_news", "sst2")
    assert all(len(c["acc"]) == len(c["seconds"]) == 2 for c in result["curves"].values())
    assert result["curves"]["original"]["train_sentences"] == 100 and result["finetune"]["train_sentences"] == 64
    # the folder is a backbone: it loads back with the weights the numbers were measured on, not the original ones
    saved = load_backbone(str(out), cache=False)
    assert saved.fingerprint() == result["fingerprints"]["adapted"] != tiny().fingerprint()
    assert result["fingerprints"]["original"] == tiny().fingerprint()


@pytest.mark.parametrize("args,message", [
    (["--from", "nope", "--to", "sst2"], "unknown task 'nope'"),
    (["--from", "ag_news", "--to", "sst2", "--epochs", "0"], "--epochs must be at least 1"),
    (["--from", "ag_news", "--to", "sst2", "--target-acc", "80"], "--target-acc must be an accuracy"),
])
def test_transfer_bad_input_is_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "enc"
    assert main(["transfer", *SMALL, "--finetune-max-train", "8", *args, "-o", str(out)]) == 2  # later flags win
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_transfer_refuses_a_file_as_output(tmp_path, capsys):
    path = tmp_path / "file.txt"
    path.write_text("not a folder")
    assert main(["transfer", "--from", "ag_news", "--to", "sst2", *SMALL, "-o", str(path)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_transfer_into_the_current_folder_reports_it(tmp_path, monkeypatch):
    from ddplug.tasks import load_task
    from ddplug.transfer import transfer
    monkeypatch.chdir(tmp_path)
    res = transfer(load_task("ag_news"), load_task("sst2"), tiny(), "", finetune_max_train=16, epochs=1, max_train=32,
                   seq_len=16, limit=32)
    assert res["saved_to"] == "."  # saved, into the current folder: not "not saved"
    assert load_backbone(str(tmp_path), cache=False).fingerprint() == res["fingerprints"]["adapted"]
