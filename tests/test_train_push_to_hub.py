"""run_train.py --push_to_hub --hub_model_id: after training, the output folder is published as push_to_hub.py
publishes it, to the local stand-in Hub (tests/fake_hub.py); no network."""

import argparse
import json
import subprocess
import sys

import pytest
from fake_hub import FakeHub
from helpers_checkpoint import clean_env
from test_push_to_hub import REPO_ID, TOKEN, hub_env
from test_train import ROOT, TINY_MODEL

from cli import CLIError
from simple_vit_training.hub import check_hub_args
from synthetic_data import write_hub_layout


@pytest.fixture(scope="module")
def small_run_args(tmp_path_factory):
    base = tmp_path_factory.mktemp("push_run")
    dataset = write_hub_layout(base / "data", n_train=32, n_test=16, size=16)
    (base / "tiny.json").write_text(json.dumps(TINY_MODEL))
    return ["--dataset-name", str(dataset), "--model-config", str(base / "tiny.json"), "--epochs", "1",
            "--batch-size", "16"]


def train(args, env, cwd):
    return subprocess.run([sys.executable, str(ROOT / "run_train.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_trained_model_is_published_as_one_commit(small_run_args, tmp_path):
    out = tmp_path / "out"
    with FakeHub(token=TOKEN) as hub:
        result = train(small_run_args + ["--output-dir", out, "--push_to_hub", "--hub-model-id", REPO_ID],
                       env=hub_env(hub, tmp_path), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert TOKEN not in result.stdout + result.stderr
        assert hub.unhandled == []
        (commit,) = hub.commits
    assert (commit.repo_id, commit.revision) == (REPO_ID, "main")
    assert {"README.md", "model.safetensors", "config.json", "preprocessor_config.json", "metrics.json",
            "configuration_simple_vit.py", "modeling_simple_vit.py", "metrics.png"} == set(commit.files)
    for name in set(commit.files) - {"README.md"}:
        assert commit.files[name] == (out / name).read_bytes(), name  # exactly the trained output
    assert f"Published to {hub.endpoint}/{REPO_ID}/commit/{commit.oid}" in result.stdout


def test_failed_upload_keeps_the_output_and_says_how_to_retry(small_run_args, tmp_path):
    out = tmp_path / "out"
    with FakeHub(token="hf_SomeoneElsesToken0123456789") as hub:  # refuses our token: 401
        result = train(small_run_args + ["--output-dir", out, "--push_to_hub", "--hub_model_id", REPO_ID],
                       env=hub_env(hub, tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    # The error is the last line, one line (progress bars of the finished training run stand above it).
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("run_train.py: error: ") and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"push_to_hub.py --checkpoint {out} --repo-id {REPO_ID}" in last and "401" in last
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()


def hub_args(**kwargs):
    return argparse.Namespace(**{"push_to_hub": False, "hub_model_id": None, **kwargs})


@pytest.mark.parametrize("kwargs, offline, token, expected", [
    ({"hub_model_id": REPO_ID}, False, TOKEN, "no effect without --push_to_hub"),
    ({"push_to_hub": True}, False, TOKEN, "needs --hub_model_id"),
    ({"push_to_hub": True, "hub_model_id": "no-namespace"}, False, TOKEN, "malformed repo id"),
    ({"push_to_hub": True, "hub_model_id": REPO_ID}, False, None, "no Hugging Face token"),
    ({"push_to_hub": True, "hub_model_id": REPO_ID}, True, TOKEN, "HF_HUB_OFFLINE is set"),
])
def test_publishing_settings_are_checked_before_training(monkeypatch, tmp_path, kwargs, offline, token, expected):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))  # no saved login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(CLIError, match=expected):
        check_hub_args(hub_args(**kwargs))


def test_no_publishing_needs_no_token(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert check_hub_args(hub_args()) is None


def test_run_train_refuses_a_bad_repo_id_before_loading_data(tmp_path):
    result = train(["--dataset-name", tmp_path / "does-not-exist", "--push-to-hub", "--hub_model_id", "bad id"],
                   env=clean_env(), cwd=tmp_path)
    assert result.returncode == 2 and "malformed repo id" in result.stderr and "dataset" not in result.stderr
