"""The experiment log (docs/experiments.md) quotes what the runs recorded: every accuracy in its Runs table is the
final-epoch accuracy in the `metrics.json` of the folder that row names, every row has its command, and each
figure its Findings derive from several runs is recomputed here from their `metrics.json`."""

import json
import re
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOG = (ROOT / "docs" / "experiments.md").read_text()


def metrics_of(*names):
    """The metrics.json of each named results/ folder."""
    return [json.loads((ROOT / "results" / name / "metrics.json").read_text()) for name in names]


def results_table_rows():
    """(folder, line) for each row of the log's Runs table that names a results/ folder."""
    section = LOG.split("\n## Runs\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        folder = re.search(r"`(results/[^`/]+)/`", line)
        if line.startswith("|") and folder:
            rows.append((folder.group(1), line))
    return rows


def table_matches(pattern):
    """(folder, match) for each row of the Runs table in which `pattern` is found."""
    return [(folder, match) for folder, line in results_table_rows() if (match := re.search(pattern, line))]


def results_rows():
    """(folder, stated accuracy in %) for each row of the log's Runs table that names a results/ folder."""
    return [(folder, float(match.group(1))) for folder, match in table_matches(r"\*\*(\d+\.\d+)%\*\*")]


def best_epoch_cells():
    """(folder, stated best accuracy in %, stated epoch) from the Runs table's "best epoch" column."""
    return [(folder, float(match.group(1)), int(match.group(2)))
            for folder, match in table_matches(r"\| (\d+\.\d+)% \(epoch (\d+)\) \|")]


@pytest.mark.parametrize("folder, stated, epoch", best_epoch_cells(), ids=[cell[0] for cell in best_epoch_cells()])
def test_results_table_states_each_runs_best_epoch(folder, stated, epoch):
    accuracy = json.loads((ROOT / folder / "metrics.json").read_text())["eval_accuracy"]
    assert stated == round(100 * max(accuracy), 2)
    assert accuracy[epoch - 1] == max(accuracy)


def seed_spread(seed_42_folder, seed_43_folder):
    """Final accuracies (%) of two runs, their largest gaps at single epochs before and from epoch 20, final gap."""
    seed_42, seed_43 = (json.loads((ROOT / "results" / name / "metrics.json").read_text())["eval_accuracy"]
                        for name in (seed_42_folder, seed_43_folder))
    gaps = [100 * abs(a - b) for a, b in zip(seed_42, seed_43)]
    return 100 * seed_42[-1], 100 * seed_43[-1], max(gaps[:19]), max(gaps[19:]), gaps[-1]


def test_seed_spread_figures_match_the_two_lr_3e_3_runs():
    # Findings, "Seed noise": the improved-40 settings at LR 3e-3 (the preset's first version), seeds 42 and 43.
    a, b, before, after, final = seed_spread("improved-6-layers-mean-bs64-lr3e-3-40-epochs", "improved-40-seed-43")
    text = " ".join(LOG.split())
    assert (f"ended at {b:.2f}% against seed 42's {a:.2f}%, although the two runs were "
            f"up to {before:.2f} points apart at single epochs before epoch 20 (up to {after:.2f} after)") in text
    assert f"moved by {final:.2f} points between the two seeds measured" in text


def test_seed_spread_figures_match_the_two_preset_runs():
    # The same for the preset (LR 4e-3), seeds 42 and 43.
    a, b, before, after, final = seed_spread("improved-40-lr-4e-3", "improved-40-lr-4e-3-seed-43")
    text = " ".join(LOG.split())
    assert (f"At LR 4e-3 the two seeds ended {final:.2f} points apart ({a:.2f}% and {b:.2f}%), after gaps of up to "
            f"{before:.2f} points at single epochs before epoch 20 and {after:.2f} after.") in text
    assert f"**{a:.2f}%** after 40 epochs with seed 42" in text and f"**{b:.2f}%** with seed 43" in text


def test_100_epoch_comparison_figures_match_the_two_trivialaugment_runs():
    # Findings: the improved-40 settings over 100 epochs against the tutorial-size model, both with TrivialAugment.
    metrics = {name: json.loads((ROOT / "results" / name / "metrics.json").read_text())
               for name in ("improved-40-100-epochs-trivialaugment", "improved-trivialaugment")}
    new, old = (metrics[name]["eval_accuracy"] for name in metrics)
    run = metrics["improved-40-100-epochs-trivialaugment"]
    gaps = [100 * (a - b) for a, b in zip(new, old)]
    worst = min(range(len(gaps)), key=gaps.__getitem__)
    ahead_from = max(epoch for epoch, gap in enumerate(gaps, 1) if gap <= 0) + 1
    goal_epoch = next(epoch for epoch, accuracy in enumerate(new, 1) if accuracy >= 0.755)
    text = " ".join(LOG.split())
    assert (f"ended at **{100 * new[-1]:.2f}%**, {gaps[-1]:.2f} points above the tutorial-size model with the improved "
            f"recipe and the same augmentation ({100 * old[-1]:.2f}%). It trailed that run by up to {-gaps[worst]:.2f} "
            f"points (at epoch {worst + 1}), led it at every epoch from {ahead_from} on, and first reached 75.5% at "
            f"epoch {goal_epoch}.") in text
    assert all(train > test for train, test in zip(run["train_loss"], run["eval_loss"]))
    assert (f"({run['train_loss'][-1]:.2f} against {run['eval_loss'][-1]:.2f} at the end)") in text
    assert f"80% is {80 - 100 * new[-1]:.2f} points further" in text


def test_tutorial_size_spt_lsa_figures_match_their_runs():
    # Findings, "The tutorial's sizes with SPT and LSA": results/seed-config against improved-100's run (6 layers) and
    # the tutorial-size model with the improved recipe and TrivialAugment.
    run, six, plain = metrics_of("seed-config", "improved-40-spt-lsa-100-epochs-trivialaugment",
                                 "improved-trivialaugment")
    accuracy = [100 * a for a in run["eval_accuracy"]]
    first = next(epoch for epoch, a in enumerate(accuracy, 1) if a >= 80)
    assert all(a >= 80 for a in accuracy[first - 1:])
    text = " ".join(LOG.split())
    assert (f"{run['num_parameters']:,} parameters, {run['num_parameters'] - plain['num_parameters']:,} more than the "
            f"tutorial-size model's {plain['num_parameters']:,}) ended at **{accuracy[-1]:.2f}%**, "
            f"{100 * six['eval_accuracy'][-1] - accuracy[-1]:.2f} points below the 6-layer improved-100 run with "
            f"{six['num_parameters'] - run['num_parameters']:,} fewer parameters and "
            f"{accuracy[-1] - 100 * plain['eval_accuracy'][-1]:.2f} points above the tutorial-size model with the "
            f"improved recipe and TrivialAugment ({100 * plain['eval_accuracy'][-1]:.2f}%). It first reached 80% at "
            f"epoch {first} and stayed at or above it from there on; its training loss on augmented images ended at "
            f"{run['train_loss'][-1]:.2f} against a test loss of {run['eval_loss'][-1]:.2f}.") in text


def test_improved_20_first_version_figures_match_the_two_seeds():
    # Findings, "20 epochs": the two seeds of improved-20's first version (with the final LayerNorm) against 75.5%.
    runs = metrics_of("improved-20", "improved-20-seed-43")
    assert all(run["args"]["model_config"] == "configs/six-layers-mean-pooling-spt-lsa.json" for run in runs)
    a, b = ([100 * x for x in run["eval_accuracy"]] for run in runs)
    gaps = [abs(x - y) for x, y in zip(a, b)]
    text = " ".join(LOG.split())
    assert f"ended at **{a[-1]:.2f}%** with seed 42 and **{b[-1]:.2f}%** with seed 43, short of the goal" in text
    assert max(a[-1], b[-1]) < 75.5 and f"({75.5 - max(a[-1], b[-1]):.2f} points short with the better seed)" in text
    assert f"up to {max(gaps):.2f} points apart at single epochs and {gaps[-1]:.2f} at the end" in text
    losses = " and ".join(f"{run['train_loss'][-1]:.2f}" for run in runs)
    tests = " and ".join(f"{run['eval_loss'][-1]:.2f}" for run in runs)
    assert f"training loss on augmented images {losses} against test losses of {tests} at the end" in text


def test_improved_20_changes_and_the_final_layernorm_figures_match_their_runs():
    # Findings, "20 epochs" and "The final LayerNorm and the improved recipes": each change to the first version,
    # seed for seed, and the goal sentence.
    first, first_43, batch_32, no_ln, no_ln_43 = metrics_of(
        "improved-20", "improved-20-seed-43", "improved-20-batch-32", "improved-20-no-final-layernorm",
        "improved-20-no-final-layernorm-seed-43")
    assert batch_32["args"]["batch_size"] == 32 and batch_32["args"]["seed"] == 42
    for run, seed in ((no_ln, 42), (no_ln_43, 43)):
        assert run["args"]["model_config"].endswith("-no-final-layernorm.json") and run["args"]["seed"] == seed
        assert run["num_parameters"] == first["num_parameters"] - 96  # one LayerNorm of width 48 fewer
    acc = {name: [100 * x for x in run["eval_accuracy"]]
           for name, run in (("first", first), ("first_43", first_43), ("batch_32", batch_32), ("no_ln", no_ln),
                             ("no_ln_43", no_ln_43))}
    text = " ".join(LOG.split())
    assert f"twice the steps (batch 32 at the same peak LR) ended at **{acc['batch_32'][-1]:.2f}%**" in text
    led = sum(x > y for x, y in zip(acc["no_ln"], acc["first"]))
    gain, gain_43 = acc["no_ln"][-1] - acc["first"][-1], acc["no_ln_43"][-1] - acc["first_43"][-1]
    assert (f"at **{acc['no_ln'][-1]:.2f}%**, {gain:.2f} points above the first version, which it led at {led} of "
            f"the 20 epochs") in text
    assert f"(+{gain:.2f} points without it with seed 42, {gain_43:+.2f} with seed 43)" in text
    led_43 = sum(x > y for x, y in zip(acc["no_ln_43"], acc["first_43"]))
    gaps = [abs(x - y) for x, y in zip(acc["no_ln"], acc["no_ln_43"])]
    reached = [next(i + 1 for i, x in enumerate(acc[name]) if x >= 75.5) for name in ("no_ln", "no_ln_43")]
    assert (f"With seed 43 it ended at **{acc['no_ln_43'][-1]:.2f}%**, {gain_43:.2f} points above the first "
            f"version's seed 43, which it led at {led_43} of the 20 epochs; its two seeds were up to {max(gaps):.2f} "
            f"points apart at single epochs and {gaps[-1]:.2f} at the end") in text
    assert reached[0] == reached[1] and f"both first reached 75.5% at epoch {reached[0]}" in text
    goal = f"**{acc['no_ln'][-1]:.2f}%** with seed 42 and **{acc['no_ln_43'][-1]:.2f}%** with seed 43"
    met = min(acc["no_ln"][-1], acc["no_ln_43"][-1]) >= 75.5
    assert (f"75.5% within 20 epochs** is {'met' if met else 'not met'} by the `improved-20` preset" in text
            and goal in text)


def test_final_layernorm_at_100_epochs_figures_match_the_two_tutorial_size_runs():
    # Findings, "The final LayerNorm and the improved recipes": tutorial-size-100 with and without the final
    # LayerNorm, seed 42, nothing else changed.
    with_ln, without = metrics_of("seed-config", "tutorial-size-100-no-final-layernorm")
    assert without["args"]["model_config"] == "configs/mean-pooling-spt-lsa-no-final-layernorm.json"
    assert without["args"]["recipe"] == "tutorial-size-100" and without["args"]["seed"] == with_ln["args"]["seed"] == 42
    assert without["num_parameters"] == with_ln["num_parameters"] - 96  # one LayerNorm of width 48 fewer
    a, b = ([100 * x for x in run["eval_accuracy"]] for run in (without, with_ln))
    assert len(a) == len(b) == 100
    gain = a[-1] - b[-1]
    led, led_last_20 = sum(x > y for x, y in zip(a, b)), sum(x > y for x, y in zip(a[-20:], b[-20:]))
    gaps = [x - y for x, y in zip(a, b)]
    widest = max(range(100), key=lambda i: abs(gaps[i]))
    first_80 = next(i + 1 for i, x in enumerate(a) if x >= 80)
    text = " ".join(LOG.split())
    assert (f"the run without it ended at **{a[-1]:.2f}%**, {abs(gain):.2f} points "
            f"{'above' if gain > 0 else 'below'} `results/seed-config/` ({b[-1]:.2f}%, with it), which it led at "
            f"{led} of the 100 epochs and at {led_last_20} of the last 20; the widest gap at one epoch was "
            f"{gaps[widest]:+.2f} points (epoch {widest + 1}). It first reached 80% at epoch {first_80}; its training "
            f"loss on augmented images ended at {without['train_loss'][-1]:.2f} against a test loss of "
            f"{without['eval_loss'][-1]:.2f}") in text
    # The verdict against the seed spread: the end-of-run gap between the two seeds of improved-20's first version.
    seeds = metrics_of("improved-20", "improved-20-seed-43")
    spread = 100 * abs(seeds[0]["eval_accuracy"][-1] - seeds[1]["eval_accuracy"][-1])
    assert f"between two seeds of one recipe measured here (up to {spread:.2f} points" in text
    pairs = [("improved-6-layers-mean-bs64-lr3e-3-40-epochs", "improved-40-seed-43"),
             ("improved-40-lr-4e-3", "improved-40-lr-4e-3-seed-43"),
             ("improved-40-lr-5e-3", "improved-40-lr-5e-3-seed-43"),
             ("improved-20-no-final-layernorm", "improved-20-no-final-layernorm-seed-43"),
             ("tutorial-recipe", "tutorial-recipe-seed-43"), ("seed-config", "tutorial-size-100-seed-43"),
             ("improved-40-spt-lsa-100-epochs-trivialaugment", "improved-100-seed-43"), (CONV_RUN, CONV_SEED_43)]
    assert all(spread >= seed_spread(*pair)[-1] for pair in pairs)  # "up to": no other pair ended further apart
    assert ("the final LayerNorm shows no clear effect either way" in text) == (abs(gain) <= spread)
    assert ("without it the run ends higher at 100 epochs too" in text) == (gain > spread)
    behind = sum(y > x for x, y in zip(a[-20:], b[-20:]))
    assert f"(though the run with it led at {behind} of the last 20 epochs)" in text


def test_batch_256_trivialaugment_figures_match_the_two_gpu_runs():
    # Findings, "Batch 256": the two batch-256 TrivialAugment runs of the GPU lease, against the batch-64 CPU run of
    # the same 6-layer model and the earlier batch-256 GPU run without TrivialAugment.
    six, seven, bs64, plain = metrics_of("improved-bs256-6-layers-trivialaugment-gpu",
                                         "improved-bs256-7-layers-trivialaugment-gpu",
                                         "improved-40-100-epochs-trivialaugment", "improved-bs256-6-layers-gpu-partial")
    text = " ".join(LOG.split())
    for run in (six, seven):
        assert run["args"]["batch_size"] == 256 and run["args"]["augmentation"] == "trivialaugment"
        assert run["train_loss"][-1] > run["eval_loss"][-1]
    assert (f"ended at **{100 * six['eval_accuracy'][-1]:.2f}%** on the improved-40 model (6 layers) and "
            f"**{100 * seven['eval_accuracy'][-1]:.2f}%** on 7 layers with MLP 176") in text
    gap = 100 * (bs64["eval_accuracy"][-1] - six["eval_accuracy"][-1])
    assert f"ended {gap:.2f} points below the same model at batch 64 and peak LR 4e-3 on the CPU " \
           f"({100 * bs64['eval_accuracy'][-1]:.2f}%)" in text
    # One test loss is stated for both runs: both must round to it.
    assert f"{seven['eval_loss'][-1]:.2f}" == f"{six['eval_loss'][-1]:.2f}"
    assert f"(training loss {six['train_loss'][-1]:.2f} and {seven['train_loss'][-1]:.2f} against test loss " \
           f"{six['eval_loss'][-1]:.2f} at the end)" in text
    medians = [statistics.median(run["epoch_seconds"]) for run in (six, seven, plain)]
    assert (f"median epoch {medians[0]:.2f} s (6 layers) and {medians[1]:.2f} s (7 layers) side by side, against "
            f"{medians[2]:.2f} s alone") in text
    assert (f"in {six['wall_time_seconds'] / 60:.1f} and {seven['wall_time_seconds'] / 60:.1f} minutes of "
            f"training and evaluation") in text


def test_results_table_has_rows():
    assert len(results_rows()) >= 3


def test_results_table_states_the_range_of_changed_models_sizes():
    # The Runs table's preamble: the smallest and largest model among the rows that change the tutorial's model (its
    # 119,194 parameters, or 119,098 without the final LayerNorm), within the budget.
    sizes = {json.loads((ROOT / folder / "metrics.json").read_text())["num_parameters"]
             for folder, _ in results_table_rows()}
    changed = sorted(sizes - {119_194, 119_098})
    assert changed[-1] <= 200_000
    assert (f"The rows that change the model name its parameter count ({changed[0]:,} to {changed[-1]:,}; all within "
            f"the issue's 0.2M budget)") in " ".join(LOG.split())


def moved_runs():
    """(folder, output_dir) for each Runs-table row whose run wrote to another folder than the one the row names."""
    recorded = [(folder, json.loads((ROOT / folder / "metrics.json").read_text())["args"]["output_dir"])
                for folder, _ in results_table_rows()]
    return [(folder, written) for folder, written in recorded if written.rstrip("/") != folder]


@pytest.mark.parametrize("folder, written", moved_runs(), ids=[folder for folder, _ in moved_runs()])
def test_results_table_runs_written_elsewhere_say_where(folder, written):
    # The Commands quote each run's --output-dir as the folder it is in now; a run written elsewhere and moved must
    # say where, by the folder its metrics.json records (in full or by name) or, for the runs/ folders of a
    # machine's scratch space, as a run that wrote to `runs/`.
    text = " ".join(LOG.split())
    assert (f"`{written}`" in text or f"`{Path(written).name}`" in text
            or (written.startswith("runs/") and "wrote to `runs/`" in text))


@pytest.mark.parametrize("folder", [row[0] for row in results_rows()])
def test_results_table_row_has_a_command(folder):
    # tests/test_results.py checks each listed command against the arguments its run recorded.
    commands = [line for line in LOG.splitlines() if line.startswith("    python run_train.py ")]
    assert any(line.endswith(f"--output-dir {folder}") or f"--output-dir {folder} " in line for line in commands)


@pytest.mark.parametrize("folder, stated", results_rows(), ids=[row[0] for row in results_rows()])
def test_results_table_states_each_runs_recorded_accuracy(folder, stated):
    metrics = json.loads((ROOT / folder / "metrics.json").read_text())
    assert metrics["epoch"][-1] == metrics["args"]["epochs"], f"{folder} has not finished"
    assert stated == round(100 * metrics["eval_accuracy"][-1], 2)


def partial_rows():
    """(folder, epoch reached, epochs planned, stated accuracy in %) for each row of the log's table of runs that
    a time limit stopped early (they state the accuracy at the epoch reached, not a final one)."""
    rows = []
    for line in LOG.splitlines():
        folder = re.search(r"`(results/[^`/]+-partial)/`", line)
        reached = re.search(r"epoch (\d+) of (\d+) \| (\d+\.\d+)%", line)
        if line.lstrip().startswith("|") and folder and reached:
            rows.append((folder.group(1), int(reached.group(1)), int(reached.group(2)), float(reached.group(3))))
    return rows


def test_partial_runs_table_has_rows():
    assert len(partial_rows()) >= 1


@pytest.mark.parametrize("folder, reached, planned, stated", partial_rows(), ids=[row[0] for row in partial_rows()])
def test_partial_runs_state_their_recorded_epoch_and_accuracy(folder, reached, planned, stated):
    metrics = json.loads((ROOT / folder / "metrics.json").read_text())
    assert (metrics["epoch"][-1], metrics["args"]["epochs"]) == (reached, planned)
    assert stated == round(100 * metrics["eval_accuracy"][-1], 2)


def controlled_run_rows():
    """(folder, seed, stated accuracies in % at epochs 1-3) for each run_train.py cell of the controlled-runs table
    that quotes the first epochs of a committed run."""
    section = LOG.split("\n## The tutorial's loop against run_train.py (controlled runs)\n", 1)[1].split("\n## ", 1)[0]
    cell = r"^\| (\d+) \| .* \| (\d+\.\d) / (\d+\.\d) / (\d+\.\d)% \(the first epochs of `results/([^`/]+)/`"
    return [(match.group(5), int(match.group(1)), [float(match.group(i)) for i in (2, 3, 4)])
            for line in section.splitlines() if (match := re.search(cell, line))]


def test_controlled_runs_table_quotes_committed_runs():
    assert len(controlled_run_rows()) >= 2


@pytest.mark.parametrize("folder, seed, stated", controlled_run_rows(), ids=[row[0] for row in controlled_run_rows()])
def test_controlled_runs_table_quotes_the_first_epochs_of_the_named_run(folder, seed, stated):
    (run,) = metrics_of(folder)
    assert (run["args"]["recipe"], run["args"]["seed"]) == ("tutorial", seed)
    assert stated == [round(100 * accuracy, 1) for accuracy in run["eval_accuracy"][:3]]


def test_tutorial_recipe_second_seed_figures_match_both_runs():
    # Findings and "Machine and timing": the tutorial recipe with seed 43 against seed 42, both 100 epochs, and the
    # issue's goals (within 2.5 points of the tutorial's own code at epoch 3; 74.5% at epoch 100).
    first, second = metrics_of("tutorial-recipe", "tutorial-recipe-seed-43")
    assert (first["args"]["seed"], second["args"]["seed"]) == (42, 43)
    for run in (first, second):
        assert (run["args"]["recipe"], run["args"]["lr_scheduler"], run["args"]["warmup_epochs"]) == \
            ("tutorial", "constant", 0)
        assert run["epoch"] == list(range(1, 101))
    a, b = ([100 * accuracy for accuracy in run["eval_accuracy"]] for run in (first, second))
    gaps = [y - x for x, y in zip(a, b)]
    text = " ".join(LOG.split())
    assert f"with seed 43 it had {b[2]:.2f}% at epoch 3 (seed 42: {a[2]:.2f}%)" in text
    assert b[2] < 48.7 and f"{48.7 - b[2]:.2f} points below the tutorial's own code there (48.7%, seed 0" in text
    assert (f"over epochs 21-100 it averaged {statistics.mean(b[20:]):.2f}% against seed 42's "
            f"{statistics.mean(a[20:]):.2f}%") in text
    assert f"ahead at {sum(gap > 0 for gap in gaps)} of the 100 epochs" in text
    assert f"up to {max(map(abs, gaps)):.2f} points apart at single epochs" in text
    assert (f"best {max(b):.2f}% (epoch {b.index(max(b)) + 1}) against "
            f"{max(a):.2f}% (epoch {a.index(max(a)) + 1})") in text
    last = slice(80, 100)  # the last 20 epochs, the band the constant learning rate leaves
    assert (f"Over epochs 81-100 it ranged from {min(b[last]):.2f}% to {max(b[last]):.2f}% (seed 42: "
            f"{min(a[last]):.2f}% to {max(a[last]):.2f}%), and it ended at **{b[-1]:.2f}%**, {b[-1] - a[-1]:.2f} "
            f"points above seed 42's last epoch") in text
    assert (f"is {a[-1]:.2f}% with seed 42 and {b[-1]:.2f}% with seed 43, {75.5 - a[-1]:.2f} and {75.5 - b[-1]:.2f} "
            f"points below the tutorial's 75.5% (on PNGs), both short of the issue's 74.5%") in text
    assert max(a[-1], b[-1]) < 74.5 and max(b) < 74.5  # "seed 43 reached 74.5% at no epoch"
    # The run was stopped at epoch 80 and resumed in another session: its epoch times in two parts.
    assert second["args"]["resume_from_checkpoint"] == "latest"
    seconds = second["epoch_seconds"]
    parts = [f"median {statistics.median(part):.0f} s, up to {max(part):.0f} s; {sum(part) / 3600:.2f} h"
             for part in (seconds[:80], seconds[80:])]
    assert (f"epochs 1-80 alone but for a few short test runs ({parts[0]}), epochs 81-100 alone in the next session "
            f"({parts[1]})") in text
    assert f"| {sum(seconds) / 3600:.2f} h | CPU, see below | `results/tutorial-recipe-seed-43/` |" in text


def second_seed_sentence(seed_42_folder, seed_43_folder, command, goal=80):
    """The Findings sentence on a 100-epoch run repeated with seed 43: its end against seed 42, the widest gaps at
    single epochs, and when it first reached `goal` (%)."""
    a, b, before, after, final = seed_spread(seed_42_folder, seed_43_folder)
    accuracy = [100 * x for x in metrics_of(seed_43_folder)[0]["eval_accuracy"]]
    first = next((epoch for epoch, x in enumerate(accuracy, 1) if x >= goal), None)
    if first is None:
        reached = f"; it did not reach {goal}%."
    else:
        below_again = sum(x < goal for x in accuracy[first - 1:])
        reached = (f"; it first reached {goal}% at epoch {first}" +
                   (" and stayed at or above it from there on." if not below_again else
                    f" and was below it at {below_again} of the later epochs."))
    return (f"With `--seed 43` (`results/{seed_43_folder}/`) {command} ended at **{b:.2f}%**, "
            f"{final:.2f} points {'above' if b > a else 'below'} seed 42, after gaps of up to {before:.2f} points at "
            f"single epochs before epoch 20 and {after:.2f} after" + reached)


def test_tutorial_size_100_second_seed_figures_match_both_runs():
    # Findings: results/seed-config's command again with seed 43, and where the run without the final LayerNorm
    # (seed 42) falls against the two seeds with it; "Machine and timing": the run's epoch times.
    first, second, without = metrics_of("seed-config", "tutorial-size-100-seed-43",
                                        "tutorial-size-100-no-final-layernorm")
    assert (first["args"]["seed"], second["args"]["seed"], without["args"]["seed"]) == (42, 43, 42)
    assert second["args"]["recipe"] == "tutorial-size-100" and second["epoch"] == list(range(1, 101))
    a, b = (100 * run["eval_accuracy"][-1] for run in (first, second))
    text = " ".join(LOG.split())
    assert second_seed_sentence("seed-config", "tutorial-size-100-seed-43", "the same command") in text
    assert f"**{a:.2f}%** with seed 42 and **{b:.2f}%** with seed 43 (the bullet after that)" in text  # the goals
    low, high, alone = min(a, b), max(a, b), 100 * without["eval_accuracy"][-1]
    where = ("inside" if low <= alone <= high else f"{low - alone:.2f} points below" if alone < low else
             f"{alone - high:.2f} points above")
    assert (f"the run with it ended at {b:.2f}%: its two seeds span {low:.2f}-{high:.2f}%, and the run without it "
            f"({alone:.2f}%, seed 42) lies {where} that range") in text
    if where != "inside":
        assert min(abs(alone - low), abs(alone - high)) < high - low
        assert "closer to the seed-43 run than the two seeds with it are to each other." in text
    seconds = second["epoch_seconds"]
    assert f"(median {statistics.median(seconds):.0f} s, up to {max(seconds):.0f} s)." in text


def test_improved_100_second_seed_figures_match_both_runs():
    # Findings: the improved-100 preset's command with seed 43 against its seed-42 run (launched with the flags the
    # preset now stands for); the goals bullet gives both; "Machine and timing": the run's epoch times.
    first, second = metrics_of("improved-40-spt-lsa-100-epochs-trivialaugment", "improved-100-seed-43")
    assert (first["args"]["seed"], second["args"]["seed"]) == (42, 43)
    assert second["args"]["recipe"] == "improved-100" and second["epoch"] == list(range(1, 101))
    assert second["num_parameters"] == first["num_parameters"]
    a, b = (100 * run["eval_accuracy"][-1] for run in (first, second))
    text = " ".join(LOG.split())
    assert second_seed_sentence("improved-40-spt-lsa-100-epochs-trivialaugment", "improved-100-seed-43",
                                "the preset's command") in text
    assert f"**{a:.2f}%** with seed 42 and **{b:.2f}%** with seed 43 (the bullet after next)" in text
    seconds = second["epoch_seconds"]
    assert (f"The improved-100 preset's seed-43 run ran on a 2-core Intel box (AMX, 24 GB, the same software) with 2 "
            f"threads, alone but for a few short test runs (median {statistics.median(seconds):.0f} s, up to "
            f"{max(seconds):.0f} s).") in text


CONV_RUN, IMPROVED_100_RUNS = "improved-100-conv-tokenizer", ("improved-40-spt-lsa-100-epochs-trivialaugment",
                                                              "improved-100-seed-43")
CONV_SEED_43 = "conv-tokenizer-100-seed-43"
SEQUENCE_POOLING_RUN = "conv-tokenizer-100-sequence-pooling"
WIDE_TOKENIZER_RUN = "conv-tokenizer-100-56-channels"
BATCH_32_RUN = "conv-tokenizer-100-batch-32"
BATCH_128_RUN = "conv-tokenizer-100-batch-128"
LR_5E_3_RUN = "conv-tokenizer-100-lr-5e-3"
RANDAUGMENT_RUN = "conv-tokenizer-100-randaugment"
WIDE_SHALLOW_RUN = "conv-tokenizer-100-five-layers-hidden-64"
WIDE_SHALLOW_CONFIG = "configs/five-layers-hidden-64-mlp-128-mean-pooling-conv-tokenizer-32-channels-lsa.json"
WIDE_SHALLOW_SEED_43_RUN = "conv-tokenizer-100-five-layers-hidden-64-seed-43"  # with the above: conv-tokenizer-wide-100
# Runs of the conv-tokenizer-100 preset's command with one change (a model config, the batch size, the peak LR or
# the augmentation): what changed, and its Findings bullet.
CONV_VARIANTS = {SEQUENCE_POOLING_RUN: ("with sequence pooling in place of its mean pooling", "Sequence pooling"),
                 WIDE_TOKENIZER_RUN: ("with 56 tokenizer channels", "56 tokenizer channels"),
                 BATCH_32_RUN: ("at batch 32", "Batch 32"),
                 BATCH_128_RUN: ("at batch 128", "Batch 128"),
                 LR_5E_3_RUN: ("at peak LR 5e-3", "Peak LR 5e-3"),
                 RANDAUGMENT_RUN: ("with RandAugment in place of TrivialAugmentWide", "RandAugment"),
                 WIDE_SHALLOW_RUN: ("on 5 layers of width 64 with an MLP of 128 and 32 tokenizer channels",
                                    "A wider, shallower model")}


def conv_tokenizer_sentences():
    """The Findings sentences on improved-100 with CCT's convolutional tokenizer in place of SPT: its end and best,
    against both improved-100 seeds epoch by epoch, the epochs it first reached 80% and 86%, its losses."""
    run, *spt = metrics_of(CONV_RUN, *IMPROVED_100_RUNS)
    accuracy = [100 * x for x in run["eval_accuracy"]]
    others = [[100 * x for x in other["eval_accuracy"]] for other in spt]
    final, best = accuracy[-1], max(accuracy)
    best_epoch = accuracy.index(best) + 1
    ahead = [x - max(a, b) for x, a, b in zip(accuracy, *others)]  # over the better seed at each epoch
    led = sum(gap > 0 for gap in ahead)
    widest = max(ahead)
    first = {goal: next((epoch for epoch, x in enumerate(accuracy, 1) if x >= goal), None) for goal in (80, 86)}
    ends = [other[-1] for other in others]
    reached = (f"it first reached 80% at epoch {first[80]} and 86% at epoch {first[86]}" if first[86] else
               f"it first reached 80% at epoch {first[80]} and did not reach 86%")
    return (f"It ended at **{final:.2f}%** (best {best:.2f}% at epoch {best_epoch}), {final - max(ends):.2f} points "
            f"above improved-100's better seed ({max(ends):.2f}%) and {final - min(ends):.2f} above the other "
            f"({min(ends):.2f}%); it was ahead of both at {led} of the 100 epochs, by up to {widest:.2f} points "
            f"(epoch {ahead.index(widest) + 1}), and {reached}. Its training loss on augmented images ended at "
            f"{run['train_loss'][-1]:.2f} against a test loss of {run['eval_loss'][-1]:.2f}.")


def test_conv_tokenizer_figures_match_the_run_and_both_improved_100_seeds():
    # Findings: the conv-tokenizer-100 preset's run (launched as improved-100 with the model config the preset now
    # names) against improved-100's two seeds; the goals bullet; "Machine and timing": its epoch times.
    run, spt = metrics_of(CONV_RUN, IMPROVED_100_RUNS[0])
    assert run["epoch"] == list(range(1, 101)) and run["args"]["seed"] == 42
    assert run["args"]["model_config"] == "configs/six-layers-mean-pooling-conv-tokenizer-lsa.json"
    text = " ".join(LOG.split())
    assert (f"; {run['num_parameters']:,} parameters, {spt['num_parameters'] - run['num_parameters']:,} fewer than "
            f"improved-100's)") in text
    assert conv_tokenizer_sentences() in text
    assert f"The later goal of **86%** with any model of at most 0.2M parameters {goal_86_clause()}" in text
    seconds = run["epoch_seconds"]
    spt_seconds = statistics.median(metrics_of(IMPROVED_100_RUNS[1])[0]["epoch_seconds"])
    assert (f"The conv-tokenizer-100 run ran on such a box with 2 threads, alone but for a few short test runs "
            f"(median {statistics.median(seconds):.0f} s, up to {max(seconds):.0f} s: "
            f"{statistics.median(seconds) / spt_seconds:.2f}x the improved-100 seed-43 run's median).") in text


def seed_ends():
    """The last epochs' accuracies (%), seeds 42 and 43, of the conv-tokenizer-wide-100 preset (the wider-model runs)
    and of the conv-tokenizer-100 preset."""
    return ([100 * m["eval_accuracy"][-1] for m in metrics_of(*names)]
            for names in ((WIDE_SHALLOW_RUN, WIDE_SHALLOW_SEED_43_RUN), (CONV_RUN, CONV_SEED_43)))


def goal_86_clause():
    """The goals bullet's verdict on 86%, from the two seeds of the best preset here (conv-tokenizer-wide-100, the
    wider-model runs) and of the conv-tokenizer-100 preset it was made from, and from that preset's other runs with
    one change, each named when it ended higher than both of that preset's seeds."""
    wide, conv = seed_ends()

    def seeds(ends):
        return f"**{ends[0]:.2f}%** with seed 42 and **{ends[1]:.2f}%** with seed 43"

    # Seed 42's end is asserted at or above 86% (test_wide_shallow_figures_...); seed 43's decides.
    verdict = ("is met by the `conv-tokenizer-wide-100` preset (conv-tokenizer-100 on a wider, shallower model)" +
               ("" if wide[1] >= 86 else " with seed 42 only"))
    variants = [(what, bullet, 100 * metrics_of(name)[0]["eval_accuracy"][-1])
                for name, (what, bullet) in CONV_VARIANTS.items() if name != WIDE_SHALLOW_RUN]
    higher = "".join(f"; {what} it ended at **{end:.2f}%** (seed 42, one seed so far; the bullet \"{bullet}\")"
                     for what, bullet, end in variants if end > max(conv))
    return (f"{verdict}: {seeds(wide)} (the bullet \"A wider, shallower model\"); the `conv-tokenizer-100` preset "
            f"ended at {seeds(conv)} (the bullet \"Compact Convolutional Transformers' tokenizer\"){higher}.")


def test_conv_tokenizer_second_seed_figures_match_both_runs():
    # Findings: the conv-tokenizer-100 preset's command with seed 43 against its seed-42 run, and the two seeds
    # against improved-100's two; "Machine and timing": the run's epoch times.
    first, second, *spt = metrics_of(CONV_RUN, CONV_SEED_43, *IMPROVED_100_RUNS)
    assert (first["args"]["seed"], second["args"]["seed"]) == (42, 43)
    assert second["args"]["recipe"] == "conv-tokenizer-100" and second["epoch"] == list(range(1, 101))
    assert second["num_parameters"] == first["num_parameters"]
    text = " ".join(LOG.split())
    assert second_seed_sentence(CONV_RUN, CONV_SEED_43, "the preset's command") in text
    conv, old = ([100 * run["eval_accuracy"][-1] for run in runs] for runs in ((first, second), spt))
    mean, old_mean = statistics.mean(conv), statistics.mean(old)
    verdict = (f"the worse of them ({min(conv):.2f}%) is above improved-100's better seed ({max(old):.2f}%)"
               if min(conv) > max(old) else
               f"the two presets' seeds overlap ({min(conv):.2f}-{max(conv):.2f}% against "
               f"{min(old):.2f}-{max(old):.2f}%)")
    assert (f"The two seeds average {mean:.2f}%, {abs(mean - old_mean):.2f} points "
            f"{'above' if mean > old_mean else 'below'} improved-100's two ({old_mean:.2f}%), and {verdict}.") in text
    seconds = second["epoch_seconds"]
    assert (f"Its seed-43 run ran on such a box with 2 threads, alone but for test runs, the full suite once "
            f"(median {statistics.median(seconds):.0f} s, up to {max(seconds):.0f} s).") in text


def epochs_above_and_below(accuracy, others):
    """How many epochs a run's accuracy was above both other runs' at the same epoch, and how many below both (up to
    the shortest run's last epoch)."""
    return (sum(x > max(a, b) for x, a, b in zip(accuracy, *others)),
            sum(x < min(a, b) for x, a, b in zip(accuracy, *others)))


def conv_variant_sentences(name):
    """The Findings sentences on a run of the conv-tokenizer-100 preset's command with one change (one of
    CONV_VARIANTS): its end and best against the preset's two seeds and their spread, epoch by epoch, when it first
    reached 80% and 86%, and its losses against theirs."""
    run, *mean = metrics_of(name, CONV_RUN, CONV_SEED_43)
    accuracy = [100 * x for x in run["eval_accuracy"]]
    others = [[100 * x for x in other["eval_accuracy"]] for other in mean]
    final, best = accuracy[-1], max(accuracy)
    ends = [other[-1] for other in others]
    spread = abs(ends[0] - ends[1])
    if final > max(ends):
        where = (f"above both, by {'more' if final - max(ends) > spread else 'less'} than their {spread:.2f}-point "
                 f"spread")
    else:
        where = "below both" if final < min(ends) else "between them"
    above, below = epochs_above_and_below(accuracy, others)
    first = {goal: next((epoch for epoch, x in enumerate(accuracy, 1) if x >= goal), None) for goal in (80, 86)}
    reached = (f"it first reached 80% at epoch {first[80]} and 86% at epoch {first[86]}" if first[86] else
               f"it first reached 80% at epoch {first[80]} and did not reach 86%" if first[80] else
               "it did not reach 80%")
    train, test = (" and ".join(f"{other[key][-1]:.2f}" for other in mean) for key in ("train_loss", "eval_loss"))
    return (f"It ended at **{final:.2f}%** (best {best:.2f}% at epoch {accuracy.index(best) + 1}), "
            f"{abs(final - ends[0]):.2f} points {'above' if final > ends[0] else 'below'} the preset's seed 42 "
            f"({ends[0]:.2f}%) and {abs(final - ends[1]):.2f} {'above' if final > ends[1] else 'below'} its seed 43 "
            f"({ends[1]:.2f}%): {where}. It was above both seeds at {above} of the 100 epochs and below both at "
            f"{below}, and {reached}. Its training loss on augmented images ended at {run['train_loss'][-1]:.2f} "
            f"(the preset's seeds: {train}) against a test loss of {run['eval_loss'][-1]:.2f} ({test}).")


def test_sequence_pooling_figures_match_the_run_and_both_conv_tokenizer_seeds():
    # Findings: the conv-tokenizer-100 preset's command with the sequence-pooling model config against the preset's
    # two seeds; the goals bullet (test_conv_tokenizer_figures_...); "Machine and timing": its epoch times.
    run, conv = metrics_of(SEQUENCE_POOLING_RUN, CONV_RUN)
    assert run["epoch"] == list(range(1, 101)) and run["args"]["seed"] == 42
    assert run["args"]["recipe"] == "conv-tokenizer-100"
    assert run["args"]["model_config"] == "configs/six-layers-sequence-pooling-conv-tokenizer-lsa.json"
    config = json.loads((ROOT / run["args"]["model_config"]).read_text())
    assert config["classifier_pooling"] == "sequence"
    extra = run["num_parameters"] - conv["num_parameters"]
    hidden_size = json.loads((ROOT / "results" / CONV_RUN / "config.json").read_text())["hidden_size"]
    assert extra == hidden_size  # the scoring layer's weights, one per channel, nothing else
    text = " ".join(LOG.split())
    assert (f"; {run['num_parameters']:,} parameters, {extra} more than the preset's, the scoring layer's "
            f"weights)") in text
    assert conv_variant_sentences(SEQUENCE_POOLING_RUN) in text
    seconds, conv_seconds = run["epoch_seconds"], statistics.median(conv["epoch_seconds"])
    assert (f"The sequence-pooling run ran on such a box with 2 threads, alone but for test runs, the full suite once "
            f"(median {statistics.median(seconds):.0f} s, up to {max(seconds):.0f} s: "
            f"{statistics.median(seconds) / conv_seconds:.2f}x the conv-tokenizer-100 run's median).") in text


def two_session_sentences(name, label, stop, moved=True, tested=True):
    """What the log says of a run of the conv-tokenizer-100 preset's command that a session's time limit stopped at
    epoch `stop` and the next session resumed from its checkpoint there: its epoch times in each session and its
    median against the preset's seed-42 run's ("Machine and timing"), its Runs row's time, and where it stopped and
    was moved (Commands): first written to `results/{name}` and moved to `{name}-partial` when it stopped, or, not
    `moved`, launched into `{name}-partial` to be stopped there; not `tested`, its second session ran no tests beside
    it."""
    run, conv = metrics_of(name, CONV_RUN)
    assert run["epoch"] == list(range(1, 101))
    assert (run["args"]["resume_from_checkpoint"], run["args"]["output_dir"]) == ("latest", f"results/{name}-partial")
    seconds = run["epoch_seconds"]
    parts = [f"median {statistics.median(part):.0f} s, up to {max(part):.0f} s; {sum(part) / 3600:.2f} h"
             for part in (seconds[:stop], seconds[stop:])]
    ratio = statistics.median(seconds) / statistics.median(conv["epoch_seconds"])
    where = (f"it wrote its first {stop} epochs to `results/{name}`, was stopped there by a session's time limit, "
             f"moved with its epoch-{stop} checkpoint to `{name}-partial`" if moved else
             f"it wrote its first {stop} epochs to `{name}-partial`, was stopped there by a session's time limit, "
             f"continued from its epoch-{stop} checkpoint in the next session and was moved")
    return (f"The {label} run ran on such a box with 2 threads, epochs 1-{stop} alone but for test runs ({parts[0]}), "
            f"epochs {stop + 1}-100 in the next session, {'also alone but for test runs' if tested else 'alone'} "
            f"({parts[1]}); its median epoch {ratio:.2f}x the conv-tokenizer-100 run's.",
            f"| {sum(seconds) / 3600:.2f} h | CPU, see below | `results/{name}/` |",
            where)


def test_wide_tokenizer_figures_match_the_run_and_both_conv_tokenizer_seeds():
    # Findings: the conv-tokenizer-100 preset's command with the 56-channel model config against the preset's two
    # seeds; the goals bullet (test_conv_tokenizer_figures_...); "Machine and timing", its Runs row and Commands: the
    # two sessions it ran in (stopped by the first's time limit at a checkpoint and resumed from it in the next).
    run, conv = metrics_of(WIDE_TOKENIZER_RUN, CONV_RUN)
    assert run["epoch"] == list(range(1, 101)) and (run["args"]["recipe"], run["args"]["seed"]) == (
        "conv-tokenizer-100", 42)
    assert run["args"]["model_config"] == "configs/six-layers-mean-pooling-conv-tokenizer-56-channels-lsa.json"
    overrides = json.loads((ROOT / run["args"]["model_config"]).read_text())
    assert overrides["tokenizer_channels"] == 56
    config = json.loads((ROOT / "results" / CONV_RUN / "config.json").read_text())
    assert config.get("tokenizer_channels") is None and config["hidden_size"] // 2 < 56  # the preset's is narrower
    # The extra parameters are the two bias-free 3x3 convolutions' weights at the wider width (image channels in,
    # hidden_size out), nothing else.
    width = config["hidden_size"] // 2
    extra = run["num_parameters"] - conv["num_parameters"]
    assert extra == 3 * 3 * (56 - width) * (config["num_channels"] + config["hidden_size"])
    assert run["num_parameters"] <= 200_000
    text = " ".join(LOG.split())
    assert (f"{run['num_parameters']:,} parameters, {extra:,} more than the preset's {conv['num_parameters']:,}: the "
            f"two convolutions' wider weights).") in text
    assert conv_variant_sentences(WIDE_TOKENIZER_RUN) in text
    for sentence in two_session_sentences(WIDE_TOKENIZER_RUN, "56-channel", 77):
        assert sentence in text
    # The bullet's verdict, which the figures must bear out: a gain within the preset's seed spread, slower epochs.
    ends = [100 * m["eval_accuracy"][-1] for m in metrics_of(CONV_RUN, CONV_SEED_43)]
    assert 100 * run["eval_accuracy"][-1] - max(ends) < abs(ends[0] - ends[1])
    assert statistics.median(run["epoch_seconds"]) > statistics.median(conv["epoch_seconds"])
    assert ("One seed so far; for a gain within that spread, and slower epochs (\"Machine and timing\"), the preset "
            "keeps `hidden_size // 2` channels.") in text


def preset_variant(name, key, value, preset_value):
    """A run of the conv-tokenizer-100 preset's command with one change, its argument `key` at `value` instead of the
    preset's `preset_value`, checked to change nothing else (seed 42; the preset's model unless `key` is the model
    config); its metrics and the preset's two seeds'."""
    run, *preset = metrics_of(name, CONV_RUN, CONV_SEED_43)
    seed_43 = preset[1]
    assert (run["args"]["seed"], run["args"][key], seed_43["args"][key]) == (42, value, preset_value)
    where = {"seed", key, "output_dir", "resume_from_checkpoint", "save_total_limit"}  # the rest: the preset's
    assert {k: v for k, v in run["args"].items() if k not in where} == {
        k: v for k, v in seed_43["args"].items() if k not in where}
    if key != "model_config":
        assert run["num_parameters"] == seed_43["num_parameters"]
    return run, preset


def test_batch_32_figures_match_the_run_and_both_conv_tokenizer_seeds():
    # Findings: the conv-tokenizer-100 preset's command at batch 32 (one change: twice the steps at the same peak LR)
    # against the preset's two seeds; the goals bullet (test_conv_tokenizer_figures_...); "Machine and timing", its
    # Runs row and Commands: the two sessions it ran in (stopped by the first's time limit, resumed in the next).
    run, preset = preset_variant(BATCH_32_RUN, "batch_size", 32, 64)
    text = " ".join(LOG.split())
    assert conv_variant_sentences(BATCH_32_RUN) in text
    first, halved = (100 * m["eval_accuracy"][-1] for m in metrics_of("improved-20", "improved-20-batch-32"))
    assert f"at 20 epochs the same change gave improved-20's first version {halved - first:.2f} points" in text
    for sentence in two_session_sentences(BATCH_32_RUN, "batch-32", 58):
        assert sentence in text
    # The bullet's verdict, which the figures must bear out: below both seeds by more than their spread, a higher
    # training loss than either, slower epochs.
    ends = [100 * m["eval_accuracy"][-1] for m in preset]
    assert min(ends) - 100 * run["eval_accuracy"][-1] > abs(ends[0] - ends[1])
    assert run["train_loss"][-1] > max(m["train_loss"][-1] for m in preset)
    assert statistics.median(run["epoch_seconds"]) > statistics.median(preset[0]["epoch_seconds"])
    assert ("One seed so far; it ended below both seeds by more than their spread, with a higher training loss (the "
            "noisier steps fitted the augmented images worse, not better) and slower epochs (\"Machine and timing\"): "
            "the gain twice the steps gave at 20 epochs does not carry over to 100, and the preset keeps batch "
            "64.") in text


def test_batch_128_figures_match_the_run_and_both_conv_tokenizer_seeds():
    # Findings: the conv-tokenizer-100 preset's command at batch 128 (one change: half the steps at the same peak LR)
    # against the preset's two seeds; the goals bullet (test_conv_tokenizer_figures_...); "Machine and timing" and
    # Commands: its epoch times, and the folder it was launched into (to be stopped at a session's end; it finished).
    run, preset = preset_variant(BATCH_128_RUN, "batch_size", 128, 64)
    assert run["epoch"] == list(range(1, 101))
    assert run["args"]["output_dir"] == f"results/{BATCH_128_RUN}-partial" and not run["args"]["resume_from_checkpoint"]
    text = " ".join(LOG.split())
    assert conv_variant_sentences(BATCH_128_RUN) in text
    # Why it was tried: the batch-32 run's final training loss, above both seeds'.
    halved, *_ = metrics_of(BATCH_32_RUN)
    assert halved["train_loss"][-1] > max(m["train_loss"][-1] for m in preset)
    assert (f"the batch-32 run ended with a higher training loss than both seeds ({halved['train_loss'][-1]:.2f}), "
            f"so fewer, less noisy steps might fit the augmented images better") in text
    seconds = run["epoch_seconds"]
    ratio = statistics.median(seconds) / statistics.median(preset[0]["epoch_seconds"])
    assert (f"The batch-128 run ran on such a box with 2 threads, alone but for test runs (median "
            f"{statistics.median(seconds):.0f} s, up to {max(seconds):.0f} s; its median epoch {ratio:.2f}x the "
            f"conv-tokenizer-100 run's).") in text
    assert f"| {sum(seconds) / 3600:.2f} h | CPU, see below | `results/{BATCH_128_RUN}/` |" in text
    # Its course: ahead over epochs 51-80, behind for good from some epoch on, and what each gained from epoch 80 on.
    accuracy, *others = ([100 * x for x in m["eval_accuracy"]] for m in (run, *preset))
    middle = list(zip(accuracy, *others))[50:80]
    ahead = sum(x > max(a, b) for x, a, b in middle)
    behind_from = 1 + max(epoch for epoch, (x, a, b) in enumerate(zip(accuracy, *others), 1) if x >= min(a, b))
    gains = [values[99] - values[79] for values in (accuracy, *others)]
    assert (f"Over epochs 51-80 it averaged {statistics.mean(accuracy[50:80]):.2f}% against the seeds' "
            f"{statistics.mean(others[0][50:80]):.2f}% and {statistics.mean(others[1][50:80]):.2f}% (above both at "
            f"{ahead} of those 30 epochs), and it was below both at every epoch from {behind_from} on: from epoch 80 "
            f"to 100, the cosine's low-LR end, it gained {gains[0]:.2f} points and the seeds {gains[1]:.2f} and "
            f"{gains[2]:.2f}.") in text
    # The bullet's verdict, which the figures must bear out: below both seeds by more than their spread, ahead while
    # the LR was high and gaining less as it decayed, the same training loss (to 0.01), faster epochs.
    ends = [other[-1] for other in others]
    spread, short = abs(ends[0] - ends[1]), min(ends) - accuracy[-1]
    assert short > spread and ahead > 15 and gains[0] < min(gains[1:]) and behind_from > 80
    assert all(abs(run["train_loss"][-1] - m["train_loss"][-1]) < 0.01 for m in preset) and ratio < 1
    assert (f"One seed so far; it ended below both seeds, {short - spread:.2f} points further than their "
            f"{spread:.2f}-point spread, with the same training loss: half the steps led while the LR was high and "
            f"fell behind as it decayed, and the preset keeps batch 64 (though its epochs are faster, \"Machine and "
            f"timing\").") in text


def test_lr_5e_3_figures_match_the_run_and_both_conv_tokenizer_seeds():
    # Findings: the conv-tokenizer-100 preset's command at peak LR 5e-3 (one change) against the preset's two seeds,
    # and the same change at 40 epochs; the goals bullet (test_conv_tokenizer_figures_...); "Machine and timing", its
    # Runs row and Commands: the two sessions it ran in (stopped by the first's time limit, resumed in the next).
    run, preset = preset_variant(LR_5E_3_RUN, "lr", 5e-3, 4e-3)
    text = " ".join(LOG.split())
    assert conv_variant_sentences(LR_5E_3_RUN) in text
    at_40 = [100 * m["eval_accuracy"][-1] for m in metrics_of(
        "improved-40-lr-4e-3", "improved-40-lr-5e-3", "improved-40-lr-4e-3-seed-43", "improved-40-lr-5e-3-seed-43")]
    assert (f"at 40 epochs the same change gave the improved-40 preset {at_40[1] - at_40[0]:+.2f} points with seed 42 "
            f"and {at_40[3] - at_40[2]:+.2f} with seed 43") in text
    for sentence in two_session_sentences(LR_5E_3_RUN, "LR-5e-3", 23, moved=False):
        assert sentence in text
    # The bullet's verdict, which the figures must bear out: below both seeds by less than their spread, below both at
    # most epochs, the same training loss (to 0.01).
    accuracy, *others = ([100 * x for x in m["eval_accuracy"]] for m in (run, *preset))
    ends = [other[-1] for other in others]
    assert 0 < min(ends) - accuracy[-1] < abs(ends[0] - ends[1])
    above, below = epochs_above_and_below(accuracy, others)
    assert below > 50 > above
    assert all(abs(run["train_loss"][-1] - m["train_loss"][-1]) < 0.01 for m in preset)
    assert (f"One seed so far; it ended below both seeds, by less than their {abs(ends[0] - ends[1]):.2f}-point "
            f"spread, after trailing both for most of the run, with the same training loss: the higher peak LR bought "
            f"nothing at 100 epochs, and the preset keeps 4e-3.") in text


def test_randaugment_figures_match_the_run_and_both_conv_tokenizer_seeds():
    # Findings: the conv-tokenizer-100 preset's command with RandAugment in place of TrivialAugmentWide (one change)
    # against the preset's two seeds, and the two policies' strongest distortions on a 32x32 image, as the log quotes
    # them; the goals bullet (test_conv_tokenizer_figures_...); "Machine and timing", its Runs row and Commands: the
    # two sessions it ran in (stopped by the first's time limit, resumed in the next).
    from simple_vit_training.augmentation import BatchAugment
    from simple_vit_training.policies import OPS

    run, (conv, seed_43) = preset_variant(RANDAUGMENT_RUN, "augmentation", "randaugment", "trivialaugment")
    text = " ".join(LOG.split())
    assert conv_variant_sentences(RANDAUGMENT_RUN) in text
    size = json.loads((ROOT / "results" / CONV_RUN / "config.json").read_text())["image_size"]
    # The policies as run_train.py builds them for each --augmentation value.
    wide, rand = (BatchAugment(kind, size).batch_policy for kind in ("trivialaugment", "randaugment"))
    strongest = wide.magnitude_values(size, size).max(dim=1).values
    fixed = rand.magnitude_values(size, size)[:, rand.magnitude]
    translate, rotate, shear = (OPS.index(op) for op in ("TranslateX", "Rotate", "ShearX"))
    assert (f"TrivialAugmentWide (the preset's) gives each image one operation at a magnitude drawn uniformly from "
            f"{wide.num_magnitude_bins} bins, up to shifts of {strongest[translate]:.0f} pixels (the whole image), "
            f"rotations of {strongest[rotate]:.0f} degrees and shears of {strongest[shear]:.2f}; RandAugment at "
            f"torchvision's defaults gives it {rand.num_ops} operations in a row, each at the fixed bin "
            f"{rand.magnitude} of {rand.num_magnitude_bins}: shifts of {int(fixed[translate])} pixels, rotations of "
            f"{fixed[rotate]:.0f} degrees, shears of {fixed[shear]:.2f}") in text
    assert strongest[translate] == size and int(fixed[translate]) < size / 4  # the contrast the sentence draws
    # Why: the preset's runs underfit their augmented images (its two seeds end alike, so one figure each).
    train, test = ({f"{m[key][-1]:.2f}" for m in (conv, seed_43)} for key in ("train_loss", "eval_loss"))
    assert len(train) == len(test) == 1 and float(min(train)) > float(min(test))
    assert (f"(the preset's seeds end with a training loss of {min(train)} against a test loss of "
            f"{min(test)})") in text
    for sentence in two_session_sentences(RANDAUGMENT_RUN, "RandAugment", 30, moved=False, tested=False):
        assert sentence in text
    # The bullet's verdict, which the figures must bear out: above both seeds by less than their spread, a training
    # loss well below theirs (by more than 0.1) for a test loss within 0.02 of theirs.
    ends = [100 * m["eval_accuracy"][-1] for m in (conv, seed_43)]
    assert 0 < 100 * run["eval_accuracy"][-1] - max(ends) < abs(ends[0] - ends[1])
    assert max(m["train_loss"][-1] for m in (conv, seed_43)) - run["train_loss"][-1] > 0.1
    assert all(abs(run["eval_loss"][-1] - m["eval_loss"][-1]) < 0.02 for m in (conv, seed_43))
    assert (f"One seed so far; it ended above both seeds, by less than their {abs(ends[0] - ends[1]):.2f}-point "
            f"spread, and it fitted its milder augmented images far better than the preset fits its own (training "
            f"loss {run['train_loss'][-1]:.2f} against {min(train)}) for about the same test loss: the milder policy "
            f"made training easier rather than the model better, and the preset keeps TrivialAugmentWide until a "
            f"second seed says more.") in text


def test_wide_shallow_figures_match_the_run_and_both_conv_tokenizer_seeds():
    # Findings: the conv-tokenizer-100 preset's command on a wider, shallower model (one change: the model config)
    # against the preset's two seeds, the two models' shapes and sizes and the same kind of change at 40 epochs, as
    # the log quotes them; the goals bullet (test_conv_tokenizer_figures_...); "Machine and timing", its Runs row and
    # Commands: the two sessions it ran in (stopped by the first's time limit, resumed in the next).
    from configuration_simple_vit import SimpleViTConfig
    from simple_vit_training.model_config import load_model_config_overrides

    run, (conv, seed_43) = preset_variant(WIDE_SHALLOW_RUN, "model_config", WIDE_SHALLOW_CONFIG,
                                          "configs/six-layers-mean-pooling-conv-tokenizer-lsa.json")
    text = " ".join(LOG.split())
    assert conv_variant_sentences(WIDE_SHALLOW_RUN) in text
    preset = json.loads((ROOT / "results" / CONV_RUN / "config.json").read_text())
    shape = load_model_config_overrides(ROOT / WIDE_SHALLOW_CONFIG)
    assert all(shape[key] != preset[key] for key in ("hidden_size", "num_hidden_layers", "intermediate_size"))
    ratio = shape["intermediate_size"] // shape["hidden_size"]
    assert (f"{shape['num_hidden_layers']} layers of width {shape['hidden_size']} with an MLP of "
            f"{shape['intermediate_size']} ({ratio} times the width) and {shape['tokenizer_channels']} tokenizer "
            f"channels, where the preset has {preset['num_hidden_layers']} layers of width {preset['hidden_size']} "
            f"with an MLP of {preset['intermediate_size']} ({preset['intermediate_size'] // preset['hidden_size']} "
            f"times) and {preset['hidden_size'] // 2}") in text
    assert shape["tokenizer_channels"] == shape["hidden_size"] // 2  # as wide a tokenizer, relative to the width
    assert run["num_parameters"] <= 200_000
    assert (f"{run['num_parameters']:,} parameters, {run['num_parameters'] - conv['num_parameters']:,} more than the "
            f"preset's {conv['num_parameters']:,}") in text
    # The same kind of change at 40 epochs (the runs' own model configs: 5 layers of width 64 with an MLP of 160,
    # and 6 of the default width 48), quoted as what it gave there.
    runs_at_40 = metrics_of("improved-6-layers-mean-bs64-lr3e-3-40-epochs", "improved-40-5-layers-hidden-64")
    assert [m["args"]["epochs"] for m in runs_at_40] == [40, 40]
    narrow_shape, wide_shape = (SimpleViTConfig(**load_model_config_overrides(ROOT / m["args"]["model_config"]))
                                for m in runs_at_40)
    assert (narrow_shape.num_hidden_layers, narrow_shape.hidden_size) == (6, 48)
    assert (wide_shape.num_hidden_layers, wide_shape.hidden_size, wide_shape.intermediate_size) == (5, 64, 160)
    narrow, wide = (100 * m["eval_accuracy"][-1] for m in runs_at_40)
    assert (f"5 layers of width 64 with an MLP of 160 in place of 6 of width 48, gave {wide:.2f}% against "
            f"{narrow:.2f}%") in text
    for sentence in two_session_sentences(WIDE_SHALLOW_RUN, "wider-model", 36, moved=False):
        assert sentence in text
    # The bullet's verdict on this first seed, which the figures must bear out: at or above 86% at the end, above both
    # seeds by more than their spread, a lower training loss than theirs (they end alike, so one figure), faster epochs.
    accuracy = [100 * x for x in run["eval_accuracy"]]
    ends = [100 * m["eval_accuracy"][-1] for m in (conv, seed_43)]
    at_86 = [epoch for epoch, x in enumerate(accuracy, 1) if x >= 86]
    train = {f"{m['train_loss'][-1]:.2f}" for m in (conv, seed_43)}
    assert accuracy[-1] >= 86 and accuracy[-1] - max(ends) > abs(ends[0] - ends[1]) and len(train) == 1
    assert run["train_loss"][-1] < min(m["train_loss"][-1] for m in (conv, seed_43))
    assert statistics.median(run["epoch_seconds"]) < statistics.median(conv["epoch_seconds"])
    assert (f"It was the first run here to end at or above 86%, by {accuracy[-1] - 86:.2f} points: it ended above "
            f"both seeds by more than their {abs(ends[0] - ends[1]):.2f}-point spread, was at or above 86% at "
            f"{len(at_86)} of its last {101 - at_86[0]} epochs, and fitted its augmented images better (training loss "
            f"{run['train_loss'][-1]:.2f} against {min(train)}) with faster epochs (\"Machine and timing\").") in text
    names = sorted(path.parent.name for path in (ROOT / "results").glob("*/metrics.json"))
    ended_at_86 = [name for name, m in zip(names, metrics_of(*names)) if m["eval_accuracy"][-1] >= 0.86]
    # The first: the only other one is its own seed-43 run, made after it.
    assert WIDE_SHALLOW_RUN in ended_at_86 and set(ended_at_86) <= {WIDE_SHALLOW_RUN, WIDE_SHALLOW_SEED_43_RUN}


def wide_shallow_verdict():
    """The wider-model bullet's verdict on its two seeds: their mean against the conv-tokenizer-100 preset's two, the
    worse of them against that preset's better seed, and the preset made of it, with the seeds that meet 86%."""
    wide, conv = seed_ends()
    assert min(wide) > max(conv)  # what made it a preset: better than conv-tokenizer-100 with either seed
    mean, conv_mean = statistics.mean(wide), statistics.mean(conv)
    # Seed 42's end is asserted at or above 86% (test_wide_shallow_figures_...); seed 43's decides.
    goal = (f"meets the goal of 86% with both seeds, by {wide[0] - 86:.2f} and {wide[1] - 86:.2f} points"
            if wide[1] >= 86 else
            f"meets the goal of 86% with seed 42 only (seed 43: {wide[1]:.2f}%, {86 - wide[1]:.2f} points short)")
    return (f"The two seeds average {mean:.2f}%, {mean - conv_mean:.2f} points above the conv-tokenizer-100 preset's "
            f"two ({conv_mean:.2f}%), and the worse of them ({min(wide):.2f}%) is above that preset's better seed "
            f"({max(conv):.2f}%): spent on width rather than on depth and a 4-times MLP, the same budget served this "
            f"model better at 100 epochs, unlike the same kind of change on patch embeddings at 40. It is now the "
            f"`conv-tokenizer-wide-100` preset (`--recipe conv-tokenizer-wide-100`, the same settings), which {goal}; "
            f"its seed-42 model is the README's headline model (`results/{WIDE_SHALLOW_RUN}/`).")


def test_wide_shallow_second_seed_figures_match_both_runs():
    # Findings: the wider-model run's command with seed 43 (to tell its gain from seed noise) against its seed-42 run,
    # the two seeds against the conv-tokenizer-100 preset's two, and the preset made of it; "Machine and timing", its
    # Runs row and Commands: the two sessions it ran in (stopped by the first's time limit, resumed in the next).
    run, first = metrics_of(WIDE_SHALLOW_SEED_43_RUN, WIDE_SHALLOW_RUN)
    assert (first["args"]["seed"], run["args"]["seed"]) == (42, 43)
    where = {"seed", "output_dir", "resume_from_checkpoint"}  # the rest: the seed-42 run's
    assert {k: v for k, v in run["args"].items() if k not in where} == {
        k: v for k, v in first["args"].items() if k not in where}
    assert run["num_parameters"] == first["num_parameters"]
    text = " ".join(LOG.split())
    assert second_seed_sentence(WIDE_SHALLOW_RUN, WIDE_SHALLOW_SEED_43_RUN, "the same command", goal=86) in text
    assert (f"Its training loss on augmented images ended at {run['train_loss'][-1]:.2f} (seed 42: "
            f"{first['train_loss'][-1]:.2f}) against a test loss of {run['eval_loss'][-1]:.2f} "
            f"({first['eval_loss'][-1]:.2f}). {wide_shallow_verdict()}") in text
    timing, row, moved = two_session_sentences(WIDE_SHALLOW_SEED_43_RUN, "wider-model seed-43", 32, moved=False)
    assert timing in text and row in text and f"So was its seed-43 run (`--seed 43`): {moved}." in text


TRIVIALAUGMENT_SEED_43_RUN = "improved-trivialaugment-seed-43"


def trivialaugment_seed_43_timing():
    """"Machine and timing" on that run: its epoch times."""
    seconds = metrics_of(TRIVIALAUGMENT_SEED_43_RUN)[0]["epoch_seconds"]
    return (f"The improved + TrivialAugment seed-43 run ran on such a box with 2 threads, alone but for test runs "
            f"(median {statistics.median(seconds):.0f} s, up to {max(seconds):.0f} s).")


def test_trivialaugment_second_seed_figures_match_both_runs():
    # Findings: the README's improved + TrivialAugment row again with seed 43, against seed 42; "Machine and timing".
    first, second = metrics_of("improved-trivialaugment", TRIVIALAUGMENT_SEED_43_RUN)
    assert (first["args"]["seed"], second["args"]["seed"]) == (42, 43) and second["epoch"] == list(range(1, 101))
    # The rest of its settings are seed 42's: tests/test_readme.py checks each headline row's second seed.
    assert (second["args"]["recipe"], second["args"]["augmentation"]) == ("improved", "trivialaugment")
    assert second["num_parameters"] == first["num_parameters"]
    text = " ".join(LOG.split())
    assert second_seed_sentence("improved-trivialaugment", TRIVIALAUGMENT_SEED_43_RUN, "the same settings",
                                goal=75.5) in text
    assert trivialaugment_seed_43_timing() in text


def test_spt_lsa_figures_match_the_run_and_the_78_09_run():
    # Findings: the 100-epoch run with Shifted Patch Tokenization and Locality Self-Attention against the same
    # settings without them.
    run, old = (json.loads((ROOT / "results" / name / "metrics.json").read_text())
                for name in ("improved-40-spt-lsa-100-epochs-trivialaugment", "improved-40-100-epochs-trivialaugment"))
    new, base = run["eval_accuracy"], old["eval_accuracy"]
    assert f"{100 * base[-1]:.2f}" == "78.09"
    gaps = [100 * (a - b) for a, b in zip(new, base)]
    lead_from = max([epoch for epoch, gap in enumerate(gaps, 1) if gap <= 0], default=0) + 1
    best_epoch = new.index(max(new)) + 1
    text = " ".join(LOG.split())
    assert f"; {run['num_parameters']:,} parameters, {run['num_parameters'] - old['num_parameters']:,} more:" in text
    assert (f"ended at **{100 * new[-1]:.2f}%** (best {100 * max(new):.2f}% at epoch {best_epoch}), {gaps[-1]:.2f} "
            f"points above the 78.09% run, which it led at every epoch from {lead_from} on.") in text
    assert f"ended at {run['train_loss'][-1]:.2f} against a test loss of {run['eval_loss'][-1]:.2f}." in text
    first = next(epoch for epoch, accuracy in enumerate(new, 1) if accuracy >= 0.80)
    above_from = max(epoch for epoch, accuracy in enumerate(new, 1) if accuracy < 0.80) + 1
    assert (f"It is the first run here to reach 80% (first at epoch {first}, and at or above it at every epoch from "
            f"{above_from} on)") in text


def test_first_tutorial_run_figures_match_its_kept_metrics():
    # Findings: the tutorial recipe's first run (SimpleViT with its final LayerNorm), kept after results/tutorial-recipe
    # was re-run without it.
    run, improved = (json.loads((ROOT / "results" / name / "metrics.json").read_text())
                     for name in ("tutorial-recipe-final-layernorm", "improved-recipe"))
    accuracy = run["eval_accuracy"]
    text = " ".join(LOG.split())
    assert (f"The first run of the tutorial recipe ended at **{100 * accuracy[-1]:.2f}%** (best "
            f"{100 * max(accuracy):.2f}% at epoch {accuracy.index(max(accuracy)) + 1}) after {run['args']['epochs']} "
            f"epochs and {run['wall_time_seconds'] / 3600:.2f} h") in text
    gain = 100 * (improved["eval_accuracy"][-1] - accuracy[-1])
    assert f"The improved recipe gains {gain:.1f} points over that first tutorial run" in text
    # configs/tutorial.json (final_layernorm=False) drops the final LayerNorm and nothing else.
    sys.path.insert(0, str(ROOT))
    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification

    with_norm = SimpleViTForImageClassification(SimpleViTConfig()).num_parameters()
    overrides = json.loads((ROOT / "configs" / "tutorial.json").read_text())
    without = SimpleViTForImageClassification(SimpleViTConfig(**overrides)).num_parameters()
    assert run["num_parameters"] == with_norm and with_norm - without == 2 * SimpleViTConfig().hidden_size
    assert f"{without:,} parameters, {with_norm - without} fewer" in text


def test_tutorial_code_figures_match_the_tutorial_recipe_runs():
    # "The tutorial's own code over 100 epochs" (benchmarks/tutorial_reference.py, seed 0): its curve against the two
    # 100-epoch runs of --recipe tutorial, in a table the log quotes cell by cell, and the goals read off it.
    code, seed_42, seed_43 = metrics_of("tutorial-code-seed-0", "tutorial-recipe", "tutorial-recipe-seed-43")
    n = 100
    assert code["epoch"] == list(range(1, n + 1)) and code["args"]["epochs"] == n
    assert code["args"]["seed"] == 0 and code["num_parameters"] == seed_42["num_parameters"]  # the same architecture
    assert (code["args"]["max_train_samples"], code["args"]["max_eval_samples"]) == (None, None)
    assert (code["train_samples"], code["eval_samples"]) == (50_000, 10_000)
    curves = [[100 * x for x in run["eval_accuracy"]] for run in (code, seed_42, seed_43)]
    band = slice(n - 20, n)  # the last 20 epochs: the band a constant learning rate leaves

    def row(label, cell):
        return f"| {label} | " + " | ".join(cell(curve) for curve in curves) + " |"

    rows = [row("epoch 3", lambda c: f"{c[2]:.2f}%"),
            row(f"epoch {n}", lambda c: f"**{c[-1]:.2f}%**"),
            row(f"best of epochs 1-{n} (epoch)", lambda c: f"{max(c):.2f}% ({c.index(max(c)) + 1})"),
            row(f"epochs {n - 19}-{n}: range", lambda c: f"{min(c[band]):.2f}-{max(c[band]):.2f}%"),
            row(f"epochs {n - 19}-{n}: mean", lambda c: f"{statistics.mean(c[band]):.2f}%"),
            row(f"epochs 21-{n}: mean", lambda c: f"{statistics.mean(c[20:]):.2f}%"),
            row(f"epochs at or above 74.5%, of {n}", lambda c: str(sum(x >= 74.5 for x in c)))]
    lines = LOG.splitlines()
    assert all(line in lines for line in rows), [line for line in rows if line not in lines]
    text = " ".join(LOG.split())
    # The first epoch is the shared harness's (../shared/tools/tutorial_on_local_copy.py 100 0) on the box of the
    # run's first session.
    assert (f"Its first epoch equals that harness's on the box of its first session to the last digit: test accuracy "
            f"{100 * code['eval_accuracy'][0]:.2f}%, train loss {code['train_loss'][0]!r}") in text
    assert " / ".join(f"{x:.1f}" for x in curves[0][:3]) + "% there: another CPU" in text  # epochs 1-3
    assert f"within 2.5 points of the tutorial's own code at epoch 3 ({curves[0][2]:.2f}% there" in text
    assert f"its epoch 3 on that run's box: {curves[0][2]:.2f}%)" in text  # the goal-3 bullet of Findings
    assert all(abs(curve[2] - curves[0][2]) <= 2.5 for curve in curves[1:])
    means = [statistics.mean(curve[20:]) for curve in curves]
    low, high = min(means[1:]), max(means[1:])
    where = ("inside the range of" if low <= means[0] <= high else f"{low - means[0]:.2f} points below the lower of"
             if means[0] < low else f"{means[0] - high:.2f} points above the higher of")
    assert (f"over epochs 21-{n} the tutorial's code averages {means[0]:.2f}%, {where} the two `run_train.py` seeds "
            f"({means[1]:.2f}% and {means[2]:.2f}%)") in text
    # Two sessions: stopped at epoch 80 by a time limit, finished from its epoch-80 checkpoint in the next.
    seconds = code["epoch_seconds"]
    assert (f"stopped it at epoch 80 (median epoch {statistics.median(seconds[:80]):.0f} s there), and the next "
            f"finished it from the epoch-80 checkpoint on a box of the same kind (epochs 81-100, median "
            f"{statistics.median(seconds[80:]):.0f} s); in all median epoch {statistics.median(seconds):.0f} s, up to "
            f"{max(seconds):.0f} s; {sum(seconds) / 3600:.2f} h for {n} epochs") in text
    # The goal of 74.5% at epoch 100, read off the original's own last epoch.
    final, reached = curves[0][-1], [epoch for epoch, x in enumerate(curves[0], 1) if x >= 74.5]
    listed = ", ".join(map(str, reached[:-1])) + f" and {reached[-1]}" if len(reached) > 1 else str(reached[0])
    assert (f"At epoch 100 the tutorial's own code ended at **{final:.2f}%**, {75.5 - final:.2f} points below the "
            f"tutorial's 75.5% (on PNGs) and {74.5 - final:.2f} points below the issue's 74.5%, which it reached "
            f"at {len(reached)} of its 100 epochs ({listed}) but not at the last.") in text
    spread = max(curves[0][band]) - min(curves[0][band])
    gaps = [final - curve[-1] for curve in curves[1:]]
    assert all(0 < gap < spread for gap in gaps) and final < 74.5 <= max(curves[0])  # what the verdict rests on
    assert (f"The two `run_train.py` seeds ended {gaps[0]:.2f} and {gaps[1]:.2f} points below it, less than the "
            f"{spread:.2f} points ({min(curves[0][band]):.2f}-{max(curves[0][band]):.2f}%) the tutorial's own code "
            f"swings over in its last 20 epochs at its constant learning rate.") in text
    assert (f"ended at {final:.2f}%, also short of 74.5% at epoch 100 (reached at {len(reached)} of its epochs, not "
            f"the last), with a mean over epochs 21-100 {where} the two seeds'") in text  # Findings
