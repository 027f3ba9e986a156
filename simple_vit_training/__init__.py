"""The parts of `run_train.py`, one module per job, so that the script itself reads as the steps of training.

    arguments       the command line: build_parser(), parse_args(); recipes become the parser's defaults
    recipes         configs/recipes/NAME.json (or any JSON file): named sets of training settings
    model_config    --model-config files: SimpleViTConfig fields, checked before any work starts
    pretrained      --model_name_or_path: a SimpleViT or transformers ViT checkpoint to start from (converted)
    accelerator     the Accelerator for this machine (device, precision, CPU threads)
    data            load the splits, decode the images once onto the device, the training batches (DeviceBatches:
                    index slices of a permutation drawn on the device, sharded per process), the image processor
                    and the matching normaliser
    augmentation    training augmentation on whole uint8 batches on the device (BatchAugment)
    policies        TrivialAugmentWide / RandAugment batched, with a draw per image (used by BatchAugment)
    optim           AdamW with its weight-decay groups, and the learning-rate schedule
    loop            one training epoch (no host sync per step), and one evaluation over the whole eval set
    metrics         the per-epoch history (saved with checkpoints), metrics.json and metrics.png
    checkpoints     resumable checkpoints and the final model, each written whole or not at all
    atomic_files    the durable-write primitives those use
    hub             --push_to_hub: publish the output folder with push_to_hub.py's functions after training
"""

from pathlib import Path

# The project folder: configs/ and metrics/ are looked up here, wherever the script is run from.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
