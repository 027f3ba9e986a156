"""Configuration of SimpleViT.

The field names and meanings are exactly those of `transformers.ViTConfig`, so a user who knows ViT knows
this config, and a checkpoint converts between the two field for field. The defaults are the tutorial's
small CIFAR-10 model (patch 4, hidden 48, 4 layers, 4 heads, MLP 192: about 0.12M parameters).
"""

from transformers import PretrainedConfig
from transformers.activations import ACT2FN

CLASSIFIER_POOLINGS = ("cls", "mean", "sequence")
POSITION_EMBEDDING_TYPES = ("learned", "sincos")


class SimpleViTConfig(PretrainedConfig):
    r"""
    Args:
        image_size (`int`, defaults to 32): height and width of the (square) input images.
        patch_size (`int`, defaults to 4): height and width of each patch; must divide `image_size`.
        num_channels (`int`, defaults to 3): channels of the input images.
        hidden_size (`int`, defaults to 48): width of the transformer (the embedding of each token).
        num_hidden_layers (`int`, defaults to 4): number of transformer layers.
        num_attention_heads (`int`, defaults to 4): attention heads per layer; must divide `hidden_size`.
        intermediate_size (`int`, defaults to 192): width of the hidden layer of each MLP.
        hidden_act (`str`, defaults to `"gelu_new"`): MLP activation, any key of `transformers`' `ACT2FN`
            (the tutorial used the tanh approximation of GELU, which is `"gelu_new"`).
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after embeddings, attention output and MLP.
        attention_probs_dropout_prob (`float`, defaults to 0.0): dropout on the attention probabilities.
        initializer_range (`float`, defaults to 0.02): std of the truncated normal used to initialise weights.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm (PyTorch's default, as in the
            tutorial; `transformers`' ViT uses 1e-12).
        qkv_bias (`bool`, defaults to `True`): whether the query/key/value projections have a bias.
        classifier_pooling (`str`, defaults to `"cls"`): what `pooler_output` (and so the classifier) reads:
            `"cls"`, the final CLS token's state, as in `transformers`' ViT; `"mean"`, the average of the final
            patch tokens' states (global average pooling, as in "Better plain ViT baselines"); or `"sequence"`,
            their average weighted by the softmax of a learned score of each (sequence pooling, from Compact
            Convolutional Transformers; `pooler.attention_pool`, a Linear from `hidden_size` to 1, no bias). Not a
            `ViTConfig` field: only `"cls"` models convert to `transformers`' ViT.
        position_embedding_type (`str`, defaults to `"learned"`): `"learned"`, one trained vector per position, as
            in `transformers`' ViT; or `"sincos"`, fixed 2-D sine-cosine positions of each patch's row and column
            (the MoCo v3 / MAE table, see `sincos_2d_position_embeddings`; no parameters, the CLS position is zero;
            needs `hidden_size` divisible by 4). Not a `ViTConfig` field: only `"learned"` models convert to
            `transformers`' ViT.
        shifted_patch_tokenization (`bool`, defaults to `False`): Shifted Patch Tokenization ("Vision Transformer
            for Small-Size Datasets", Lee et al. 2021): each patch is cut from the image stacked with its four
            diagonal shifts by half a patch (zero-filled), so a patch vector also holds the pixels around the
            patch; the vector is layer-normalised (`patch_embeddings.patch_norm`) before the projection, whose
            input is 5x wider. Needs `patch_size` of at least 2. Not a `ViTConfig` field.
        convolutional_tokenization (`bool`, defaults to `False`): the tokenizer of Compact Convolutional
            Transformers ("Escaping the Big Data Paradigm with Compact Transformers", Hassani et al. 2021): the
            tokens come from log2(`patch_size`) blocks of a 3x3 convolution, ReLU and a stride-2 max-pool
            (`patch_embeddings.projection`; the blocks before the last have `tokenizer_channels` channels), which
            give the same grid as the patches, from overlapping kernels. Needs `patch_size` a power of 2 (at
            least 2) and excludes `shifted_patch_tokenization`. Not a `ViTConfig` field.
        tokenizer_channels (`int`, defaults to `None`): the channels of the convolutional tokenizer's blocks
            before the last (CCT uses 64 at every width); `None` means `max(1, hidden_size // 2)`. Only with
            `convolutional_tokenization` and a `patch_size` of at least 4 (patch 2 makes one block, with nothing
            before the last).
        locality_self_attention (`bool`, defaults to `False`): Locality Self-Attention (same paper): no token
            attends to itself (the diagonal of the attention scores is masked), and each layer learns the scale
            of its scores (`attention.scaling`, starting at 1/sqrt(head_dim)) instead of fixing it, so attention
            can sharpen. Not a `ViTConfig` field: only models with both options off convert to
            `transformers`' ViT.
        final_layernorm (`bool`, defaults to `True`): whether the encoder's output is layer-normalised before
            `pooler_output` (and so the classifier) reads it, as in `transformers`' ViT (`vit.layernorm`). `False` is
            the tutorial's architecture: its classifier reads the last layer's CLS output directly. Not a
            `ViTConfig` field: only models with the final LayerNorm convert to `transformers`' ViT.
        num_labels (`int`, defaults to 10): number of classes (or set `id2label`).
    """

    model_type = "simple_vit"

    def __init__(
        self,
        image_size=32,
        patch_size=4,
        num_channels=3,
        hidden_size=48,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=192,
        hidden_act="gelu_new",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.02,
        layer_norm_eps=1e-5,
        qkv_bias=True,
        classifier_pooling="cls",
        position_embedding_type="learned",
        shifted_patch_tokenization=False,
        convolutional_tokenization=False,
        tokenizer_channels=None,
        locality_self_attention=False,
        final_layernorm=True,
        **kwargs,
    ):
        # The base class defaults to 2 labels; CIFAR-10 has 10. An explicit id2label/num_labels still wins.
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["num_labels"] = 10

        for name, value in (
            ("image_size", image_size),
            ("patch_size", patch_size),
            ("num_channels", num_channels),
            ("hidden_size", hidden_size),
            ("num_hidden_layers", num_hidden_layers),
            ("num_attention_heads", num_attention_heads),
            ("intermediate_size", intermediate_size),
        ):
            # bool is an int subclass, but `image_size=True` is a mistake, not a size.
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by num_attention_heads ({num_attention_heads})"
            )
        if image_size % patch_size != 0:
            raise ValueError(f"patch_size ({patch_size}) must divide image_size ({image_size})")
        for name, value in (
            ("hidden_dropout_prob", hidden_dropout_prob),
            ("attention_probs_dropout_prob", attention_probs_dropout_prob),
        ):
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")
        if hidden_act not in ACT2FN:
            raise ValueError(f"hidden_act {hidden_act!r} is not a known activation; choose one of {sorted(ACT2FN)}")
        if classifier_pooling not in CLASSIFIER_POOLINGS:
            raise ValueError(f"classifier_pooling must be one of {CLASSIFIER_POOLINGS}, got {classifier_pooling!r}")
        if position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type must be one of {POSITION_EMBEDDING_TYPES}, got {position_embedding_type!r}"
            )
        if position_embedding_type == "sincos" and hidden_size % 4 != 0:
            # A sine and a cosine for each of the two axes: four equal groups of channels.
            raise ValueError(f"position_embedding_type='sincos' needs hidden_size divisible by 4, got {hidden_size}")
        for name, value in (
            ("shifted_patch_tokenization", shifted_patch_tokenization),
            ("convolutional_tokenization", convolutional_tokenization),
            ("locality_self_attention", locality_self_attention),
            ("final_layernorm", final_layernorm),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if shifted_patch_tokenization and patch_size < 2:
            # The shift is half a patch: a 1-pixel patch has no half to shift by.
            raise ValueError(f"shifted_patch_tokenization needs patch_size of at least 2, got {patch_size}")
        if convolutional_tokenization:
            # Each block halves the grid: the patch size must be a number of halvings.
            if patch_size < 2 or patch_size & (patch_size - 1):
                raise ValueError(
                    f"convolutional_tokenization needs patch_size a power of 2 (at least 2), got {patch_size}"
                )
            if shifted_patch_tokenization:
                raise ValueError(
                    "convolutional_tokenization and shifted_patch_tokenization both make the tokens; choose one"
                )
        if tokenizer_channels is not None:
            channels = tokenizer_channels
            if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:  # as for the sizes
                raise ValueError(f"tokenizer_channels must be a positive integer, got {tokenizer_channels!r}")
            if not convolutional_tokenization:
                raise ValueError("tokenizer_channels is for convolutional_tokenization=True; leave it unset without it")
            if patch_size < 4:
                raise ValueError(
                    f"tokenizer_channels needs patch_size of at least 4, got {patch_size}: patch 2 makes a one-block "
                    "tokenizer, with no channels before its last block"
                )
        if not initializer_range > 0:
            raise ValueError(f"initializer_range must be positive, got {initializer_range!r}")
        if not layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {layer_norm_eps!r}")

        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.qkv_bias = qkv_bias
        self.classifier_pooling = classifier_pooling
        self.position_embedding_type = position_embedding_type
        self.shifted_patch_tokenization = shifted_patch_tokenization
        self.convolutional_tokenization = convolutional_tokenization
        self.tokenizer_channels = tokenizer_channels
        self.locality_self_attention = locality_self_attention
        self.final_layernorm = final_layernorm
        super().__init__(**kwargs)

        if self.num_labels < 1:
            raise ValueError(f"num_labels must be at least 1, got {self.num_labels}")


__all__ = ["SimpleViTConfig"]
