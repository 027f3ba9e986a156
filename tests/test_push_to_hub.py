"""push_to_hub.py: the staged repo is complete and loadable by anyone, and the upload is one commit of it.

No test here contacts the real Hub: staging sends nothing, and the upload runs the real `huggingface_hub` client
in a subprocess whose HF_ENDPOINT points at `fake_hub.FakeHub`, a stand-in server on 127.0.0.1.
"""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from fake_hub import FakeHub
from helpers_checkpoint import CLASS_NAMES, ROOT, checkpoint, clean_env, synthetic_dataset  # noqa: F401 (fixtures)

import push_to_hub


REPO_ID = "someone/simple-vit-test"
TOKEN = "hf_FakeTokenForTests0123456789"
STAGED_FILES = {
    "README.md",
    "config.json",
    "configuration_simple_vit.py",
    "modeling_simple_vit.py",
    "model.safetensors",
    "preprocessor_config.json",
    "metrics.json",
    "metrics.png",
}


@pytest.fixture(scope="module")
def staged(checkpoint, tmp_path_factory):
    """The checkpoint staged with --dry-run, as a user would inspect it before uploading."""
    stage = tmp_path_factory.mktemp("stage") / "repo"
    argv = ["--checkpoint", str(checkpoint), "--repo-id", REPO_ID, "--dry-run", "--local-dir", str(stage)]
    assert push_to_hub.main(argv + ["--dataset-id", "uoft-cs/cifar10"]) == 0
    return stage


def run_push(args, env, cwd):
    """push_to_hub.py in a subprocess: HF_ENDPOINT must be set before huggingface_hub is imported."""
    return subprocess.run(
        [sys.executable, str(ROOT / "push_to_hub.py"), *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def hub_env(hub, tmp_path, token=TOKEN):
    """Online (towards the fake Hub only), with an empty HF_HOME so no saved login or cache leaks in."""
    env = clean_env(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf-home"))
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN"):
        env.pop(name, None)
    if token:
        env["HF_TOKEN"] = token
    return env


# ---------------------------------------------------------------------------------------------------------------
# Staging
# ---------------------------------------------------------------------------------------------------------------


def test_staged_repo_has_exactly_the_shareable_files(staged, checkpoint):
    assert (checkpoint / "checkpoints").is_dir()
    assert {path.name for path in staged.iterdir()} == STAGED_FILES  # training state (checkpoints/) stays behind
    for name in STAGED_FILES - {"README.md"}:
        assert (staged / name).read_bytes() == (checkpoint / name).read_bytes(), name
    assert "AutoModelForImageClassification" in json.loads((staged / "config.json").read_text())["auto_map"]


def test_attention_figure_is_staged_when_the_checkpoint_has_one(checkpoint, tmp_path):
    with_figure = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, with_figure, ignore=shutil.ignore_patterns("checkpoints"))
    (with_figure / "attention.png").write_bytes(b"\x89PNG fake")
    stage = push_to_hub.stage_repo(with_figure, tmp_path / "stage", REPO_ID)
    assert (stage / "attention.png").read_bytes() == b"\x89PNG fake"
    assert "](attention.png)" in (stage / "README.md").read_text()


def test_staged_repo_loads_in_a_clean_process(staged, synthetic_dataset, tmp_path):
    """Anyone can load it: Auto class and pipeline with trust_remote_code, the project nowhere importable."""
    image = next((synthetic_dataset / "test" / "red").glob("*.png"))
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys

        # The staged repo's own code files must be what runs, even where the project is pip-installed: refuse
        # the project's top-level modules (remote code imports as transformers_modules.<...>.modeling_simple_vit).
        class NoProject(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name in ("modeling_simple_vit", "configuration_simple_vit", "push_to_hub", "attention_maps"):
                    raise ImportError(f"the project module {{name}} must not be importable here")

        sys.meta_path.insert(0, NoProject())

        from transformers import AutoModelForImageClassification, pipeline

        model = AutoModelForImageClassification.from_pretrained({str(staged)!r}, trust_remote_code=True)
        classifier = pipeline("image-classification", model={str(staged)!r}, trust_remote_code=True)
        predictions = classifier({str(image)!r}, top_k=3)
        print(json.dumps({{
            "module": type(model).__module__,
            "labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
            "pipeline_model": type(classifier.model).__name__,
            "predicted": [p["label"] for p in predictions],
            "scores": sum(p["score"] for p in predictions),
        }}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["module"].startswith("transformers_modules.")  # the staged code, not a local copy
    assert loaded["labels"] == list(CLASS_NAMES)  # the dataset's class names, in label-id order
    assert loaded["pipeline_model"] == "SimpleViTForImageClassification"
    assert sorted(loaded["predicted"]) == sorted(CLASS_NAMES)
    assert loaded["scores"] == pytest.approx(1.0, abs=1e-4)


def test_model_card_metadata_and_body(staged, checkpoint):
    from huggingface_hub import ModelCard

    card = ModelCard.load(staged / "README.md")
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "image-classification"
    assert data.license == "mit"
    assert data.datasets == ["uoft-cs/cifar10"]
    assert data.metrics == ["accuracy"]
    assert {"vision", "custom_code"} <= set(data.tags)
    # The model-index holds the measured accuracy: the final epoch's, exactly as metrics.json has it.
    (result,) = data.eval_results
    assert (result.task_type, result.metric_type) == ("image-classification", "accuracy")
    assert result.metric_value == metrics["eval_accuracy"][-1]

    body = card.text
    assert "AutoModelForImageClassification.from_pretrained" in body and "trust_remote_code=True" in body
    assert f'pipeline("image-classification", model="{REPO_ID}", trust_remote_code=True)' in body
    for key in ("epochs", "batch_size", "lr", "seed"):
        assert f"| `{key}` |" in body  # the training configuration table
    for epoch, accuracy in zip(metrics["epoch"], metrics["eval_accuracy"]):
        assert f"| {epoch} |" in body and f"{accuracy:.4f} |" in body  # one results row per epoch
    assert "](metrics.png)" in body


def test_model_card_for_a_local_dataset_folder():
    """Trained from a local folder: no Hub dataset to link, and the model-index says "imagefolder"."""
    config = {"id2label": {"0": "a", "1": "b"}, "image_size": 32}
    metrics = {"eval_accuracy": [0.25, 0.5], "args": {"dataset_name": str(ROOT)}}
    card = push_to_hub.render_model_card("me/model", config, metrics)
    assert card.data.datasets is None
    assert card.data.eval_results[0].dataset_type == "imagefolder"
    assert card.data.eval_results[0].metric_value == 0.5
    # A config saved before classifier_pooling existed is a CLS-pooling model; a mean-pooling one says so.
    assert "| Classifier pooling | cls |" in card.text
    mean_card = push_to_hub.render_model_card("me/model", {**config, "classifier_pooling": "mean"}, metrics)
    assert "| Classifier pooling | mean |" in mean_card.text
    assert "| Position embeddings | learned |" in card.text
    sincos_card = push_to_hub.render_model_card("me/model", {**config, "position_embedding_type": "sincos"}, metrics)
    assert "| Position embeddings | sincos |" in sincos_card.text
    assert "| Shifted patch tokenization | False |" in card.text and "| Locality self-attention | False |" in card.text
    small_card = push_to_hub.render_model_card(
        "me/model", {**config, "shifted_patch_tokenization": True, "locality_self_attention": True}, metrics)
    assert "| Shifted patch tokenization | True |" in small_card.text
    assert "| Locality self-attention | True |" in small_card.text


# ---------------------------------------------------------------------------------------------------------------
# Uploading (to the stand-in Hub)
# ---------------------------------------------------------------------------------------------------------------


def test_upload_creates_repo_and_commits_exactly_the_staged_files(checkpoint, staged, tmp_path):
    with FakeHub(token=TOKEN) as hub:
        result = run_push(
            ["--checkpoint", checkpoint, "--repo-id", REPO_ID, "--dataset-id", "uoft-cs/cifar10",
             "--private", "--revision", "experiment", "--commit-message", "First SimpleViT"],
            env=hub_env(hub, tmp_path), cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert TOKEN not in result.stdout + result.stderr
        assert hub.unhandled == []

        assert hub.repos == {REPO_ID: {"private": True, "branches": {"main", "experiment"}}}
        (commit,) = hub.commits  # ONE commit ...
        assert (commit.repo_id, commit.revision, commit.summary) == (REPO_ID, "experiment", "First SimpleViT")
        # ... carrying exactly the staged files, byte for byte (the card is rendered the same way both times).
        assert commit.files == {path.name: path.read_bytes() for path in staged.iterdir()}

        # Pushing again (a retrained model, a public repo, default branch) reuses the existing repo.
        result = run_push(["--checkpoint", checkpoint, "--repo-id", REPO_ID, "--token", TOKEN],
                          env=hub_env(hub, tmp_path, token=None), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert TOKEN not in result.stdout + result.stderr
        assert len(hub.repos) == 1 and hub.repos[REPO_ID]["private"] is True
        assert [(c.revision, set(c.files)) for c in hub.commits[1:]] == [("main", STAGED_FILES)]


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one clear line, non-zero exit, and nothing sent
# ---------------------------------------------------------------------------------------------------------------


def _assert_refused(result, hub, *expected):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0]
    assert hub.requests == []  # refused before anything was sent


def test_missing_checkpoint_files_are_named(checkpoint, tmp_path):
    incomplete = tmp_path / "incomplete"
    shutil.copytree(checkpoint, incomplete, ignore=shutil.ignore_patterns("model.safetensors", "preprocessor_*"))
    with FakeHub(token=TOKEN) as hub:
        result = run_push(["--checkpoint", incomplete, "--repo-id", REPO_ID], hub_env(hub, tmp_path), tmp_path)
        _assert_refused(result, hub, "model.safetensors", "preprocessor_config.json")
        nowhere = tmp_path / "nowhere"
        result = run_push(["--checkpoint", nowhere, "--repo-id", REPO_ID], hub_env(hub, tmp_path), tmp_path)
        _assert_refused(result, hub, "does not exist")


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "me/bad name", "me/-dash", "me/double--dash"])
def test_malformed_repo_id(checkpoint, tmp_path, repo_id):
    with FakeHub(token=TOKEN) as hub:
        result = run_push(["--checkpoint", checkpoint, "--repo-id", repo_id], hub_env(hub, tmp_path), tmp_path)
        _assert_refused(result, hub, "malformed repo id", repo_id)


def test_no_token(checkpoint, tmp_path):
    with FakeHub(token=TOKEN) as hub:
        env = hub_env(hub, tmp_path, token=None)  # no HF_TOKEN, and HF_HOME holds no saved login
        result = run_push(["--checkpoint", checkpoint, "--repo-id", REPO_ID], env, tmp_path)
        _assert_refused(result, hub, "no Hugging Face token")


def test_offline_mode_is_refused_and_dry_run_needs_a_folder(checkpoint, tmp_path, capsys):
    with FakeHub(token=TOKEN) as hub:
        env = dict(hub_env(hub, tmp_path), HF_HUB_OFFLINE="1")
        result = run_push(["--checkpoint", checkpoint, "--repo-id", REPO_ID], env, tmp_path)
        _assert_refused(result, hub, "HF_HUB_OFFLINE")
    with pytest.raises(SystemExit):
        push_to_hub.main(["--checkpoint", str(checkpoint), "--repo-id", REPO_ID, "--dry-run"])
    assert "--local-dir" in capsys.readouterr().err


def test_staging_refuses_a_non_empty_folder(checkpoint, tmp_path):
    (tmp_path / "old.txt").write_text("stale")
    with pytest.raises(push_to_hub.PushError, match="not empty"):
        push_to_hub.stage_repo(checkpoint, tmp_path, REPO_ID)


def test_refused_upload_is_one_line_without_the_token(checkpoint, tmp_path):
    wrong = "hf_WrongTokenForTests9876543210"
    with FakeHub(token=TOKEN) as hub:
        result = run_push(["--checkpoint", checkpoint, "--repo-id", REPO_ID], hub_env(hub, tmp_path, wrong), tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "401" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert hub.repos == {} and hub.commits == []
