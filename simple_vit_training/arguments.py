"""run_train.py's command line. A recipe (configs/recipes/) supplies the defaults; explicit flags win."""

import argparse
import os

from cli import CLIError, OneLineArgumentParser

from .augmentation import AUGMENTATIONS
from .checkpoints import add_checkpoint_arguments
from .recipes import DEFAULT_RECIPE, describe_recipes, recipe_defaults

DESCRIPTION = "Train SimpleViT on CIFAR-10 (or any image-classification dataset) with accelerate."


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


def build_parser() -> argparse.ArgumentParser:
    """The parser with its built-in defaults (the tutorial's settings); `parse_args` lays a recipe over them."""
    parser = OneLineArgumentParser(prog="run_train.py", description=DESCRIPTION,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--recipe", default=DEFAULT_RECIPE,
        help=f"training settings from configs/recipes/NAME.json, or a .json file of them: {describe_recipes()}")
    # Data
    add("--dataset-name", default="uoft-cs/cifar10", help="Hub dataset id, a local copy in Hub layout, or an image folder")
    add("--image-column", default=None, help="image column (default: detect 'img' or 'image')")
    add("--label-column", default=None, help="label column (default: detect 'label' or 'labels')")
    add("--train-split", default="train")
    add("--eval-split", default="test")
    add("--validation-split-percentage", type=float, default=10.0,
        help="percentage of train held out for evaluation when the dataset has no eval split")
    add("--max-train-samples", type=_positive_int, default=None, help="use only the first N training rows")
    add("--max-eval-samples", type=_positive_int, default=None, help="use only the first N evaluation rows")
    add("--augmentation", choices=AUGMENTATIONS, default="tutorial")
    add("--num-workers", type=_non_negative_int, default=0,
        help="processes for the one-time image decoding, and DataLoader workers that apply "
             "--augmentation trivialaugment/randaugment (default 0: both in the main process)")
    # Run
    add("--exp-name", default="simple-vit")
    add("--output-dir", default=None, help="default: experiments/<exp-name>")
    add("--seed", type=int, default=42)
    add("--epochs", type=_positive_int, default=100)
    add("--batch-size", type=_positive_int, default=256, help="per process")
    add("--lr", type=float, default=1e-2)
    add("--weight-decay", type=float, default=1e-2)
    add("--weight-decay-scope", choices=("all", "weights"), default="all",
        help="all: every parameter (the tutorial); weights: weight matrices only")
    add("--lr-scheduler", choices=("constant", "cosine"), default="constant")
    add("--warmup-epochs", type=float, default=0.0)
    add("--label-smoothing", type=float, default=0.0)
    add("--gradient-accumulation-steps", type=_positive_int, default=1)
    add("--max-grad-norm", type=float, default=None,
        help="clip the gradients' total norm to this before each optimizer step (default: no clipping, the tutorial)")
    add("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
        help="default: accelerate's config, else bf16 on a GPU that supports it, else no")
    add("--compile", action="store_true", help="torch.compile the model (through accelerate's dynamo plugin)")
    add("--model-config", default=None, help="JSON file overriding SimpleViTConfig fields")
    add("--model_name_or_path", "--model-name-or-path", default=None,
        help="start from this checkpoint (folder or Hub id): SimpleViT, or transformers ViTForImageClassification / "
             "ViTModel (converted on the fly); its config sets the architecture, its preprocessor the normalisation")
    add("--ignore_mismatched_sizes", "--ignore-mismatched-sizes", action="store_true",
        help="with --model_name_or_path: re-initialise a classification head whose label count differs from the "
             "dataset's")
    add_checkpoint_arguments(parser)  # --checkpointing-steps, --save-total-limit, --resume-from-checkpoint, ...
    add("--report-to", default="none", help="accelerate trackers (e.g. tensorboard, wandb, all), or none")
    add("--eval-batch-size", type=_positive_int, default=None, help="default: 2 x batch size")
    add("--push_to_hub", "--push-to-hub", action="store_true",
        help="after training, publish the output folder to the Hub as push_to_hub.py does (token: HF_TOKEN or "
             "`hf auth login`)")
    add("--hub_model_id", "--hub-model-id", default=None, help="with --push_to_hub: the repository, USER/NAME")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """Parse `argv` (default: sys.argv) over the chosen recipe's settings; a wrong value raises CLIError."""
    parser = build_parser()
    # The recipe is read first so that its values become defaults (in --help too) and explicit flags still win.
    recipe_only = argparse.ArgumentParser(add_help=False)
    recipe_only.add_argument("--recipe", default=DEFAULT_RECIPE)
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
    if not 0 <= args.label_smoothing < 1:
        raise CLIError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.max_grad_norm is not None and not args.max_grad_norm > 0:
        raise CLIError(f"--max-grad-norm must be greater than 0, got {args.max_grad_norm}")
    if not 0 < args.validation_split_percentage < 100:
        raise CLIError(f"--validation-split-percentage must be in (0, 100), got {args.validation_split_percentage}")
    return args
