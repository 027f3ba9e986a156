"""The committed results are what they claim: each finished model under results/ reloads as Hub remote code and,
evaluated on the full CIFAR-10 test split through its own image processor, gives the accuracy its metrics.json
reports for the last epoch (the figure the README quotes)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = ROOT.parent / "shared" / "datasets" / "cifar10"
FINISHED = sorted(p.parent for p in (ROOT / "results").glob("*/model.safetensors"))


@pytest.mark.skipif(not CIFAR10.is_dir(), reason="the CIFAR-10 copy (../shared/datasets/cifar10) is not present")
@pytest.mark.skipif(not FINISHED, reason="no finished model under results/ yet")
@pytest.mark.parametrize("run", FINISHED, ids=[p.name for p in FINISHED])
def test_committed_model_reproduces_its_reported_accuracy(run, tmp_path):
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"][-1] == metrics["args"]["epochs"], "the run did not finish"
    script = textwrap.dedent(f"""
        import json, torch, datasets
        from transformers import AutoImageProcessor, AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained({str(run)!r}, trust_remote_code=True).eval()
        processor = AutoImageProcessor.from_pretrained({str(run)!r})
        test = datasets.load_dataset({str(CIFAR10)!r}, split="test")
        correct = 0
        with torch.no_grad():
            for start in range(0, len(test), 1000):
                rows = test[start:start + 1000]
                pixels = processor(images=[im.convert("RGB") for im in rows["img"]], return_tensors="pt")
                preds = model(**pixels).logits.argmax(-1)
                correct += (preds == torch.tensor(rows["label"])).sum().item()
        print(json.dumps({{"accuracy": correct / len(test), "n": len(test)}}))
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["n"] == 10000 == metrics["eval_samples"]
    assert measured["accuracy"] == pytest.approx(metrics["eval_accuracy"][-1], abs=3e-4)  # a borderline image may flip with batch size


# The run that measured `--recipe improved-40` was launched with explicit flags before the preset had a name.
PRESET_RUN = ROOT / "results" / "improved-6-layers-mean-bs64-lr3e-3-40-epochs"
# Arguments that say where data and outputs live, not how the model is trained.
NOT_RECIPE = {"recipe", "dataset_name", "output_dir", "exp_name", "save_model_every", "resume_from_checkpoint",
              "num_workers", "report_to"}


@pytest.mark.skipif(not (PRESET_RUN / "metrics.json").is_file(), reason="the improved-40 run is not committed")
def test_improved_40_preset_is_the_committed_run():
    # The README credits this run to the preset: the preset must expand to exactly the settings it ran with.
    sys.path.insert(0, str(ROOT))
    from run_train import load_model_config_overrides, parse_args

    ran = json.loads((PRESET_RUN / "metrics.json").read_text())["args"]
    preset = vars(parse_args(["--recipe", "improved-40"]))
    # Options added after the run must default, in the preset, to the value that means what the run did.
    added_since = {"max_grad_norm": None}  # no clipping
    assert set(ran) <= set(preset) and set(preset) - set(ran) <= set(added_since)
    new_options = set(preset) - set(ran)
    assert {key: preset[key] for key in new_options} == {key: added_since[key] for key in new_options}
    differing = {key: (ran[key], preset[key]) for key in ran if key not in NOT_RECIPE and ran[key] != preset[key]}
    assert not differing, differing
    config = json.loads((PRESET_RUN / "config.json").read_text())
    for key, value in load_model_config_overrides(preset["model_config"]).items():
        assert config[key] == value
