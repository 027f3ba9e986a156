"""--push_to_hub / --hub_model_id: publish the output folder once training is done, with push_to_hub.py's functions
(the same staging, model card and single commit as `python push_to_hub.py --checkpoint OUTPUT --repo-id ID`)."""

import tempfile
from pathlib import Path

from huggingface_hub import constants

import push_to_hub
from cli import CLIError, first_line


def check_hub_args(args):
    """The token for --push_to_hub (None without it). Everything that can be wrong with the publishing settings is
    checked here, before training: a malformed repo id or a missing token must not surface after hours."""
    if not args.push_to_hub:
        if args.hub_model_id is not None:
            raise CLIError("--hub_model_id has no effect without --push_to_hub")
        return None
    if args.hub_model_id is None:
        raise CLIError("--push_to_hub needs --hub_model_id USER/NAME (the Hub repository to publish to)")
    try:
        push_to_hub.check_repo_id(args.hub_model_id)
        if constants.HF_HUB_OFFLINE:
            raise push_to_hub.PushError("HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it")
        return push_to_hub.resolve_token(None)  # HF_TOKEN or a saved `hf auth login`; never printed
    except push_to_hub.PushError as err:
        raise CLIError(f"--push_to_hub: {err}") from None


def publish_output(output_dir: Path, args, token):
    """Stage the finished output folder (model, processor, metrics, card; not checkpoints/) and upload it as one
    commit; returns the CommitInfo. The output folder itself is only read: a failed upload loses nothing."""
    repo_id = args.hub_model_id
    with tempfile.TemporaryDirectory(prefix="simple-vit-hub-") as tmp:
        try:
            staged = push_to_hub.stage_repo(output_dir, Path(tmp) / "repo", repo_id,
                                            dataset_id=push_to_hub.hub_dataset_id(args.dataset_name))
            return push_to_hub.push(staged, repo_id, token)
        except Exception as err:  # refused, unreachable, or a staging problem: one line, and how to retry
            raise CLIError(f"the trained model is complete in {output_dir}, but publishing it to {repo_id} failed "
                           f"({type(err).__name__}: {first_line(err)}); retry with: python push_to_hub.py "
                           f"--checkpoint {output_dir} --repo-id {repo_id}") from None
