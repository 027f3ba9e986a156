"""results/ holds evidence: every run its metrics and figures, and only the headline models their weights, each
with exactly the project's current model code beside them (kept so by `python tools/sync_model_code.py`)."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from sync_model_code import code_files  # noqa: E402  (tools/ is not a package)

from experiment_log import stopped_run_commands  # noqa: E402

RUNS = sorted(p for p in (ROOT / "results").iterdir() if p.is_dir())
MODELS = [run for run in RUNS if (run / "model.safetensors").is_file()]
EVIDENCE = {"metrics.json", "metrics.png", "attention.png"}
# The models the README's headline table points to (tests/test_results.py's PRESET_RUNS names the presets' runs).
HEADLINE_MODELS = ["seed-config", "tutorial-recipe", "improved-trivialaugment", "improved-40-lr-4e-3",
                   "improved-20-no-final-layernorm", "improved-40-spt-lsa-100-epochs-trivialaugment",
                   "improved-100-conv-tokenizer", "conv-tokenizer-100-five-layers-hidden-64"]


# A run a session's time limit stopped may keep the one checkpoint it stopped at (its checkpoints/ folder is
# committed, an exception to .gitignore's rule) when the experiment log's "Runs stopped early" quotes the command that
# finishes it: the run's own command plus `--resume-from-checkpoint latest`.
RESUMABLE = {ROOT / folder: argv for folder, argv in stopped_run_commands()
             if "--resume-from-checkpoint" in argv and argv[argv.index("--resume-from-checkpoint") + 1] == "latest"}
# The tutorial's own code (benchmarks/tutorial_reference.py) resumes from its checkpoint whenever one is there: its
# quoted command, as it is, finishes the run.
REFERENCE_RESUMABLE = dict((ROOT / folder, argv) for folder, argv in stopped_run_commands(
    "benchmarks/tutorial_reference.py"))


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
        allowed = EVIDENCE | ({"checkpoints"} if run in RESUMABLE or run in REFERENCE_RESUMABLE else set())
        assert names <= allowed, f"{run.name} has no weights but holds {sorted(names - allowed)}"


def test_resumable_runs_are_the_stopped_runs_the_log_resumes():
    held = {run for run in RUNS if (run / "checkpoints").is_dir()}
    assert held == set(RESUMABLE) | set(REFERENCE_RESUMABLE), \
        "results/*/checkpoints/ only for a stopped run the log quotes a resume command for"
    assert all(run.name.endswith("-partial") for run in [*RESUMABLE, *REFERENCE_RESUMABLE])


@pytest.mark.parametrize("run", sorted(RESUMABLE), ids=[run.name for run in sorted(RESUMABLE)])
def test_resumable_run_keeps_the_checkpoint_of_its_last_epoch(run):
    # One complete checkpoint, at the end of the last epoch metrics.json records, whose history is that file's:
    # resuming it continues the committed curve from the next epoch.
    import torch
    from safetensors.torch import load_file

    sys.path.insert(0, str(ROOT))
    from run_train import parse_args
    from simple_vit_training.checkpoints import find_latest_checkpoint, verify_checkpoint
    from simple_vit_training.model_config import build_model, build_model_config, load_model_config_overrides
    from simple_vit_training.optim import make_optimizer, make_scheduler

    folders = sorted((run / "checkpoints").iterdir())
    assert len(folders) == 1, f"{run.name}: keep only the checkpoint it stopped at, not {[p.name for p in folders]}"
    manifest = verify_checkpoint(folders[0])  # every file present, of its size and sha256
    assert find_latest_checkpoint(run) == folders[0]  # what --resume-from-checkpoint latest picks
    metrics = json.loads((run / "metrics.json").read_text())
    assert (manifest["epoch"], manifest["batches_done"]) == (metrics["epoch"][-1], 0)
    history = torch.load(folders[0] / "custom_checkpoint_0.pkl", weights_only=True)
    assert {**history["metrics"], **history["timings"]} == {
        key: metrics[key] for key in [*history["metrics"], *history["timings"]]}
    assert history["wall_time_seconds"] == metrics["wall_time_seconds"]
    # The state fits what the quoted command builds: accelerate's load_state puts these files into its model,
    # optimizer and schedule.
    args = parse_args(RESUMABLE[run])
    assert vars(args)["seed"] == metrics["args"]["seed"]
    classes = [str(label) for label in range(10)]
    model = build_model(build_model_config(load_model_config_overrides(args.model_config), classes))
    model.load_state_dict(load_file(folders[0] / "model.safetensors"), strict=True)
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.weight_decay_scope)
    optimizer.load_state_dict(torch.load(folders[0] / "optimizer.bin", weights_only=True))
    assert [state["step"].item() for state in optimizer.state.values()] == [manifest["global_step"]] * len(
        list(model.parameters()))
    scheduler = make_scheduler(optimizer, args, -(-metrics["train_samples"] // args.batch_size))
    scheduler.load_state_dict(torch.load(folders[0] / "scheduler.bin", weights_only=True))
    assert scheduler.last_epoch == manifest["global_step"]


@pytest.mark.parametrize("run", sorted(REFERENCE_RESUMABLE), ids=[run.name for run in sorted(REFERENCE_RESUMABLE)])
def test_stopped_tutorial_code_run_keeps_the_checkpoint_of_its_last_epoch(run):
    # benchmarks/tutorial_reference.py's one checkpoint file, at the end of the last epoch metrics.json records,
    # for the run the quoted command describes; its weights and AdamW state load into the tutorial's model.
    import torch

    spec = importlib.util.spec_from_file_location("tutorial_reference", ROOT / "benchmarks" / "tutorial_reference.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)

    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["state.pt"]
    state = torch.load(run / "checkpoints" / "state.pt", weights_only=False)
    metrics = json.loads((run / "metrics.json").read_text())
    assert state["history"]["metrics"] == {key: metrics[key] for key in state["history"]["metrics"]}
    assert state["history"]["timings"] == {key: metrics[key] for key in state["history"]["timings"]}
    assert state["history"]["metrics"]["epoch"][-1] < metrics["args"]["epochs"]  # stopped before its end
    assert state["run"] == {key: metrics["args"][key] for key in ("epochs", "seed", "dataset_name",
                                                                  "max_train_samples", "max_eval_samples",
                                                                  "tutorial_dir")}
    # The quoted command is that run's: the same settings, this folder.
    argv = REFERENCE_RESUMABLE[run]
    quoted = {key: argv[argv.index(f"--{key.replace('_', '-')}") + 1] for key in ("epochs", "seed", "output_dir")}
    assert quoted == {"epochs": str(state["run"]["epochs"]), "seed": str(state["run"]["seed"]),
                      "output_dir": str(run.relative_to(ROOT))}
    assert not {"--dataset-name", "--tutorial-dir", "--max-train-samples", "--max-eval-samples"} & set(argv)
    tutorial_dir = ROOT / metrics["args"]["tutorial_dir"]
    if (tutorial_dir / "vit.py").is_file():  # ../shared is there: load the state into what the command builds
        model, optimizer = runner.tutorial_model_and_optimizer(str(tutorial_dir))
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        steps = metrics["epoch"][-1] * -(-metrics["train_samples"] // 256)  # batch 256, the last one partial
        assert {s["step"].item() for s in optimizer.state.values()} == {steps}


def test_headline_models_keep_their_weights():
    assert [name for name in HEADLINE_MODELS if ROOT / "results" / name not in MODELS] == []


def test_only_headline_models_keep_weights():
    assert sorted(run.name for run in MODELS) == sorted(HEADLINE_MODELS)


def test_experiment_log_names_the_headline_models():
    # The log's opening says which runs keep their model: exactly these.
    opening = (ROOT / "docs" / "experiments.md").read_text().split("What checks this page")[0]
    assert sorted(re.findall(r"`results/([^`/]+)/`", opening)) == sorted(HEADLINE_MODELS)


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
