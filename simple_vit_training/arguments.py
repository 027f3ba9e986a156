"""run_train.py's command line. A recipe (configs/recipes/) supplies the defaults; explicit flags win.

Every option is accepted in both spellings (`--batch-size` and `--batch_size`), and under the name that
transformers' `run_image_classification*.py` examples give it (`--per_device_train_batch_size`, `--learning_rate`,
...), so that a command written for those scripts runs here unchanged.
"""

import argparse
import os
import sys

from accelerate.tracking import get_available_trackers
from accelerate.utils import LoggerType

from cli import CLIError, OneLineArgumentParser

from .augmentation import AUGMENTATIONS
from .checkpoints import add_checkpoint_arguments
from .graphed_step import CUDA_GRAPH_CHOICES
from .recipes import DEFAULT_RECIPE, describe_recipes, recipe_defaults

DESCRIPTION = "Train SimpleViT on CIFAR-10 (or any image-classification dataset) with accelerate."
# transformers' SchedulerType names that need nothing but warmup and total steps (the others need extra arguments,
# or a metric to step on).
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial",
                 "inverse_sqrt")
TRACKERS = tuple(tracker.value for tracker in LoggerType if tracker.value != "all")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


class _PercentToFraction(argparse.Action):
    """The deprecated --validation-split-percentage: a percentage, stored as the --train_val_split fraction."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated, use --train_val_split {values / 100:g}",
              file=sys.stderr)
        setattr(namespace, self.dest, values / 100)


def _spellings(*names):
    """Each long option in its dash and its underscore spelling (ours first, then the example scripts' names)."""
    spelled = []
    for name in names:
        for variant in (name, "--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")):
            if variant not in spelled:
                spelled.append(variant)
    return spelled


def build_parser() -> argparse.ArgumentParser:
    """The parser with its built-in defaults (the tutorial's settings); `parse_args` lays a recipe over them."""
    parser = OneLineArgumentParser(prog="run_train.py", description=DESCRIPTION,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)

    def add(*names, **kwargs):
        parser.add_argument(*_spellings(*names), **kwargs)

    add("--recipe", default=DEFAULT_RECIPE, metavar="NAME_OR_FILE",
        help=f"training settings from configs/recipes/NAME.json, or a .json file of them: {describe_recipes()}")
    add("--print-config", action="store_true",
        help="print the resolved settings (arguments and model config) as JSON and exit")
    # Data
    add("--dataset-name", default="uoft-cs/cifar10", metavar="NAME",
        help="Hub dataset id, a local copy in Hub layout, or an image folder")
    add("--dataset-config-name", default=None, metavar="NAME",
        help="the dataset's configuration (load_dataset's second argument); None: its default")
    add("--train-dir", default=None, metavar="DIR",
        help="an image folder (DIR/<class>/<image>) to train on, instead of --dataset-name")
    add("--validation-dir", default=None, metavar="DIR",
        help="an image folder to evaluate on, with --train-dir (None: carve --train_val_split from it)")
    add("--image-column", "--image_column_name", default=None, metavar="COLUMN",
        help="the image column (None: 'img' or 'image', whichever the dataset has)")
    add("--label-column", "--label_column_name", default=None, metavar="COLUMN",
        help="the label column (None: 'label' or 'labels', whichever the dataset has)")
    add("--train-split", default="train", metavar="SPLIT", help="the split to train on")
    add("--eval-split", default=None, metavar="SPLIT",
        help="the split to evaluate on (None: 'validation' if the dataset has one, else 'test', "
             "else --train_val_split carved from the training split)")
    add("--train-val-split", type=float, default=0.15, metavar="FRACTION",
        help="fraction of the training split held out for evaluation when the dataset has no evaluation split")
    parser.add_argument("--validation-split-percentage", "--validation_split_percentage", dest="train_val_split",
                        type=float, action=_PercentToFraction, default=argparse.SUPPRESS, metavar="PERCENT",
                        help="deprecated: --train_val_split given as a percentage (10 means 0.1)")
    add("--max-train-samples", type=_positive_int, default=None, metavar="N",
        help="use only the first N training rows (None: all)")
    add("--max-eval-samples", type=_positive_int, default=None, metavar="N",
        help="use only the first N evaluation rows (None: all)")
    add("--augmentation", choices=AUGMENTATIONS, default="tutorial",
        help="training augmentation: tutorial (RandomResizedCrop 0.8-1 + flip), pad-crop (4-pixel shifts + flip), "
             "none, or a per-image policy (trivialaugment, randaugment) followed by the tutorial's crop + flip")
    add("--num-workers", type=_non_negative_int, default=0, metavar="N",
        help="processes for the one-time image decoding (0: in the main process); the augmentations, "
             "policies included, run batched on the training device")
    # Run
    add("--exp-name", default="simple-vit", metavar="NAME", help="the run's name (trackers; the default output dir)")
    add("--output-dir", default=None, metavar="DIR", help="where the model, metrics and checkpoints go "
                                                          "(None: experiments/<exp-name>)")
    add("--seed", type=int, default=42, help="seed of the initial weights, the data order and the augmentation")
    add("--epochs", "--num_train_epochs", type=_positive_int, default=100, metavar="N", help="training epochs")
    add("--batch-size", "--per_device_train_batch_size", type=_positive_int, default=256, metavar="N",
        help="training batch size per process")
    add("--eval-batch-size", "--per_device_eval_batch_size", type=_positive_int, default=None, metavar="N",
        help="evaluation batch size per process (None: 2 x --batch-size)")
    add("--lr", "--learning_rate", type=float, default=1e-2, help="peak learning rate of AdamW")
    add("--weight-decay", type=float, default=1e-2, help="AdamW's decoupled weight decay")
    add("--weight-decay-scope", choices=("all", "weights"), default="all",
        help="all: every parameter (the tutorial); weights: weight matrices only")
    add("--lr-scheduler", "--lr_scheduler_type", choices=LR_SCHEDULERS, default="constant",
        help="transformers' schedule after the warmup (constant with a warmup becomes constant_with_warmup)")
    add("--warmup-epochs", type=float, default=0.0, metavar="EPOCHS",
        help="linear warmup, in epochs (fractions allowed)")
    add("--num-warmup-steps", type=_non_negative_int, default=None, metavar="STEPS",
        help="linear warmup in optimizer steps; replaces --warmup-epochs (None: use --warmup-epochs)")
    add("--label-smoothing", type=float, default=0.0, help="label smoothing of the training loss, in [0, 1)")
    add("--gradient-accumulation-steps", type=_positive_int, default=1, metavar="N",
        help="batches whose gradients are summed into one optimizer step")
    add("--max-grad-norm", type=float, default=None, metavar="NORM",
        help="clip the gradients' total norm to this before each optimizer step (None: no clipping, the tutorial)")
    add("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
        help="None: accelerate's config, else bf16 on a GPU that supports it, else no")
    add("--compile", action="store_true", help="torch.compile the model (through accelerate's dynamo plugin)")
    add("--cuda-graph", choices=CUDA_GRAPH_CHOICES, default="auto",
        help="auto: on a GPU, run each full training batch as one captured CUDA graph (forward, backward, AdamW, "
             "schedule) where that is possible, else say why and take the ordinary step; off: always the ordinary "
             "step")
    add("--model-config", default=None, metavar="FILE",
        help="JSON file of SimpleViTConfig fields (None: the default model)")
    add("--model_name_or_path", "--model-name-or-path", default=None, metavar="PATH_OR_ID",
        help="start from this checkpoint (folder or Hub id): SimpleViT, or transformers ViTForImageClassification / "
             "ViTModel (converted on the fly); its config sets the architecture, its preprocessor the normalisation")
    add("--ignore_mismatched_sizes", "--ignore-mismatched-sizes", action="store_true",
        help="with --model_name_or_path: re-initialise a classification head whose label count differs from the "
             "dataset's")
    add_checkpoint_arguments(parser)  # --checkpointing-steps, --save-total-limit, --resume-from-checkpoint, ...
    add("--report-to", default="none", metavar="TRACKERS",
        help=f"accelerate trackers, comma-separated ({', '.join(TRACKERS)}), all (every installed one), or none")
    add("--with-tracking", action="store_true",
        help="track the run, as the example scripts do: --report_to all unless --report_to names trackers")
    add("--push_to_hub", "--push-to-hub", action="store_true",
        help="after training, publish the output folder to the Hub as push_to_hub.py does (token: HF_TOKEN or "
             "`hf auth login`)")
    add("--hub_model_id", "--hub-model-id", default=None, metavar="USER/NAME",
        help="with --push_to_hub: the repository")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """Parse `argv` (default: sys.argv) over the chosen recipe's settings; a wrong value raises CLIError."""
    parser = build_parser()
    # The recipe is read first so that its values become defaults (in --help too) and explicit flags still win.
    recipe_only = OneLineArgumentParser(prog=parser.prog, add_help=False)
    recipe_only.add_argument(*_spellings("--recipe"), default=DEFAULT_RECIPE)
    recipe = recipe_only.parse_known_args(argv)[0].recipe
    parser.set_defaults(**recipe_defaults(recipe, parser))
    args = parser.parse_args(argv)
    if args.model_name_or_path is not None:
        # The checkpoint fixes the architecture: a recipe's --model-config gives way; an explicit one is a conflict.
        if args.model_config not in (None, parser.get_default("model_config")):
            raise CLIError("--model-config and --model_name_or_path exclude each other: the checkpoint's config "
                           "sets the model")
        args.model_config = None
    if args.output_dir is None:
        args.output_dir = os.path.join("experiments", args.exp_name)
    # --with_tracking only says "track": which trackers is --report_to's to say (it is recorded; this is not).
    if vars(args).pop("with_tracking") and args.report_to == "none":
        args.report_to = "all"
    args.report_to = _check_trackers(args.report_to)
    if not 0 <= args.label_smoothing < 1:
        raise CLIError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.max_grad_norm is not None and not args.max_grad_norm > 0:
        raise CLIError(f"--max-grad-norm must be greater than 0, got {args.max_grad_norm}")
    if not 0 < args.train_val_split < 1:
        raise CLIError(f"--train_val_split must be in (0, 1), got {args.train_val_split}")
    if args.validation_dir is not None and args.train_dir is None:
        raise CLIError("--validation_dir needs --train_dir (the classes come from the training folder)")
    return args


def _check_trackers(report_to: str) -> str:
    """--report_to as accelerate will read it: none, all, or installed trackers (comma-separated)."""
    names = [name.strip() for name in report_to.split(",") if name.strip()]
    if names in (["none"], ["all"]):
        return names[0]
    unknown = [name for name in names if name not in TRACKERS]
    if unknown or not names:
        raise CLIError(f"--report_to {report_to!r}: unknown tracker(s) {', '.join(unknown) or '(none given)'}; "
                       f"choose from {', '.join(TRACKERS)}, all or none")
    # accelerate silently drops a tracker whose package is missing: say so instead of training untracked.
    installed = {str(getattr(tracker, "value", tracker)) for tracker in get_available_trackers()}
    missing = [name for name in names if name not in installed]
    if missing:
        raise CLIError(f"--report_to {','.join(missing)}: not installed (pip install {' '.join(missing)}; "
                       f"for tensorboard also `pip install .[tensorboard]`)")
    return ",".join(names)
