"""Custom Keras layers and models (requirement keras.1): parity with independent twins, round trips.

Backend-generic: these run on whichever backend Keras was imported with (KERAS_BACKEND; the
tox envs keras-tensorflow, keras-torch and keras-jax run this file on each), and are marked with
that backend. Twins: keras.layers.MultiHeadAttention, the project's torch MultiHeadAttention,
torch.nn.TransformerEncoderLayer(norm_first=True), all with our weights copied in. float64 on
TensorFlow (<= 1e-10); float32 (<= 1e-5, against the float64 torch result) on torch and JAX,
where Keras computes float64 in float32.
"""
import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="needs keras (pip install -e '.[tensorflow]')")
pytest.importorskip("torch", reason="needs torch for the torch twins")

from assessments.keras._helpers import (attention_vs_keras_mha, attention_vs_torch, backend_name,  # noqa: E402
                                        block_vs_torch, config_round_trip, keras_file_round_trip,
                                        max_abs_diff, parity_dtype, parity_report,
                                        plain_config, small_models, to_numpy,
                                        torch_twin_output)
from implementations.frameworks.keras.layers import (MultiHeadSelfAttention, PositionEmbedding,  # noqa: E402
                                                     TransformerBlock)
from implementations.frameworks.keras.models import RowTransformer, row_transformer  # noqa: E402

pytestmark = [getattr(pytest.mark, backend_name())]
DTYPE, TOL = parity_dtype()
MASKS = ("none", "causal", "random")


@pytest.mark.parametrize("mask", MASKS)
def test_attention_matches_keras_multi_head_attention(mask):
    """Our keras.ops attention vs Keras' built-in MultiHeadAttention, same projection weights."""
    assert attention_vs_keras_mha(16, 4, mask) <= TOL


@pytest.mark.parametrize("mask", MASKS)
def test_attention_matches_project_torch_attention(mask):
    """Our keras.ops attention vs the project's torch MultiHeadAttention (torch masks converted)."""
    assert attention_vs_torch(16, 4, mask) <= TOL


def test_block_matches_torch_encoder_layer():
    assert block_vs_torch() <= TOL


def test_parity_catches_a_wrong_weight():
    """Control: the comparison is sharp. One projection entry off by 0.05 is seen."""
    functional, _, x = small_models()
    expected = torch_twin_output(functional, x)
    assert max_abs_diff(functional(x), expected) <= TOL
    attn = next(l for l in functional.layers if l.name == "block0").self_attn
    w = np.array(keras.ops.convert_to_numpy(attn.in_proj_kernel))
    w[0, 0] += 0.05
    attn.in_proj_kernel.assign(w)
    assert max_abs_diff(functional(x), expected) > 100 * TOL


def test_attention_is_written_from_keras_ops():
    """Guard: parity with Keras' MultiHeadAttention would also pass if our layer called it. Rerun
    the model with Keras' attention layers and fused attention op patched to raise: same output."""
    import implementations.frameworks.keras.layers as layers_module
    import implementations.frameworks.keras.models as models_module
    from assessments.forbidden import forbid

    functional, _, x = small_models()
    expected = to_numpy(functional(x))
    twins = ["keras.layers.MultiHeadAttention.call", "keras.layers.Attention.call", "keras.ops.dot_product_attention",
             "keras.ops.nn.dot_product_attention"]
    with forbid(twins, [layers_module, models_module]):
        inside = to_numpy(functional(x))
    assert max_abs_diff(inside, expected) == 0.0


def test_subclassed_and_functional_models_agree():
    """Same layers in the same order: same weight shapes and names, and identical outputs."""
    functional, subclassed, x = small_models()
    assert [w.shape for w in functional.weights] == [w.shape for w in subclassed.weights]
    assert [w.path.split("/", 1)[1] for w in subclassed.weights] == [w.path for w in functional.weights]
    assert max_abs_diff(functional(x), subclassed(x)) == 0.0
    assert functional(x).shape == (4, 3)


def test_keras_file_round_trip(tmp_path):
    """`.keras` save and load (registered classes, no custom_objects): identical predictions."""
    functional, subclassed, x = small_models()
    assert keras_file_round_trip(functional, x, tmp_path / "functional.keras") == 0.0
    assert keras_file_round_trip(subclassed, x, tmp_path / "subclassed.keras") == 0.0


def test_config_round_trip():
    """from_config(get_config()) for every layer and both models, with every argument away from its
    default: a key missing from get_config would fall back to the default and be caught."""
    functional, subclassed, x = small_models()
    assert config_round_trip(functional, x) == 0.0
    assert config_round_trip(subclassed, x) == 0.0
    layers = [MultiHeadSelfAttention(12, 3, dropout=0.2, bias=False, kernel_initializer="he_normal", name="a"),
              PositionEmbedding(9, initializer="ones", name="p"),
              TransformerBlock(12, 3, dim_feedforward=20, dropout=0.2, activation="gelu", layer_norm_eps=1e-6,
                               name="b")]
    for layer in layers:
        clone = layer.__class__.from_config(layer.get_config())
        assert plain_config(clone) == plain_config(layer)
    cfg = layers[0].get_config()
    assert (cfg["embed_dim"], cfg["num_heads"], cfg["dropout"], cfg["bias"]) == (12, 3, 0.2, False)
    assert RowTransformer.from_config(subclassed.get_config()).num_layers == 2


def test_layers_reject_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(10, 3)
    with pytest.raises(ValueError, match="expected inputs"):
        MultiHeadSelfAttention(8, 2)(np.zeros((1, 3, 6), dtype=DTYPE))
    with pytest.raises(ValueError, match="max_length"):
        PositionEmbedding(4)(np.zeros((1, 5, 8), dtype=DTYPE))
    with pytest.raises(ValueError, match="image_shape"):
        row_transformer(image_shape=(28,))
    with pytest.raises(ValueError, match="dropout"):
        TransformerBlock(8, 2, dropout=1.5)


def test_parity_reported(evidence, tmp_path):
    """Every check on this backend in one table; the worst error is the key number."""
    report = parity_report(tmp_path)
    errors = report["errors"]
    worst = max(errors.values())
    evidence.metric(f"worst_parity_error_{report['backend']}", worst, threshold=TOL, direction="lower", key=True)
    evidence.table(f"parity_{report['backend']}", [{"check": k, "max_abs_error": v} for k, v in errors.items()])
    evidence.text(f"Backend {report['backend']}, {report['dtype']}: our keras.ops MultiHeadSelfAttention, "
                  "TransformerBlock and row-transformer models against keras.layers.MultiHeadAttention, the "
                  "project's torch attention and torch.nn.TransformerEncoderLayer with copied weights; .keras "
                  "save/load and get_config/from_config round trips give identical predictions.")
    assert worst <= TOL, errors
