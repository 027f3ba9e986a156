"""results/ holds evidence: every run its metrics and figures, and only the headline models their weights, each
with exactly the project's current model code beside them (kept so by `python tools/sync_model_code.py`)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from sync_model_code import code_files  # noqa: E402  (tools/ is not a package)

RUNS = sorted(p for p in (ROOT / "results").iterdir() if p.is_dir())
MODELS = [run for run in RUNS if (run / "model.safetensors").is_file()]
EVIDENCE = {"metrics.json", "metrics.png", "attention.png"}
# The models the README's headline table points to; tests/test_results.py also reads the last two.
HEADLINE_MODELS = ["seed-config", "tutorial-recipe", "improved-trivialaugment", "improved-40-lr-4e-3", "improved-20-no-final-layernorm",
                   "improved-40-spt-lsa-100-epochs-trivialaugment"]


def sync(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "sync_model_code.py"), *map(str, args)],
                          capture_output=True, text=True)


def test_code_files_are_the_modeling_file_and_what_it_imports():
    names = code_files(ROOT)
    assert {"modeling_simple_vit.py", "configuration_simple_vit.py"} <= set(names)
    assert all((ROOT / name).is_file() for name in names)


@pytest.mark.parametrize("run", MODELS, ids=[run.name for run in MODELS])
def test_model_folder_code_equals_the_top_level_files(run):
    stale = [name for name in code_files(ROOT) if (run / name).read_bytes() != (ROOT / name).read_bytes()]
    assert not stale, f"{run.name}: {stale} differ from the top-level files; run python tools/sync_model_code.py"


@pytest.mark.parametrize("run", MODELS, ids=[run.name for run in MODELS])
def test_model_folder_is_complete(run):
    # What save_pretrained plus the image processor write: without config.json or preprocessor_config.json
    # AutoModel / pipeline cannot load the folder.
    assert {"config.json", "preprocessor_config.json", "metrics.json", *code_files(ROOT)} <= {
        p.name for p in run.iterdir()}


@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_every_run_keeps_its_evidence(run):
    names = {p.name for p in run.iterdir()}
    assert {"metrics.json", "metrics.png"} <= names
    if run not in MODELS:
        assert names <= EVIDENCE, f"{run.name} has no weights but holds {sorted(names - EVIDENCE)}"


def test_headline_models_keep_their_weights():
    assert [name for name in HEADLINE_MODELS if ROOT / "results" / name not in MODELS] == []


def test_repository_results_are_in_sync():
    result = sync("--check")
    assert result.returncode == 0, result.stdout


@pytest.fixture
def runs(tmp_path):
    """A results/ folder with one model whose code is stale and one metrics-only run holding a code copy."""
    model, plain = tmp_path / "results" / "model", tmp_path / "results" / "metrics-only"
    model.mkdir(parents=True)
    plain.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "modeling_simple_vit.py").write_text("# an old version\n")
    (plain / "metrics.json").write_text("{}")
    (plain / "modeling_simple_vit.py").write_text("# an old version\n")
    return tmp_path / "results"


def test_check_lists_stale_and_stray_copies_and_changes_nothing(runs):
    result = sync("--check", "--results", runs)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["stray: results/metrics-only/modeling_simple_vit.py",
                                          "stale: results/model/configuration_simple_vit.py",
                                          "stale: results/model/modeling_simple_vit.py"]
    assert (runs / "model" / "modeling_simple_vit.py").read_text() == "# an old version\n"
    assert (runs / "metrics-only" / "modeling_simple_vit.py").exists()


def test_sync_copies_into_models_and_removes_the_rest(runs):
    assert sync("--results", runs).returncode == 0
    for name in code_files(ROOT):
        assert (runs / "model" / name).read_bytes() == (ROOT / name).read_bytes()
    assert (runs / "model" / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in (runs / "metrics-only").iterdir()) == ["metrics.json"]
    assert not list(runs.rglob(".*"))  # no temporary file left behind
    again = sync("--check", "--results", runs)
    assert (again.returncode, again.stdout) == (0, "")


def test_missing_results_folder_is_a_one_line_error(tmp_path):
    result = sync("--results", tmp_path / "nowhere")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "is not a folder" in result.stderr
