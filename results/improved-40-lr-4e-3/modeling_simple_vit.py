"""SimpleViT: a Vision Transformer written from scratch, readable top to bottom.

The math is exactly that of `transformers`' ViT (pre-norm layers, a CLS token, learned position embeddings, a
final LayerNorm, a classifier on the CLS state), so weights convert one-to-one (see convert_vit_checkpoint.py).
Options beyond it: `classifier_pooling="mean"` classifies the average of the patch tokens instead,
`position_embedding_type="sincos"` replaces the learned positions by fixed 2-D sine-cosine ones, and
`shifted_patch_tokenization` / `locality_self_attention` are the two changes of "Vision Transformer for Small-Size
Datasets" (Lee et al., 2021), and `final_layernorm=False` drops the final LayerNorm as the tutorial's model does.
All are off by default.
The file reads in the order data flows through the model:

    patch embeddings -> embeddings -> attention -> MLP -> layer -> encoder
    -> pretrained base -> model -> classification head

This file is shipped to the Hub as remote code: it imports only torch, transformers and (relatively) its config.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput


try:  # as Hub remote code, the config file sits beside this one in a package
    from .configuration_simple_vit import SimpleViTConfig
except ImportError:  # imported as a top-level module from a checkout of the project
    from configuration_simple_vit import SimpleViTConfig


class SimpleViTPatchEmbeddings(nn.Module):
    """Cut the image into non-overlapping patches and project each one to a `hidden_size` vector.

    A Conv2d whose kernel and stride both equal the patch size is exactly "flatten each patch, then apply one
    shared Linear layer". We keep the parameter as a Conv2d (`projection`, weight (hidden, channels, patch,
    patch)) so checkpoints match `transformers`' ViT, but compute it as that one matrix multiply: the patches are
    laid out as rows in the weight's (channel, row, column) order, and the result comes out already as
    (batch, num_patches, hidden_size) rows, with no transpose copy and no convolution backward.

    With `shifted_patch_tokenization` (SPT) the patches are cut from the image stacked with its four diagonal
    shifts by half a patch (5 x num_channels channels), so each patch vector also sees the pixels around its
    patch, and `patch_norm` (a LayerNorm over the patch vector) comes before the projection.
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.image_size = config.image_size
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        self.num_patches = (config.image_size // config.patch_size) ** 2
        self.shift = config.patch_size // 2 if config.shifted_patch_tokenization else 0
        in_channels = 5 * config.num_channels if self.shift else config.num_channels
        self.projection = nn.Conv2d(
            in_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        patch_dim = in_channels * config.patch_size**2
        self.patch_norm = nn.LayerNorm(patch_dim, eps=config.layer_norm_eps) if self.shift else None

    def shifted_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """SPT's input: (batch, channels, height, width) -> (batch, 5 * channels, height, width), the image followed
        by its copies shifted by `shift` pixels towards the top-left, top-right, bottom-left and bottom-right (the
        pixels shifted in are zeros)."""
        s = self.shift
        height, width = pixel_values.shape[-2:]
        padded = F.pad(pixel_values, (s, s, s, s))  # zeros around: (batch, channels, height + 2s, width + 2s)
        # A window offset by (dy, dx) from the centre shows the image moved by (-dy, -dx).
        shifted = [padded[:, :, s + dy : s + dy + height, s + dx : s + dx + width]
                   for dy, dx in ((s, s), (s, -s), (-s, s), (-s, -s))]
        return torch.cat([pixel_values, *shifted], dim=1)

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

    def flatten_patches(self, pixel_values: torch.Tensor, leading_zero_rows: int = 0) -> torch.Tensor:
        """(batch, channels, height, width) -> (batch, leading_zero_rows + num_patches, channels * patch * patch).

        Row `leading_zero_rows + i` holds the pixels of patch i (patches in row-major order, like Conv2d's output);
        the leading rows are zeros, a free slot for the CLS token (see SimpleViTEmbeddings). One copy in all
        (with SPT, after the shifted stack is built). With SPT `channels` is 5 * num_channels.
        """
        self.check_pixel_values(pixel_values)
        if self.shift:
            pixel_values = self.shifted_images(pixel_values)  # (batch, 5 * num_channels, height, width)
        batch_size, channels, height, width = pixel_values.shape
        p = self.patch_size
        rows, cols = height // p, width // p  # like Conv2d, pixels past the last whole patch are ignored
        # (batch, channels, rows * p, cols * p) -> (batch, rows, cols, channels, p, p): one patch per (row, col)
        patches = pixel_values[:, :, : rows * p, : cols * p].reshape(batch_size, channels, rows, p, cols, p)
        patches = patches.permute(0, 2, 4, 1, 3, 5)
        flat = pixel_values.new_empty(batch_size, leading_zero_rows + rows * cols, channels * p * p)
        flat[:, :leading_zero_rows].zero_()
        flat[:, leading_zero_rows:].view(batch_size, rows, cols, channels, p, p).copy_(patches)
        return flat

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # (batch, num_channels, height, width) -> (batch, num_patches, channels * patch * patch), channels being
        # num_channels, or 5 * num_channels with SPT
        patches = self.flatten_patches(pixel_values)
        if self.patch_norm is not None:
            patches = self.patch_norm(patches)
        # The Conv2d weight (hidden, channels, p, p) read as a Linear weight (hidden, channels * p * p).
        weight = self.projection.weight.flatten(1)
        return F.linear(patches, weight, self.projection.bias)  # (batch, num_patches, hidden_size)


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


class SimpleViTEmbeddings(nn.Module):
    """Patch embeddings, with a learnable CLS token in front and a position embedding added.

    The CLS token attends to every patch; its final state is what the classifier reads (with CLS pooling).
    Positions are learned (one vector per position, as in ViT) or, with `position_embedding_type="sincos"`,
    fixed sine-cosine functions of each patch's row and column (then `position_embeddings` is None).
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.image_size = config.image_size
        self.hidden_size = config.hidden_size
        self.patch_embeddings = SimpleViTPatchEmbeddings(config)
        num_patches = self.patch_embeddings.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        if config.position_embedding_type == "learned":
            # One position per patch plus one for the CLS token.
            self.position_embeddings = nn.Parameter(torch.zeros(1, num_patches + 1, config.hidden_size))
        elif config.position_embedding_type != "sincos":
            # The config checks this at construction; a field overridden afterwards must not pick a type silently.
            raise ValueError(
                f"position_embedding_type must be 'learned' or 'sincos', got {config.position_embedding_type!r}"
            )
        else:
            # Not a parameter nor a buffer (nothing to save, load or initialise): computed once per grid size,
            # device and dtype, and kept here.
            self.position_embeddings = None
            self._sincos_tables = {}
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def sincos_position_embeddings(self, height: int, width: int) -> torch.Tensor:
        """The fixed positions for an image of (height, width) pixels, on the parameters' device and dtype."""
        like = self.cls_token
        key = (height // self.patch_size, width // self.patch_size, like.device, like.dtype)
        if torch.compiler.is_compiling():
            # Writing the cache inside a compiled graph would invalidate it and compile everything a second time;
            # the compiler folds this small constant computation instead.
            return sincos_2d_position_embeddings(key[0], key[1], self.hidden_size).to(like.device, like.dtype)
        if key not in self._sincos_tables:
            table = sincos_2d_position_embeddings(key[0], key[1], self.hidden_size)
            self._sincos_tables[key] = table.to(device=like.device, dtype=like.dtype)
        return self._sincos_tables[key]  # (1, 1 + rows * cols, hidden_size)

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Position embeddings for an image of another size: (1, new_num_patches + 1, hidden_size).

        Learned positions: same semantics as `transformers`' ViT, the CLS position is kept and the square grid of
        patch positions is resized (bicubic) to (height // patch, width // patch). Sine-cosine positions are not
        stretched but computed for the new grid, so a larger image extends the grid (its patches keep the spacing
        seen in training and reach positions never seen), as in "Better plain ViT baselines".
        """
        if self.position_embeddings is None:
            return self.sincos_position_embeddings(height, width)
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

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        # (batch, num_channels, height, width)
        patch_embeddings = self.patch_embeddings
        # (batch, 1 + num_patches, num_channels * patch * patch); row 0 is zeros: the CLS token's slot.
        patches = patch_embeddings.flatten_patches(pixel_values, leading_zero_rows=1)
        if patch_embeddings.patch_norm is not None:
            # SPT normalises each patch vector; the CLS slot stays zeros (a LayerNorm would turn it into its bias).
            patches = torch.cat((patches[:, :1], patch_embeddings.patch_norm(patches[:, 1:])), dim=1)
        height, width = pixel_values.shape[-2:]

        if not interpolate_pos_encoding and (height != self.image_size or width != self.image_size):
            raise ValueError(
                f"Input image size does not match the model: expected {self.image_size}x{self.image_size}, "
                f"got {height}x{width} (pass interpolate_pos_encoding=True to run on other sizes)"
            )
        if interpolate_pos_encoding:
            position_embeddings = self.interpolate_pos_encoding(height, width)
        elif self.position_embeddings is None:
            position_embeddings = self.sincos_position_embeddings(height, width)
        else:
            position_embeddings = self.position_embeddings

        # Everything that does not depend on the image, one row per position (a tiny (1, seq_len, hidden) tensor):
        # the CLS token in row 0 and the projection's bias in the patch rows, plus the position embeddings.
        # Adding it to "zero row + projected patches" gives exactly cat(CLS, projection(patches)) + positions,
        # without concatenating (and, in backward, slicing) a batch-sized tensor.
        num_patches = patches.shape[1] - 1
        bias = patch_embeddings.projection.bias.view(1, 1, -1).expand(1, num_patches, -1)
        per_position = position_embeddings + torch.cat((self.cls_token, bias), dim=1)  # (1, seq_len, hidden_size)
        weight = patch_embeddings.projection.weight.flatten(1)  # (hidden_size, num_channels * patch * patch)
        embeddings = torch.matmul(patches, weight.t()) + per_position  # (batch, num_patches + 1, hidden_size)
        return self.dropout(embeddings)  # (batch, num_patches + 1, hidden_size)


class SimpleViTAttention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection.

    One Linear produces queries, keys and values for all heads at once (a single matrix multiply instead of
    three). Two paths compute the same thing:
    - the explicit path spells out softmax(Q K^T / sqrt(d)) V and can return the attention probabilities;
    - the SDPA path calls `F.scaled_dot_product_attention`, which fuses those steps and is faster, but does not
      expose the probabilities. It is taken unless probabilities are requested or the model was loaded with
      `attn_implementation="eager"`.
    With `cls_query_only`, only the CLS token asks (one query row), while keys and values still come from every
    token: that is all a classifier needs from the last layer (see SimpleViTEncoder).
    With `locality_self_attention` (LSA) both paths mask the diagonal (query i never reads key i, so every token
    gathers from the others) and `scaling` is a learned parameter rather than the constant 1/sqrt(head_dim).
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.config = config
        self.num_attention_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.locality = config.locality_self_attention
        if self.locality:
            # A learned temperature: one scale per layer, starting at the usual constant (see _init_weights).
            self.scaling = nn.Parameter(torch.tensor(self.head_dim**-0.5))
        else:
            self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False  # every patch sees every other patch
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, cls_query_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # (batch, seq_len, hidden_size)
        batch_size, seq_len, hidden_size = hidden_states.shape
        # (batch, seq_len, 3 * hidden) -> (batch, seq_len, 3, heads, head_dim); q, k, v are views into it, no copies.
        qkv = self.qkv_proj(hidden_states).view(batch_size, seq_len, 3, self.num_attention_heads, self.head_dim)
        # Split along the "3" axis itself (not after moving it to the front): in backward the three gradients are
        # then stacked straight back into qkv's own (batch, seq_len, 3, heads, head_dim) layout in one pass.
        query, key, value = (t.transpose(1, 2) for t in qkv.unbind(2))  # each (batch, heads, seq_len, head_dim)
        if cls_query_only:
            query = query[:, :, :1]  # (batch, heads, 1, head_dim): the CLS token's query alone
        query_len = query.shape[2]
        dropout = self.attention_dropout if self.training else 0.0
        # LSA: True where a query may read a key, i.e. everywhere but the diagonal (row i is token i's query).
        allowed = ~torch.eye(query_len, seq_len, dtype=torch.bool, device=query.device) if self.locality else None

        if output_attentions or self.config._attn_implementation == "eager":
            # Explicit path: how similar is each query to each key, normalised to probabilities over keys.
            scores = torch.matmul(query, key.transpose(-1, -2)) * self.scaling  # (batch, heads, query_len, seq)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            attention_probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
            attention_probs = F.dropout(attention_probs, p=dropout, training=self.training)
            context = torch.matmul(attention_probs, value)  # (batch, heads, query_len, head_dim)
        elif self.locality:
            # SDPA takes its scale as a number: apply the learned one to the queries instead (the same product).
            context = F.scaled_dot_product_attention(
                query * self.scaling, key, value, attn_mask=allowed, dropout_p=dropout, scale=1.0
            )
            attention_probs = None
        else:
            context = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=self.scaling)
            attention_probs = None

        # Put the heads back side by side: (batch, query_len, heads * head_dim), then mix them.
        context = context.transpose(1, 2).reshape(batch_size, query_len, hidden_size)
        return self.o_proj(context), attention_probs  # (batch, query_len, hidden_size), probs or None


class SimpleViTMLP(nn.Module):
    """Position-wise feed-forward network: expand to `intermediate_size`, activation, project back."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        # transformers' "gelu_new" spells the tanh-GELU out in five elementwise ops; PyTorch's fused kernel
        # computes the same function (to float rounding) in one.
        if config.hidden_act in ("gelu_new", "gelu_pytorch_tanh"):
            self.activation_fn = nn.GELU(approximate="tanh")
        else:
            self.activation_fn = ACT2FN[config.hidden_act]
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
        self.attention = SimpleViTAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = SimpleViTMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, cls_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # (batch, seq_len, hidden_size)
        attention_output, attention_probs = self.attention(
            self.layernorm_before(hidden_states), output_attentions, cls_only
        )  # (batch, seq_len, hidden_size), or (batch, 1, hidden_size) with cls_only
        if cls_only:
            hidden_states = hidden_states[:, :1]  # only the CLS token goes on: (batch, 1, hidden_size)
        hidden_states = hidden_states + self.dropout(attention_output)
        hidden_states = hidden_states + self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states, attention_probs  # (batch, seq_len or 1, hidden_size), probs or None


class SimpleViTEncoder(nn.Module):
    """The stack of layers; collects every hidden state and attention map when asked.

    With `cls_only_last_layer` the last layer computes the CLS token's new state alone (its query, attention
    output and MLP; keys and values still come from every token). A classifier reads nothing else, so the logits
    are the same while that layer's MLP, output projection and most of its attention are skipped for all patch
    tokens. It is used only when neither hidden states nor attention maps are asked for.
    """

    def __init__(self, config: SimpleViTConfig):
        super().__init__()
        self.layers = nn.ModuleList([SimpleViTLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        cls_only_last_layer: bool = False,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        # (batch, seq_len, hidden_size)
        all_hidden_states = (hidden_states,) if output_hidden_states else None  # the embeddings come first
        all_attentions = () if output_attentions else None
        cls_only_last_layer = cls_only_last_layer and not (output_attentions or output_hidden_states)
        for index, layer in enumerate(self.layers):
            cls_only = cls_only_last_layer and index == len(self.layers) - 1
            hidden_states, attention_probs = layer(hidden_states, output_attentions, cls_only)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (attention_probs,)  # each (batch, heads, seq_len, seq_len)
        return hidden_states, all_hidden_states, all_attentions  # (batch, seq_len or 1, hidden_size), ...


class SimpleViTPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the `transformers` plumbing (save/load, SDPA, gradient checkpointing)."""

    config_class = SimpleViTConfig
    config: SimpleViTConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["SimpleViTEmbeddings", "SimpleViTLayer"]
    _supports_sdpa = True  # without this transformers silently forces the eager path

    def _init_weights(self, module):
        # Linear/Conv: normal(0, initializer_range), zero bias; LayerNorm: ones and zeros (the library default).
        super()._init_weights(module)
        if isinstance(module, SimpleViTEmbeddings):
            # Truncated normal as in ViT (and the tutorial): no outlier starts far from the others.
            if module.position_embeddings is not None:  # None: fixed sine-cosine positions
                nn.init.trunc_normal_(module.position_embeddings, mean=0.0, std=self.config.initializer_range)
            nn.init.trunc_normal_(module.cls_token, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, SimpleViTAttention) and isinstance(module.scaling, nn.Parameter):
            nn.init.constant_(module.scaling, module.head_dim**-0.5)  # LSA's learned scale starts at the usual one

    def save_pretrained(self, save_directory, *args, **kwargs):
        # `register_for_auto_class` records only the class being saved in `auto_map`; a saved classifier must
        # also load as the bare model (AutoModel) and vice versa, so write all three entries.
        self.config.auto_map = {
            "AutoConfig": "configuration_simple_vit.SimpleViTConfig",
            "AutoModel": "modeling_simple_vit.SimpleViTModel",
            "AutoModelForImageClassification": "modeling_simple_vit.SimpleViTForImageClassification",
        }
        return super().save_pretrained(save_directory, *args, **kwargs)


class SimpleViTModel(SimpleViTPreTrainedModel):
    """The bare SimpleViT encoder; returns every token's final state and, as `pooler_output`, the CLS state (or
    the patch tokens' mean, with `classifier_pooling="mean"`)."""

    def __init__(self, config: SimpleViTConfig):
        super().__init__(config)
        self.embeddings = SimpleViTEmbeddings(config)
        self.encoder = SimpleViTEncoder(config)
        # transformers' ViT normalises the encoder's output; the tutorial's model (`final_layernorm=False`) does not.
        # getattr: configs saved before the option had the LayerNorm.
        if getattr(config, "final_layernorm", True):
            self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        else:
            self.layernorm = nn.Identity()
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
        pooler_output_only: bool = False,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        # pixel_values: (batch, num_channels, height, width)
        # pooler_output_only: the caller reads only `pooler_output` (the classifier does), so with CLS pooling the
        # last layer and the final LayerNorm may run on the CLS token alone; `last_hidden_state` is then
        # (batch, 1, hidden_size).
        if pixel_values is None:
            raise ValueError("pixel_values must be given")
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        # Images usually arrive as float32; follow the weights' dtype (e.g. a model loaded in bfloat16).
        pixel_values = pixel_values.to(self.embeddings.patch_embeddings.projection.weight.dtype)
        embedding_output = self.embeddings(pixel_values, bool(interpolate_pos_encoding))
        # Mean pooling reads every patch token, so the last layer must compute them all.
        cls_only_last_layer = pooler_output_only and self.config.classifier_pooling == "cls"
        hidden_states, all_hidden_states, all_attentions = self.encoder(
            embedding_output, output_attentions, output_hidden_states, cls_only_last_layer
        )
        sequence_output = self.layernorm(hidden_states)  # (batch, num_patches + 1, hidden_size), or (batch, 1, ...)
        if self.config.classifier_pooling == "mean":
            pooled_output = sequence_output[:, 1:].mean(dim=1)  # average of the patch tokens: (batch, hidden_size)
        else:
            pooled_output = sequence_output[:, 0]  # the CLS token's state: (batch, hidden_size)

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


class SimpleViTForImageClassification(SimpleViTPreTrainedModel):
    """SimpleViT with a linear classifier on `pooler_output`: the final CLS state (or the patch tokens' mean).

    With CLS pooling the classifier reads only the CLS token, so by default the last layer computes the CLS
    token's state alone (see SimpleViTEncoder): same logits, a good part of one layer's work saved in training
    and inference. Hidden states and attention maps, when asked for, are always complete. Set
    `cls_only_last_layer = False` on the model (it is not a config field) to run the last layer on every token,
    e.g. for forward hooks that read it.
    """

    cls_only_last_layer = True

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
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.vit(
            pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            interpolate_pos_encoding=interpolate_pos_encoding,
            return_dict=True,
            pooler_output_only=self.cls_only_last_layer,
        )
        logits = self.classifier(outputs.pooler_output)  # (batch, num_labels)

        loss = None
        if labels is not None:
            # transformers' shared helper: cross-entropy, BCE-with-logits or MSE by `config.problem_type`
            # (inferred from num_labels and the labels' dtype when unset).
            loss = self.loss_function(labels, logits, self.config)

        if not return_dict:
            output = tuple(v for v in (logits, outputs.hidden_states, outputs.attentions) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# save_pretrained copies this file and the config's beside the weights and writes config.auto_map, so that
# AutoConfig / AutoModel / AutoModelForImageClassification.from_pretrained(..., trust_remote_code=True) work.
SimpleViTConfig.register_for_auto_class()
SimpleViTModel.register_for_auto_class("AutoModel")
SimpleViTForImageClassification.register_for_auto_class("AutoModelForImageClassification")

__all__ = ["SimpleViTPreTrainedModel", "SimpleViTModel", "SimpleViTForImageClassification"]
