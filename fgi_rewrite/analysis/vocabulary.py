"""Which torch/math operations the analysis accepts as pure, deterministic and elementwise-safe.

A surrogate is only rewritten when every operation in it is listed here (or is a helper of the
same module built from these): anything else could hide state, randomness or reductions.
"""

from __future__ import annotations

# torch.<name>(...) and tensor.<name>(...): deterministic, no hidden state.
PURE_TORCH_FUNCTIONS = frozenset(
    """
    abs absolute acos arccos acosh add addcdiv addcmul asin arcsin atan arctan atan2 arctan2
    atanh clamp clamp_min clamp_max clip copysign cos cosh div divide eq erf erfc exp exp2 expm1
    float_power floor_divide fmod ge greater_equal gt greater heaviside le less_equal lt less
    log log10 log1p log2 logical_and logical_not logical_or logical_xor logaddexp maximum minimum
    mul multiply ne not_equal neg negative pow reciprocal relu remainder rsqrt sigmoid sign
    signbit sin sinh softplus sqrt square sub subtract tan tanh true_divide where masked_fill
    zeros_like ones_like full_like empty_like tensor as_tensor scalar_tensor isnan isfinite
    isinf nan_to_num hardtanh floor ceil round trunc frac
    """.split()
)

# Method-only spellings (casts, copies, views that keep elements in place).
PURE_TENSOR_METHODS = PURE_TORCH_FUNCTIONS | frozenset(
    """
    float double half bfloat16 to type type_as clone detach contiguous view_as reshape_as
    expand_as new_tensor new_full new_zeros new_ones bool int long
    """.split()
)

# torch.nn.functional.<name>
PURE_FUNCTIONAL = frozenset("relu sigmoid softplus hardtanh tanh logsigmoid".split())

MATH_FUNCTIONS = frozenset(
    """
    sqrt exp log log2 log10 pi e tau inf pow atan atan2 tan tanh sin cos cosh sinh erf erfc
    fabs fsum hypot copysign isclose
    """.split()
)

PURE_BUILTINS = frozenset("abs float int min max pow round bool".split())

RANDOM_NAMES = frozenset(
    """
    rand rand_like randn randn_like randint randint_like randperm bernoulli bernoulli_
    normal normal_ uniform_ poisson multinomial random_ exponential_ geometric_ cauchy_
    log_normal_ dropout dropout_ random gauss
    """.split()
)

CASTS_TO_DTYPE = {
    "float": "torch.float32",
    "double": "torch.float64",
    "half": "torch.float16",
    "bfloat16": "torch.bfloat16",
}

# Casts whose result keeps the dtype of their argument tensor.
CASTS_LIKE = frozenset({"to", "type_as", "type"})

COMPARISON_METHODS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "greater": ">",
                      "greater_equal": ">=", "less": "<", "less_equal": "<="}
