"""SimpleViT: a Vision Transformer written from scratch, readable top to bottom.

A Vision Transformer classifies an image in four steps:

1. cut the image into patches, flatten each one and project it to a `hidden_size` vector (patch embeddings);
2. put a learned CLS token in front of the patch vectors and add a position embedding to every token (embeddings);
3. run `num_hidden_layers` pre-norm transformer layers, each self-attention then an MLP around a residual
   (attention, MLP, layer, encoder);
4. layer-normalise the result and classify the CLS token's final state with one Linear layer (model, head).

The file reads in that order, the order data flows through the model:

    patch embeddings -> embeddings -> attention -> MLP -> layer -> encoder
    -> pretrained base -> model -> classification head

The math is exactly that of `transformers`' ViT, so weights convert one-to-one (see convert_vit_checkpoint.py).
The options beyond it are small parts, each placed right after the part it changes and chosen once, when the model
is built; all are off by default:

- `shifted_patch_tokenization`: `SimpleViTShiftedPatchEmbeddings` (Lee et al. 2021, SPT);
- `convolutional_tokenization`: `SimpleViTConvolutionalPatchEmbeddings` (Hassani et al. 2021, CCT's tokenizer);
- `position_embedding_type="sincos"`: `SimpleViTSinCosEmbeddings` (fixed 2-D positions, MoCo v3 / MAE);
- `locality_self_attention`: `SimpleViTLocalitySelfAttention` (Lee et al. 2021, LSA);
- `classifier_pooling="mean"`: `SimpleViTMeanPooler` (the patch tokens' average instead of the CLS token);
- `classifier_pooling="sequence"`: `SimpleViTSequencePooler` (Hassani et al. 2021, CCT's sequence pooling);
- `final_layernorm=False`: no LayerNorm before the pooler (`nn.Identity`), the tutorial's architecture.

Speed tricks are kept only where each was measured to save at least 3% of a CPU training step
(`python benchmarks/throughput.py --ablate all`): the fused tanh-GELU (in SimpleViTMLP) and the classifier's
CLS-only last layer (in SimpleViTForImageClassification), each in one block headed `# --- speed: ...` with its
figure. Two earlier ones failed that test and are gone: the patch projection as a hand-made matmul instead of the
Conv2d, and the CLS token folded into the position table instead of concatenated (each within +-3%, noise).

This file is shipped to the Hub as remote code: it imports only torch, transformers and (relatively) its config.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput


try:  # as Hub remote code, the config file sits beside this one in a package
    from .configuration_simple_vit import SimpleViTConfig
except ImportError:  # imported as a top-level module from a checkout of the project
    from configuration_simple_vit import SimpleViTConfig


# ------------------------------------------------------------------------------------------------------------------
# 1. Patch embeddings: image -> one vector per patch
# ------------------------------------------------------------------------------------------------------------------


def patchify(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into patches and flatten each one: (batch, channels, height, width) -> (batch, num_patches,
    channels * patch_size * patch_size).

    Patches come in row-major order (left to right, then top to bottom) and each is flattened in (channel, row,
    column) order, like a Conv2d's output and weight; like a Conv2d, pixels past the last whole patch are ignored.
    """
    batch_size, channels, height, width = pixel_values.shape
    p = patch_size
    rows, cols = height // p, width // p
    # (batch, channels, rows * p, cols * p) -> (batch, channels, rows, p, cols, p): split each axis into patches
    patches = pixel_values[:, :, : rows * p, : cols * p].reshape(batch_size, channels, rows, p, cols, p)
    patches = patches.permute(0, 2, 4, 1, 3, 5)  # (batch, rows, cols, channels, p, p): one patch per (row, col)
    return patches.reshape(batch_size, rows * cols, channels * p * p)


class SimpleViTPatchEmbeddings(nn.Module):
    """Cut the image into non-overlapping `patch_size` x `patch_size` patches and project each one to a
    `hidden_size` vector.

    Both steps are one Conv2d whose kernel and stride equal the patch size: each of its outputs sees one patch,
    through weights shared by all patches, which is exactly "flatten each patch (`patchify`), then apply one
    Linear" (tests/test_performance_paths.py checks it). As in the tutorial and `transformers`' ViT, whose
    checkpoints it matches (`projection`, weight (hidden, channels, patch, patch)). Written out by hand (`patchify`,
    then one matmul) it is not measurably faster on CPU (benchmarks/throughput.py --ablate patch-matmul).
    """

    def __init__(self, config: SimpleViTConfig, in_channels: int | None = None):
        super().__init__()
        self.image_size = config.image_size
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        self.num_patches = (config.image_size // config.patch_size) ** 2
        # `in_channels`: the channels the patches are cut from (more than the image's when a subclass stacks copies).
        self.projection = self.build_projection(config, in_channels or config.num_channels)

    def build_projection(self, config: SimpleViTConfig, in_channels: int) -> nn.Module:
        """What turns the image into a grid of `hidden_size` vectors: here one patch-sized Conv2d (a subclass may
        build another)."""
        return nn.Conv2d(in_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size)

    def check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        if pixel_values.dim() != 4:
            raise ValueError(
                "pixel_values must be a 4-D tensor (batch, num_channels, height, width); "
                f"expected 4 dimensions, got {pixel_values.dim()} with shape {tuple(pixel_values.shape)}"
            )
        if pixel_values.shape[1] != self.num_channels:
            raise ValueError(
                f"pixel_values has the wrong number of channels: expected {self.num_channels}, "
                f"got {pixel_values.shape[1]} (shape {tuple(pixel_values.shape)})"
            )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # (batch, num_channels, height, width)
        self.check_pixel_values(pixel_values)
        # (batch, hidden_size, rows, cols) -> (batch, num_patches, hidden_size): one row per patch, row-major
        return self.projection(pixel_values).flatten(2).transpose(1, 2)


class SimpleViTShiftedPatchEmbeddings(SimpleViTPatchEmbeddings):
    """Shifted Patch Tokenization (SPT), `shifted_patch_tokenization=True`, from "Vision Transformer for Small-Size
    Datasets" (Lee et al., 2021).

    What it changes: the patches are cut from the image stacked with its four diagonal shifts by half a patch
    (5 x num_channels channels), so each patch vector also holds the pixels around its patch (locality a small
    dataset cannot teach attention alone), and each patch vector is layer-normalised (`patch_norm`) before the
    projection, whose input is five times wider. The LayerNorm sits between cutting and projecting, so the two steps
    run apart: `patchify`, then the Conv2d's weight as the Linear it is.
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__(config, in_channels=5 * config.num_channels)
        self.shift = config.patch_size // 2
        self.patch_norm = nn.LayerNorm(5 * config.num_channels * config.patch_size**2, eps=config.layer_norm_eps)

    def shifted_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(batch, channels, height, width) -> (batch, 5 * channels, height, width): the image followed by its copies
        shifted by `shift` pixels towards the top-left, top-right, bottom-left and bottom-right (zeros shifted in)."""
        s = self.shift
        height, width = pixel_values.shape[-2:]
        padded = F.pad(pixel_values, (s, s, s, s))  # zeros around: (batch, channels, height + 2s, width + 2s)
        # A window offset by (dy, dx) from the centre shows the image moved by (-dy, -dx).
        shifted = [padded[:, :, s + dy : s + dy + height, s + dx : s + dx + width]
                   for dy, dx in ((s, s), (s, -s), (-s, s), (-s, -s))]  # fmt: skip
        return torch.cat([pixel_values, *shifted], dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # (batch, num_channels, height, width)
        self.check_pixel_values(pixel_values)
        patches = patchify(self.shifted_images(pixel_values), self.patch_size)  # (batch, num_patches, 5 * C * p * p)
        # The Conv2d weight (hidden, 5 * C, p, p) read as a Linear weight (hidden, 5 * C * p * p).
        weight = self.projection.weight.flatten(1)
        return F.linear(self.patch_norm(patches), weight, self.projection.bias)  # (batch, num_patches, hidden_size)


class SimpleViTConvolutionalPatchEmbeddings(SimpleViTPatchEmbeddings):
    """Convolutional tokenization, `convolutional_tokenization=True`: the tokenizer of Compact Convolutional
    Transformers ("Escaping the Big Data Paradigm with Compact Transformers", Hassani et al., 2021).

    What it changes: the tokens come out of a small CNN instead of one projection per non-overlapping patch:
    log2(patch_size) blocks of a 3x3 convolution (no bias), ReLU and a 3x3 max-pool of stride 2, each halving the
    grid, so the tokens form the same (image_size / patch_size)^2 grid, in the same row-major order, as the patches
    would. Each 3x3 kernel overlaps its neighbours and is shared across the image: the locality and translation
    equivariance a small dataset cannot teach attention alone. The blocks before the last have `tokenizer_channels`
    channels, by default hidden_size // 2: our choice, which equals CCT-2's 64 at its width 128 (CCT keeps 64 at
    every width; at width 48 that would triple the tokenizer's parameters). The convolutions start from He (Kaiming)
    initialisation, as ReLU layers need (SimpleViTPreTrainedModel._init_weights).
    """

    def build_projection(self, config: SimpleViTConfig, in_channels: int) -> nn.Module:
        # In place of the parent's patch-sized Conv2d; the parent's forward runs it and flattens the grid into tokens.
        num_blocks = config.patch_size.bit_length() - 1  # log2(patch_size): the config checks it is a power of 2
        channels = config.tokenizer_channels
        if channels is None:  # the default
            channels = max(1, config.hidden_size // 2)
        widths = [in_channels] + [channels] * (num_blocks - 1) + [config.hidden_size]
        blocks = []
        for block_in, block_out in zip(widths[:-1], widths[1:]):
            conv = nn.Conv2d(block_in, block_out, kernel_size=3, padding=1, bias=False)  # same size out
            conv.feeds_relu = True  # He initialisation (SimpleViTPreTrainedModel._init_weights)
            blocks += [conv, nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)]  # then (height/2, width/2)
        return nn.Sequential(*blocks)

    def check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        super().check_pixel_values(pixel_values)
        height, width = pixel_values.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            # A patch-sized Conv2d drops the pixels past the last whole patch; the pools would round up instead,
            # and the grid would not be the one the position embeddings are for.
            raise ValueError(
                f"convolutional_tokenization needs an image size divisible by patch_size ({self.patch_size}); "
                f"got {height}x{width}"
            )


# ------------------------------------------------------------------------------------------------------------------
# 2. Embeddings: CLS token in front, positions added
# ------------------------------------------------------------------------------------------------------------------


class SimpleViTEmbeddings(nn.Module):
    """The patch vectors with a learned CLS token in front and a learned position embedding added to every token.

    The CLS token belongs to no patch: it gathers from all of them through attention, and its final state is what
    the classifier reads (with CLS pooling). Attention itself ignores order, so each position (the CLS token's and
    each patch's) gets its own learned vector, which tells the model where a patch came from.
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.image_size = config.image_size
        self.patch_size = config.patch_size
        self.hidden_size = config.hidden_size
        # Chosen once: the plain patch embeddings, SPT's or CCT's convolutional tokenizer.
        if config.shifted_patch_tokenization:
            patch_embeddings_class = SimpleViTShiftedPatchEmbeddings
        elif config.convolutional_tokenization:
            patch_embeddings_class = SimpleViTConvolutionalPatchEmbeddings
        else:
            patch_embeddings_class = SimpleViTPatchEmbeddings
        self.patch_embeddings = patch_embeddings_class(config)
        num_patches = self.patch_embeddings.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        # One position per patch plus one for the CLS token (initialised in SimpleViTPreTrainedModel._init_weights).
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_patches + 1, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Position embeddings for an image of another size: (1, new_num_patches + 1, hidden_size).

        Same semantics as `transformers`' ViT: the CLS position is kept and the square grid of patch positions is
        resized (bicubic) to (height // patch, width // patch).
        """
        num_positions = self.position_embeddings.shape[1] - 1
        new_height, new_width = height // self.patch_size, width // self.patch_size
        if new_height * new_width == num_positions and height == width:
            return self.position_embeddings

        class_pos_embed = self.position_embeddings[:, :1]
        patch_pos_embed = self.position_embeddings[:, 1:]
        dim = self.position_embeddings.shape[-1]
        side = int(math.sqrt(num_positions))
        # (1, num_positions, dim) -> (1, dim, side, side): interpolate works on channels-first images.
        patch_pos_embed = patch_pos_embed.reshape(1, side, side, dim).permute(0, 3, 1, 2)
        patch_pos_embed = F.interpolate(
            patch_pos_embed, size=(new_height, new_width), mode="bicubic", align_corners=False
        )
        # (1, dim, new_height, new_width) -> (1, new_height * new_width, dim)
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((class_pos_embed, patch_pos_embed), dim=1)

    def positions(self, height: int, width: int, interpolate_pos_encoding: bool) -> torch.Tensor:
        """The position embeddings for an image of (height, width) pixels: (1, num_patches + 1, hidden_size)."""
        if interpolate_pos_encoding:
            return self.interpolate_pos_encoding(height, width)
        if height != self.image_size or width != self.image_size:
            raise ValueError(
                f"Input image size does not match the model: expected {self.image_size}x{self.image_size}, "
                f"got {height}x{width} (pass interpolate_pos_encoding=True to run on other sizes)"
            )
        return self.position_embeddings

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        # (batch, num_channels, height, width); images usually arrive as float32: follow the weights' dtype (e.g. a
        # model loaded in bfloat16)
        pixel_values = pixel_values.to(self.cls_token.dtype)
        patches = self.patch_embeddings(pixel_values)  # (batch, num_patches, hidden_size)
        cls_tokens = self.cls_token.expand(patches.shape[0], -1, -1)  # (batch, 1, hidden_size): the same for all
        embeddings = torch.cat([cls_tokens, patches], dim=1)  # (batch, num_patches + 1, hidden_size): CLS first
        embeddings = embeddings + self.positions(*pixel_values.shape[-2:], interpolate_pos_encoding)
        return self.dropout(embeddings)  # (batch, num_patches + 1, hidden_size)


def sincos_2d_position_embeddings(rows: int, cols: int, hidden_size: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine positions for a (rows, cols) grid of patches: (1, 1 + rows * cols, hidden_size).

    Row 0 (the CLS token's position) is zeros; patch rows follow in row-major order, like the patches. The
    channels are four equal groups: sin and cos of the patch's column, then sin and cos of its row, each at
    hidden_size / 4 frequencies 1 / 10000 ** (k / (hidden_size / 4)), falling geometrically from 1 to nearly
    1/10000 (the MoCo v3 / MAE table, as in `transformers`' ViTMAE; "Better plain ViT baselines" spaces them to
    reach 1/10000 exactly), so nearby patches get similar vectors and every (row, column) a distinct one.
    """
    quarter = hidden_size // 4
    # Float64 so the table is the same whatever dtype the model later runs in.
    frequencies = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (quarter,)
    row, col = torch.meshgrid(
        torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64), indexing="ij"
    )
    col_angles = col.reshape(-1, 1) * frequencies  # (rows * cols, quarter)
    row_angles = row.reshape(-1, 1) * frequencies
    patches = torch.cat((col_angles.sin(), col_angles.cos(), row_angles.sin(), row_angles.cos()), dim=1)
    return torch.cat((patches.new_zeros(1, hidden_size), patches)).unsqueeze(0).float()


class SimpleViTSinCosEmbeddings(SimpleViTEmbeddings):
    """Fixed 2-D sine-cosine positions, `position_embedding_type="sincos"`: the table of MoCo v3 ("An Empirical Study
    of Training Self-Supervised Vision Transformers", Chen et al. 2021) and MAE (He et al. 2021), used for supervised
    training in "Better plain ViT baselines for ImageNet-1k" (Beyer et al. 2022).

    What it changes: `position_embeddings` is computed from each patch's row and column
    (`sincos_2d_position_embeddings`) instead of learned, so there is nothing to train, save or load; for another
    image size the table is computed for the new grid rather than stretched, so a larger image extends the grid
    (its patches keep the spacing seen in training).
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__(config)
        side = config.image_size // config.patch_size
        # The learned table becomes a fixed one: a buffer, which follows the model's device and dtype but is not
        # saved (persistent=False). from_pretrained builds the model on the meta device and leaves unsaved buffers
        # empty, so SimpleViTPreTrainedModel._init_weights computes it again.
        del self.position_embeddings
        self.register_buffer(
            "position_embeddings", sincos_2d_position_embeddings(side, side, config.hidden_size), persistent=False
        )

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        # (1, 1 + rows * cols, hidden_size) for the new grid, on the table's device and in its dtype
        rows, cols = height // self.patch_size, width // self.patch_size
        return sincos_2d_position_embeddings(rows, cols, self.hidden_size).to(self.position_embeddings)


# ------------------------------------------------------------------------------------------------------------------
# 3. Attention: every token gathers from every token
# ------------------------------------------------------------------------------------------------------------------


class SimpleViTAttention(nn.Module):
    """Multi-head self-attention: softmax(Q K^T / sqrt(head_dim)) V in each of `num_attention_heads` heads.

    Every token asks a question (its query), offers an answer key and a value; each query's scores against all keys,
    normalised by a softmax, say how much of each value it takes. One Linear (`qkv_proj`) produces queries, keys and
    values for all heads at once; `o_proj` mixes the heads' results.

    `attend` spells the formula out. When neither the probabilities (`output_attentions`) nor the explicit path
    (`attn_implementation="eager"`) is asked for, it calls PyTorch's `F.scaled_dot_product_attention` (SDPA)
    instead: the same computation fused into one kernel, faster, but it never shows the probabilities.
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.config = config  # read on every call: `set_attn_implementation` switches the path afterwards
        self.num_attention_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5  # 1/sqrt(d): keeps the scores' spread independent of head_dim
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False  # every patch sees every other patch (what transformers' attention helpers expect)
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def split_heads(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # (batch, seq_len, 3 * hidden) -> query, key, value, each (batch, heads, seq_len, head_dim); views, no copies
        batch_size, seq_len, _ = qkv.shape
        qkv = qkv.view(batch_size, seq_len, 3, self.num_attention_heads, self.head_dim)
        # Split along the "3" axis where it is: in backward the three gradients stack straight back into qkv's layout.
        query, key, value = (t.transpose(1, 2) for t in qkv.unbind(2))
        return query, key, value

    def attention_scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        # (batch, heads, query_len, head_dim) x (batch, heads, seq_len, head_dim) -> (batch, heads, query_len, seq_len)
        return torch.matmul(query, key.transpose(-1, -2)) * self.scaling

    def fused_attention(self, query, key, value, dropout: float) -> torch.Tensor:
        # SDPA: softmax(scores) V in one kernel -> (batch, heads, query_len, head_dim)
        return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=self.scaling)

    def attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # query (batch, heads, query_len, head_dim), key and value (batch, heads, seq_len, head_dim)
        dropout = self.attention_dropout if self.training else 0.0
        if output_attentions or self.config._attn_implementation == "eager":
            scores = self.attention_scores(query, key)  # how well each query matches each key
            attention_probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)  # rows sum to 1
            attention_probs = F.dropout(attention_probs, p=dropout, training=self.training)
            # Each query's weighted mix of the values: (batch, heads, query_len, head_dim), and the probabilities.
            return torch.matmul(attention_probs, value), attention_probs
        return self.fused_attention(query, key, value, dropout), None  # the same, fused; no probabilities

    def merge_heads(self, context: torch.Tensor) -> torch.Tensor:
        # (batch, heads, query_len, head_dim) -> (batch, query_len, heads * head_dim): the heads side by side
        return context.transpose(1, 2).flatten(2)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # (batch, seq_len, hidden_size)
        query, key, value = self.split_heads(self.qkv_proj(hidden_states))  # each (batch, heads, seq_len, head_dim)
        context, attention_probs = self.attend(query, key, value, output_attentions)
        # (batch, seq_len, hidden_size), and (batch, heads, seq_len, seq_len) probabilities or None
        return self.o_proj(self.merge_heads(context)), attention_probs


class SimpleViTLocalitySelfAttention(SimpleViTAttention):
    """Locality Self-Attention (LSA), `locality_self_attention=True`, from "Vision Transformer for Small-Size
    Datasets" (Lee et al., 2021).

    What it changes, in the scores only: the diagonal is masked (query i never reads key i, so every token gathers
    from the others rather than mostly from itself), and `scaling` is a learned parameter, one per layer, starting at
    1/sqrt(head_dim) (see `_init_weights`), so each layer can sharpen its attention.
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__(config)
        self.scaling = nn.Parameter(torch.tensor(self.head_dim**-0.5))

    def own_key(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        # (query_len, seq_len), True where query i meets key i: query i is token i's (also when only the first
        # tokens ask, as in the classifier's CLS-only last layer)
        return torch.eye(query.shape[2], key.shape[2], dtype=torch.bool, device=query.device)

    def attention_scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        # (batch, heads, query_len, seq_len); -inf becomes probability 0 after the softmax
        return super().attention_scores(query, key).masked_fill(self.own_key(query, key), float("-inf"))

    def fused_attention(self, query, key, value, dropout: float) -> torch.Tensor:
        # SDPA takes its scale as a number: apply the learned one to the queries instead ((s q) k^T = s (q k^T)).
        allowed = ~self.own_key(query, key)
        return F.scaled_dot_product_attention(
            query * self.scaling, key, value, attn_mask=allowed, dropout_p=dropout, scale=1.0
        )  # (batch, heads, query_len, head_dim)


# ------------------------------------------------------------------------------------------------------------------
# 4. MLP, layer, encoder
# ------------------------------------------------------------------------------------------------------------------


class SimpleViTMLP(nn.Module):
    """Position-wise feed-forward network: expand to `intermediate_size`, activation, project back."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        # --- speed: fused tanh-GELU (measured: 23-24% of a CPU train step; benchmarks/throughput.py --ablate
        # fused-gelu). transformers' "gelu_new" (the tutorial's activation) spells the tanh approximation of GELU out
        # in five elementwise ops, each a pass over the (batch, seq_len, intermediate_size) tensor, forward and
        # backward; PyTorch's kernel computes the same function (to float rounding) in one pass.
        if config.hidden_act == "gelu_new":
            self.activation_fn = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # (batch, seq_len, hidden_size) -> (batch, seq_len, intermediate_size) -> (batch, seq_len, hidden_size)
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class SimpleViTLayer(GradientCheckpointingLayer):
    """One pre-norm transformer layer: x + Attention(LN(x)), then x + MLP(LN(x)).

    Normalising *before* each block (rather than after, as the original Transformer did) keeps the residual
    path an identity, which is what lets ViTs train without a learning-rate warmup.
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # Chosen once: plain self-attention, or LSA's.
        attention_class = SimpleViTLocalitySelfAttention if config.locality_self_attention else SimpleViTAttention
        self.attention = attention_class(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = SimpleViTMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # (batch, seq_len, hidden_size)
        attention_output, attention_probs = self.attention(self.layernorm_before(hidden_states), output_attentions)
        hidden_states = hidden_states + self.dropout(attention_output)
        hidden_states = hidden_states + self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states, attention_probs  # (batch, seq_len, hidden_size), probabilities or None


class SimpleViTEncoder(nn.Module):
    """The stack of layers; collects every hidden state and attention map when asked."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.layers = nn.ModuleList([SimpleViTLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        # (batch, seq_len, hidden_size)
        all_hidden_states = (hidden_states,) if output_hidden_states else None  # the embeddings come first
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, attention_probs = layer(hidden_states, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (attention_probs,)  # each (batch, heads, seq_len, seq_len)
        return hidden_states, all_hidden_states, all_attentions  # (batch, seq_len, hidden_size), ...


# ------------------------------------------------------------------------------------------------------------------
# 5. The pretrained base: initialisation and transformers plumbing
# ------------------------------------------------------------------------------------------------------------------


class SimpleViTPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the `transformers` plumbing (save/load, SDPA, gradient checkpointing)."""

    config_class = SimpleViTConfig
    config: SimpleViTConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["SimpleViTEmbeddings", "SimpleViTSinCosEmbeddings", "SimpleViTLayer"]
    _supports_sdpa = True  # without this transformers silently forces the eager path

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        # transformers guesses whether `set_attn_implementation` may switch a model by looking in its source for an
        # attention class and for its own dispatch helper (`ALL_ATTENTION_FUNCTIONS`); finding our attention class
        # without the helper, it only warns and keeps the old path. SimpleViTAttention reads
        # `config._attn_implementation` on every call, so switching takes effect at once.
        return True

    def _init_weights(self, module):
        # Linear/Conv: normal(0, initializer_range), zero bias; LayerNorm: ones and zeros (the library default).
        # transformers' `init` functions skip tensors already loaded from a checkpoint (from_pretrained calls this
        # for every module with something left to initialise).
        super()._init_weights(module)
        if isinstance(module, SimpleViTSinCosEmbeddings):
            side = self.config.image_size // self.config.patch_size
            init.copy_(module.position_embeddings, sincos_2d_position_embeddings(side, side, self.config.hidden_size))
        elif isinstance(module, SimpleViTEmbeddings):
            # Truncated normal as in ViT (and the tutorial): no outlier starts far from the others.
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, SimpleViTEmbeddings):
            init.trunc_normal_(module.cls_token, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, nn.Conv2d) and getattr(module, "feeds_relu", False):
            # The convolutional tokenizer's layers: He initialisation keeps the activations' scale through the ReLUs,
            # as in CCT (in place of the normal(0, 0.02) above). Marked on the Conv2d itself because transformers
            # skips a module without parameters of its own, such as the tokenizer.
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if isinstance(module, SimpleViTLocalitySelfAttention):
            init.constant_(module.scaling, module.head_dim**-0.5)  # LSA's learned scale starts at the usual one

    def save_pretrained(self, save_directory, *args, **kwargs):
        # `register_for_auto_class` records only the class being saved in `auto_map`; a saved classifier must
        # also load as the bare model (AutoModel) and vice versa, so write all three entries.
        self.config.auto_map = {
            "AutoConfig": "configuration_simple_vit.SimpleViTConfig",
            "AutoModel": "modeling_simple_vit.SimpleViTModel",
            "AutoModelForImageClassification": "modeling_simple_vit.SimpleViTForImageClassification",
        }
        return super().save_pretrained(save_directory, *args, **kwargs)


# ------------------------------------------------------------------------------------------------------------------
# 6. The model: embeddings, encoder, final LayerNorm, pooler
# ------------------------------------------------------------------------------------------------------------------


class SimpleViTClsPooler(nn.Module):
    """What `pooler_output` (and so the classifier) reads with `classifier_pooling="cls"`, as in ViT: the CLS token's
    final state. No parameters (transformers' ViTModel adds a Linear + tanh pooler, which its classifier ignores)."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__()  # every pooler is built from the config; only SimpleViTSequencePooler uses it

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        # (batch, num_patches + 1, hidden_size) -> (batch, hidden_size)
        return sequence_output[:, 0]


class SimpleViTMeanPooler(nn.Module):
    """`classifier_pooling="mean"`: global average pooling, as in "Better plain ViT baselines for ImageNet-1k"
    (Beyer et al., 2022). What it changes: the classifier reads the average of the patch tokens' final states; the
    CLS token still takes part in attention but is not read."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__()

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        # (batch, num_patches + 1, hidden_size) -> (batch, hidden_size)
        return sequence_output[:, 1:].mean(dim=1)


class SimpleViTSequencePooler(nn.Module):
    """`classifier_pooling="sequence"`: sequence pooling (SeqPool), from "Escaping the Big Data Paradigm with Compact
    Transformers" (Hassani et al., 2021). What it changes: one Linear layer scores each patch token's final state, and
    the classifier reads the patch tokens' average weighted by the softmax of those scores, so each image decides
    which of its tokens count. Its weights start small, so the scores start near zero and the token weights near
    even, as in mean pooling. The CLS token still takes part in attention but is not read (CCT has none)."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        # No bias: the softmax ignores a score shared by every token, so a bias would get no gradient.
        self.attention_pool = nn.Linear(config.hidden_size, 1, bias=False)

    def token_weights(self, sequence_output: torch.Tensor) -> torch.Tensor:
        # (batch, num_patches + 1, hidden_size) -> (batch, num_patches): each image's weights, which sum to 1
        scores = self.attention_pool(sequence_output[:, 1:]).squeeze(-1)  # (batch, num_patches)
        # In float32, as the attention's softmax: bf16 would round the weights of 64 tokens coarsely.
        return F.softmax(scores, dim=-1, dtype=torch.float32).to(sequence_output.dtype)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        # (batch, num_patches + 1, hidden_size) -> (batch, hidden_size)
        weights = self.token_weights(sequence_output).unsqueeze(1)  # (batch, 1, num_patches)
        return (weights @ sequence_output[:, 1:]).squeeze(1)


EMBEDDINGS = {"learned": SimpleViTEmbeddings, "sincos": SimpleViTSinCosEmbeddings}
POOLERS = {"cls": SimpleViTClsPooler, "mean": SimpleViTMeanPooler, "sequence": SimpleViTSequencePooler}


class SimpleViTModel(SimpleViTPreTrainedModel):
    """The bare SimpleViT encoder; returns every token's final state and, as `pooler_output`, the CLS state (or
    the patch tokens' mean, with `classifier_pooling="mean"`, or their weighted mean, with `"sequence"`)."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__(config)
        # The options are chosen here, once: which embeddings, whether a final LayerNorm, which pooler.
        if config.position_embedding_type not in EMBEDDINGS:
            # The config checks this at construction; a field overridden afterwards must not pick a type silently.
            raise ValueError(
                f"position_embedding_type must be 'learned' or 'sincos', got {config.position_embedding_type!r}"
            )
        self.embeddings = EMBEDDINGS[config.position_embedding_type](config)
        self.encoder = SimpleViTEncoder(config)
        # transformers' ViT normalises the encoder's output; the tutorial's model (`final_layernorm=False`) does not.
        self.layernorm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.final_layernorm else nn.Identity()
        )
        self.pooler = POOLERS[config.classifier_pooling](config)
        self.post_init()

    def get_input_embeddings(self) -> SimpleViTPatchEmbeddings:
        return self.embeddings.patch_embeddings

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        # pixel_values: (batch, num_channels, height, width)
        if pixel_values is None:
            raise ValueError("pixel_values must be given")
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        embedding_output = self.embeddings(pixel_values, bool(interpolate_pos_encoding))
        hidden_states, all_hidden_states, all_attentions = self.encoder(
            embedding_output, output_attentions, output_hidden_states
        )
        sequence_output = self.layernorm(hidden_states)  # (batch, num_patches + 1, hidden_size)
        pooled_output = self.pooler(sequence_output)  # (batch, hidden_size)

        if not return_dict:
            return tuple(
                v for v in (sequence_output, pooled_output, all_hidden_states, all_attentions) if v is not None
            )
        return BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


# ------------------------------------------------------------------------------------------------------------------
# 7. The classification head
# ------------------------------------------------------------------------------------------------------------------


class SimpleViTForImageClassification(SimpleViTPreTrainedModel):
    """SimpleViT with a linear classifier on `pooler_output`: the final CLS state (or the patch tokens' plain or
    weighted mean).

    With CLS pooling and nothing else asked for, `pooler_output` comes from `cls_only_sequence_output`, the same
    value computed with less work (the speed block at the end of this class).
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.vit = SimpleViTModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutput | tuple:
        # pixel_values: (batch, num_channels, height, width); labels: (batch,) class ids, or
        # (batch, num_labels) for multi-label / regression, following `config.problem_type`.
        # kwargs: what transformers' Trainer passes for the loss (`num_items_in_batch`).
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if self.runs_cls_only_last_layer(output_attentions, output_hidden_states):  # speed: see the block below
            pooled_output = self.vit.pooler(self.cls_only_sequence_output(pixel_values, interpolate_pos_encoding))
            outputs = BaseModelOutputWithPooling(pooler_output=pooled_output)
        else:
            outputs = self.vit(
                pixel_values,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                interpolate_pos_encoding=interpolate_pos_encoding,
                return_dict=True,
            )
        logits = self.classifier(outputs.pooler_output)  # (batch, num_labels)

        loss = None
        if labels is not None:
            # transformers' shared helper: cross-entropy, BCE-with-logits or MSE by `config.problem_type`
            # (inferred from num_labels and the labels' dtype when unset). The kwargs carry Trainer's
            # `num_items_in_batch`: with gradient accumulation the cross-entropy is then summed and divided by the
            # whole accumulated batch's size, as Trainer expects of a model whose forward takes **kwargs.
            loss = self.loss_function(labels, logits, self.config, **kwargs)

        if not return_dict:
            output = tuple(v for v in (logits, outputs.hidden_states, outputs.attentions) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    # --- speed: the CLS-only last layer (measured: 21-24% of a CPU train step, benchmarks/throughput.py --ablate
    # cls-only-last-layer) ----------------------------------------------------------------------------------------
    # With CLS pooling the classifier reads one token's final state. To compute it, the last layer needs every
    # token's key and value, but only the CLS token's query, attention output, residuals, LayerNorm and MLP: the
    # patch tokens' share of that work (most of a layer) is skipped, with the same logits and gradients
    # (tests/test_performance_paths.py). It runs only when nothing else is asked for (hidden states and attention maps
    # stay complete). Set `model.cls_only_last_layer = False` (not a config field) to run the full last layer, e.g.
    # for forward hooks that read it. Under gradient checkpointing this last step is not checkpointed (its
    # activations are mostly one token's).

    cls_only_last_layer = True

    def runs_cls_only_last_layer(self, output_attentions: bool | None, output_hidden_states: bool | None) -> bool:
        extras = (
            output_attentions if output_attentions is not None else self.config.output_attentions,
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states,
        )
        return self.cls_only_last_layer and self.config.classifier_pooling == "cls" and not any(extras)

    def cls_only_sequence_output(self, pixel_values: torch.Tensor | None, interpolate_pos_encoding: bool | None = None):
        """`self.vit(pixel_values).last_hidden_state[:, :1]`, the last layer computed for the CLS token alone."""
        # pixel_values: (batch, num_channels, height, width)
        if pixel_values is None:
            raise ValueError("pixel_values must be given")
        hidden_states = self.vit.embeddings(pixel_values, bool(interpolate_pos_encoding))  # (batch, seq_len, hidden)
        *layers, last = self.vit.encoder.layers
        for layer in layers:
            hidden_states = layer(hidden_states)[0]
        attention = last.attention
        query, key, value = attention.split_heads(attention.qkv_proj(last.layernorm_before(hidden_states)))
        context, _ = attention.attend(query[:, :, :1], key, value)  # the CLS query alone: (batch, heads, 1, head_dim)
        cls_state = hidden_states[:, :1] + last.dropout(attention.o_proj(attention.merge_heads(context)))
        cls_state = cls_state + last.dropout(last.mlp(last.layernorm_after(cls_state)))  # (batch, 1, hidden_size)
        return self.vit.layernorm(cls_state)  # (batch, 1, hidden_size)


# save_pretrained copies this file and the config's beside the weights and writes config.auto_map, so that
# AutoConfig / AutoModel / AutoModelForImageClassification.from_pretrained(..., trust_remote_code=True) work.
SimpleViTConfig.register_for_auto_class()
SimpleViTModel.register_for_auto_class("AutoModel")
SimpleViTForImageClassification.register_for_auto_class("AutoModelForImageClassification")

__all__ = ["SimpleViTPreTrainedModel", "SimpleViTModel", "SimpleViTForImageClassification"]
