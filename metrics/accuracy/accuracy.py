"""Accuracy as an `evaluate` metric module that loads without the Hub.

`evaluate.load("accuracy")` downloads its script from the Hugging Face Hub, which fails offline;
`evaluate.load("metrics/accuracy")` loads this file instead and behaves the same way:
`compute(predictions=..., references=...) -> {"accuracy": float}`.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy: the fraction of predictions equal to their references, (TP + TN) / (all)."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    normalize (`bool`, defaults to True): return the fraction (True) or the count (False) of correct predictions.
    sample_weight (`list` of `float`, optional): a weight for each sample.
Returns:
    accuracy (`float`): in [0, 1] when normalize is True, else the (weighted) count of correct predictions.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.shape != references.shape:
            raise ValueError(f"predictions and references differ in shape: {predictions.shape} vs {references.shape}")
        weights = np.ones(len(predictions)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        correct = float(np.sum(weights * (predictions == references)))
        return {"accuracy": correct / float(np.sum(weights)) if normalize else correct}
