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
    sequence_card = push_to_hub.render_model_card("me/model", {**config, "classifier_pooling": "sequence"}, metrics)
    assert "| Classifier pooling | sequence |" in sequence_card.text
    with pytest.raises(ValueError, match="classifier_pooling='max'"):  # a value this version cannot describe
        push_to_hub.render_model_card("me/model", {**config, "classifier_pooling": "max"}, metrics)
    assert "| Position embeddings | learned |" in card.text
    sincos_card = push_to_hub.render_model_card("me/model", {**config, "position_embedding_type": "sincos"}, metrics)
    assert "| Position embeddings | sincos |" in sincos_card.text
    assert "| Shifted patch tokenization | False |" in card.text and "| Locality self-attention | False |" in card.text
    small_card = push_to_hub.render_model_card(
        "me/model", {**config, "shifted_patch_tokenization": True, "locality_self_attention": True}, metrics)
    assert "| Shifted patch tokenization | True |" in small_card.text
    assert "| Locality self-attention | True |" in small_card.text
    assert "| Convolutional tokenization | False |" in card.text
    conv_card = push_to_hub.render_model_card("me/model", {**config, "convolutional_tokenization": True}, metrics)
    assert "| Convolutional tokenization | True |" in conv_card.text


@pytest.mark.parametrize("tokenizer_channels", [None, 7])
def test_card_gives_the_convolutional_tokenizer_s_width_as_the_model_builds_it(tokenizer_channels):
    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification

    config = SimpleViTConfig(image_size=32, patch_size=4, hidden_size=36, num_attention_heads=6,
                             convolutional_tokenization=True, tokenizer_channels=tokenizer_channels)
    first = SimpleViTForImageClassification(config).vit.embeddings.patch_embeddings.projection[0]
    card = push_to_hub.render_model_card("me/model", config.to_dict(), cifar_metrics())
    assert f"| Convolutional tokenization | True |\n| Tokenizer channels | {first.out_channels} |" in card.text
    # Patch 2 makes a one-block tokenizer, with no width between convolutions; no tokenizer, no row either.
    for other in ({"patch_size": 2, "tokenizer_channels": None}, {"convolutional_tokenization": False}):
        card = push_to_hub.render_model_card("me/model", {**config.to_dict(), **other}, cifar_metrics())
        assert "Tokenizer channels" not in card.text


# ---------------------------------------------------------------------------------------------------------------
# The card tells the truth: architecture, dataset, and the images behind the accuracy
# ---------------------------------------------------------------------------------------------------------------

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_CONFIG = {"id2label": {str(i): name for i, name in enumerate(CIFAR10_NAMES)}, "image_size": 32}
# An odd, small but valid SimpleViT: the card's architecture claims are checked against the real conversion.
TINY_ARCHITECTURE = dict(
    image_size=30, patch_size=5, hidden_size=36, num_hidden_layers=2, num_attention_heads=6, intermediate_size=37
)
# Each option value that makes a SimpleViT something transformers' ViT is not: case -> (option, value, what its card
# must call it).
NON_VIT_CASES = {
    "shifted_patch_tokenization": ("shifted_patch_tokenization", True, "Shifted Patch Tokenization"),
    "convolutional_tokenization": ("convolutional_tokenization", True, "a convolutional tokenizer"),
    "locality_self_attention": ("locality_self_attention", True, "Locality Self-Attention"),
    "mean_pooling": ("classifier_pooling", "mean", "reads the **mean of the final patch tokens**"),
    "sequence_pooling": ("classifier_pooling", "sequence", "reads a **weighted mean of the final patch tokens**"),
    "position_embedding_type": ("position_embedding_type", "sincos", "sine-cosine position embeddings"),
    "final_layernorm": ("final_layernorm", False, "no LayerNorm after the last layer"),
}
# What an option needs of TINY_ARCHITECTURE besides: the convolutional tokenizer halves the grid per block, so its
# patch must be a power of 2.
CASE_ARCHITECTURE = {"convolutional_tokenization": {"image_size": 28, "patch_size": 4}}


def cifar_metrics(eval_samples=10_000, train_samples=50_000, **args):
    """metrics.json as run_train.py wrote it before it recorded the evaluated split (no "eval_split" key)."""
    return {
        "eval_accuracy": [0.5, 0.625],
        "eval_samples": eval_samples,
        "train_samples": train_samples,
        "args": {
            "dataset_name": "uoft-cs/cifar10", "train_split": "train", "eval_split": "test",
            "validation_split_percentage": 10.0, "max_train_samples": None, "max_eval_samples": None,
            "seed": 42, "epochs": 2, **args,
        },
    }  # fmt: skip


def accuracy_sentence(card) -> str:
    """The body's one sentence that states the final accuracy."""
    (line,) = [line for line in card.text.splitlines() if "**62.50%** accuracy" in line]
    return line


def test_card_of_a_plain_vit_says_it_matches_vit_and_converts():
    import convert_vit_checkpoint
    from configuration_simple_vit import SimpleViTConfig

    config = SimpleViTConfig(**TINY_ARCHITECTURE).to_dict()
    convert_vit_checkpoint.simple_vit_config_to_vit(SimpleViTConfig(**TINY_ARCHITECTURE))  # it does convert
    card = push_to_hub.render_model_card("me/model", config, cifar_metrics())
    assert "computes exactly what `transformers`' `ViTForImageClassification` computes" in card.text
    assert "cannot be converted" not in card.text
    # A config saved before the options existed is a plain ViT too.
    assert push_to_hub.architecture_differences({"image_size": 32}) == []


@pytest.mark.parametrize("case", sorted(NON_VIT_CASES))
def test_card_of_a_non_vit_model_names_the_difference_and_no_conversion(case):
    import convert_vit_checkpoint
    from configuration_simple_vit import SimpleViTConfig

    option, value, name = NON_VIT_CASES[case]
    model_config = SimpleViTConfig(**{**TINY_ARCHITECTURE, **CASE_ARCHITECTURE.get(option, {})}, **{option: value})
    with pytest.raises(convert_vit_checkpoint.ConversionError):  # what the card says is what conversion does
        convert_vit_checkpoint.simple_vit_config_to_vit(model_config)
    card = push_to_hub.render_model_card("me/model", model_config.to_dict(), cifar_metrics())
    assert "exactly" not in card.text and "follows `transformers`' ViT" not in card.text
    assert name in card.text and "cannot be converted to a ViT checkpoint" in card.text
    others = [text for other, (_, _, text) in NON_VIT_CASES.items() if other != case]
    assert not [text for text in others if text in card.text]  # only the differences it has


def test_card_of_an_spt_lsa_model_names_both_options():
    config = {**CIFAR10_CONFIG, "shifted_patch_tokenization": True, "locality_self_attention": True}
    card = push_to_hub.render_model_card("me/model", config, cifar_metrics())
    assert "exactly" not in card.text
    assert "Shifted Patch Tokenization" in card.text and "Locality Self-Attention" in card.text
    assert "no counterpart for these" in card.text
    assert "| Shifted patch tokenization | True |" in card.text and "| Locality self-attention | True |" in card.text


def test_every_config_field_vit_lacks_is_described_by_the_card():
    """A new SimpleViT-only option must get a NON_VIT_OPTIONS entry, or the card would call the model a ViT."""
    from transformers import ViTConfig

    from configuration_simple_vit import SimpleViTConfig

    simple_vit_only = set(SimpleViTConfig().to_dict()) - set(ViTConfig().to_dict())
    options = {option for option, _, _ in NON_VIT_CASES.values()}
    assert simple_vit_only == set(push_to_hub.NON_VIT_OPTIONS) | set(push_to_hub.NON_VIT_OPTION_SIZES)
    assert set(push_to_hub.NON_VIT_OPTIONS) == options >= set(push_to_hub.NON_VIT_OPTION_SIZES.values())
    defaults = SimpleViTConfig().to_dict()
    assert all(defaults[key] == vit_value for key, (vit_value, _) in push_to_hub.NON_VIT_OPTIONS.items())
    # A field with several non-ViT values describes each of them.
    from configuration_simple_vit import CLASSIFIER_POOLINGS

    poolings = push_to_hub.NON_VIT_OPTIONS["classifier_pooling"]
    assert set(poolings[1]) == set(CLASSIFIER_POOLINGS) - {poolings[0]}


def test_card_of_a_500_image_evaluation_says_500_of_10000():
    card = push_to_hub.render_model_card(
        "me/model", CIFAR10_CONFIG, cifar_metrics(eval_samples=500, max_eval_samples=500)
    )
    sentence = accuracy_sentence(card)
    assert "the `test` split, first 500 of 10,000 images" in sentence and "whole split may differ" in sentence
    assert "Evaluated on the `test` split, first 500 of 10,000 images" in card.text  # above the results table
    (result,) = card.data.eval_results
    assert result.dataset_split == "test"
    assert "first 500 of 10,000 images" in result.dataset_name and "500" in result.metric_name

    full = push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, cifar_metrics())
    assert "the `test` split, all 10,000 images" in accuracy_sentence(full)
    (result,) = full.data.eval_results
    assert (result.dataset_split, result.metric_name) == ("test", "Accuracy")
    assert result.dataset_name == "uoft-cs/cifar10, test split, all 10,000 images"
    # A split smaller than --max-eval-samples was evaluated whole.
    small = cifar_metrics(eval_samples=300, max_eval_samples=500)
    assert "all 300 images" in accuracy_sentence(push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, small))


def test_subset_of_a_split_of_unknown_size_is_still_called_a_subset():
    metrics = cifar_metrics(eval_samples=40, train_samples=100, max_eval_samples=40, dataset_name="me/own-data")
    metrics["eval_split"] = "test"  # recorded by run_train.py
    card = push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, metrics)
    assert "the `test` split, first 40 images only (--max-eval-samples 40)" in accuracy_sentence(card)
    assert card.data.eval_results[0].metric_name == "Accuracy (first 40 images)"


def test_recorded_eval_split_and_dataset_name_win_over_the_args():
    metrics = {**cifar_metrics(eval_samples=5_000, dataset_name="old/name"), "eval_split": "validation",
               "dataset_name": "someone/with-validation"}  # fmt: skip
    card = push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, metrics)
    assert card.data.datasets == ["someone/with-validation"]
    (result,) = card.data.eval_results
    assert (result.dataset_split, result.dataset_type) == ("validation", "someone/with-validation")
    assert "the `validation` split, all 5,000 images" in accuracy_sentence(card)
    assert "| `dataset_name` | `someone/with-validation` |" in card.text and "old/name" not in card.text
    assert "validation_split_percentage" not in card.text  # a split of its own: nothing was carved from train


def test_carving_settings_are_listed_only_when_train_was_carved():
    # The dataset's own test split (CIFAR-10's 50,000 + 10,000 do not fit a 10% carve of train): not listed.
    card = push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, cifar_metrics())
    assert "| `eval_split` | `test` |" in card.text
    assert "validation_split_percentage" not in card.text
    # Carved, as recorded by run_train.py: the carving setting is listed and the unused --eval-split is not.
    carved = {**cifar_metrics(eval_samples=7_500, train_samples=42_500, train_val_split=0.15),
              "eval_split": "train[carved 15%]"}  # fmt: skip
    card = push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, carved)
    assert "| `train_val_split` | `0.15` |" in card.text and "| `eval_split` |" not in card.text
    assert card.data.eval_results[0].dataset_split == "train[carved 15%]"
    assert "`train[carved 15%]` (held out of the training data for evaluation), all 7,500 images" in card.text
    # An old metrics.json whose counts fit a carve (54 + 6 of 60): it cannot tell, and the card says so.
    unknown = cifar_metrics(eval_samples=6, train_samples=54, dataset_name="/data/animals")
    card = push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, unknown)
    assert "had the dataset no `test` split, 10% of `train` held out" in accuracy_sentence(card)
    assert "| `validation_split_percentage` | `10.0` |" in card.text


@pytest.mark.parametrize("path", ["../shared/datasets/cifar10", "/somewhere/else/CIFAR-10"])
def test_local_copy_of_a_hub_dataset_is_labelled_by_its_hub_id(path):
    card = push_to_hub.render_model_card("me/model", CIFAR10_CONFIG, cifar_metrics(dataset_name=path))
    assert card.data.datasets == ["uoft-cs/cifar10"]
    (result,) = card.data.eval_results
    assert result.dataset_type == "uoft-cs/cifar10" and result.dataset_name.startswith("uoft-cs/cifar10 (local copy)")
    folder = path.rsplit("/", 1)[-1]
    assert f"read a local copy of [`uoft-cs/cifar10`]" in card.text and f"(folder `{folder}`)" in card.text
    assert "| `dataset_name` | `uoft-cs/cifar10 (local copy)` |" in card.text and path not in card.text
    assert "imagefolder" not in card.text


@pytest.mark.parametrize(
    "path, labels", [("../data/cifar10", ("a", "b")), ("../data/animals", CIFAR10_NAMES)], ids=["labels", "name"]
)
def test_a_folder_with_only_one_sign_of_a_copy_stays_an_image_folder(path, labels):
    config = {"id2label": {str(i): name for i, name in enumerate(labels)}}
    card = push_to_hub.render_model_card("me/model", config, cifar_metrics(dataset_name=path))
    assert card.data.datasets is None and card.data.eval_results[0].dataset_type == "imagefolder"
    assert "local copy" not in card.text
    # Told the Hub id (push_to_hub.py --dataset-id), it is labelled as a copy of that dataset.
    told = push_to_hub.render_model_card("me/model", config, cifar_metrics(dataset_name=path), dataset_id="me/data")
    assert told.data.datasets == ["me/data"] and "local copy of [`me/data`]" in told.text


@pytest.mark.parametrize("run", ["seed-config", "improved-40-spt-lsa-100-epochs-trivialaugment"])
def test_cards_of_the_committed_models(run, tmp_path):
    """The committed models, staged as they would be shared: their cards say what their files say."""
    folder = ROOT / "results" / run
    metrics = json.loads((folder / "metrics.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    card = push_to_hub.render_model_card("me/model", config, metrics)
    differences = push_to_hub.architecture_differences(config)
    assert ("cannot be converted" in card.text) == bool(differences)
    assert ("computes exactly" in card.text) == (not differences)
    assert card.data.datasets == ["uoft-cs/cifar10"]  # read from a local copy (../shared/datasets/cifar10)
    assert f"the `test` split, all {metrics['eval_samples']:,} images" in card.text
    assert "validation_split_percentage" not in card.text


def test_interrupted_staging_leaves_no_folder_behind(checkpoint, tmp_path, monkeypatch):
    copied = []

    def copy_then_fail(source, target):
        if copied:
            raise OSError("disk full")
        copied.append(shutil.copyfile(source, target))

    monkeypatch.setattr(push_to_hub.shutil, "copy2", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        push_to_hub.stage_repo(checkpoint, tmp_path / "stage", REPO_ID)
    assert copied and list(tmp_path.iterdir()) == []  # neither a half-staged folder nor a leftover partial one


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


def test_dry_run_needs_no_repo_id(checkpoint, tmp_path):
    """The README's `--dry-run --local-dir STAGE` only stages: no repo id, a placeholder name in the card."""
    stage = tmp_path / "STAGE"
    with FakeHub(token=TOKEN) as hub:
        result = run_push(["--checkpoint", checkpoint, "--dry-run", "--local-dir", stage], hub_env(hub, tmp_path),
                          tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert hub.requests == []
    assert {path.name for path in stage.iterdir()} == STAGED_FILES
    placeholder = f"USER/{checkpoint.name}"
    assert placeholder in result.stdout and "Dry run: nothing was sent" in result.stdout
    card = (stage / "README.md").read_text()
    assert f'from_pretrained("{placeholder}", trust_remote_code=True)' in card


def test_upload_without_repo_id_is_one_line(checkpoint, tmp_path):
    with FakeHub(token=TOKEN) as hub:
        result = run_push(["--checkpoint", checkpoint], hub_env(hub, tmp_path), tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert "error: --repo-id is required to upload" in line and "--dry-run" in line
        assert hub.requests == []


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
