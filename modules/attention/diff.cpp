// Differential attention core shared by `diff` and `gda`; see diff.h and docs/methods.md §2.
#include "modules/attention/diff.h"

#include <cmath>

#include "common/error.h"
#include "modules/attention_backend.h"
#include "modules/attention_math.h"
#include "modules/lora.h"
#include "modules/masks.h"

namespace attnlab {

double diff_lambda_init(int64_t layer_index, double offset) {
  return 0.8 - 0.6 * std::exp(-0.3 * (static_cast<double>(layer_index) + offset));
}

RopeStyle parse_rope_style(const std::string& name, const std::string& key) {
  if (name == "interleaved") return RopeStyle::kInterleaved;
  if (name == "rotate_half" || name == "neox") return RopeStyle::kRotateHalf;
  throw UserError(key + ": expected interleaved or rotate_half, got '" + name + "'");
}

DiffOptions diff_options_from(const AttentionOptions& options) {
  const int64_t heads = options.n_heads;
  const int64_t kv_heads = options.n_kv_heads > 0 ? options.n_kv_heads : heads;
  check_user(heads > 0 && heads % 2 == 0,
             "attention=diff pairs heads: model.n_heads (" + std::to_string(heads) +
                 ") must be even (DIFF uses n_heads/2 differential heads with two maps each)");
  check_user(kv_heads % 2 == 0 && heads % kv_heads == 0,
             "attention=diff: model.n_kv_heads (" + std::to_string(kv_heads) +
                 ") must be even and divide model.n_heads");
  check_user(options.d_model % heads == 0, "model.d_model (" + std::to_string(options.d_model) +
                                               ") must be divisible by model.n_heads (" +
                                               std::to_string(heads) + ")");
  const auto own = module_options<DiffModuleOptions>(options);
  DiffOptions o;
  o.d_model = options.d_model;
  o.n_signal = o.n_noise = heads / 2;
  o.n_kv = kv_heads / 2;
  o.head_dim = options.d_model / heads;
  o.lambda_init =
      own.lambda_init().value_or(diff_lambda_init(options.layer_index, own.lambda_init_offset()));
  o.subln_eps = own.subln_eps();
  o.rope = own.rope() && options.rotary_positions;
  o.rope_style = parse_rope_style(own.rope_style(), "attention.rope_style");
  o.rope_theta = options.rope_theta;
  o.rope_scaling = options.rope_scaling;
  o.dropout = options.dropout;
  o.backend = options.backend;
  return o;
}

HeadRmsNormImpl::HeadRmsNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor HeadRmsNormImpl::forward(const torch::Tensor& x) {
  auto compute = x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
  auto normed = compute * torch::rsqrt(compute.pow(2).mean(-1, true) + eps_);
  return normed.to(x.scalar_type()) * weight.to(x.scalar_type());
}

DiffAttentionImpl::DiffAttentionImpl(const AttentionOptions& options)
    : DiffAttentionImpl(diff_options_from(options)) {}

DiffAttentionImpl::DiffAttentionImpl(const DiffOptions& options) : options_(options) {
  const auto& o = options_;
  const std::string shape = " (n_signal=" + std::to_string(o.n_signal) +
                            ", n_noise=" + std::to_string(o.n_noise) +
                            ", n_kv=" + std::to_string(o.n_kv) + ")";
  check_user(o.n_signal > 0 && o.n_noise > 0 && o.n_signal % o.n_noise == 0,
             "differential attention: n_signal must be a positive multiple of n_noise" + shape);
  check_user(o.n_kv > 0 && o.n_noise % o.n_kv == 0,
             "differential attention: the kv pair count must divide n_noise" + shape);
  check_user(
      o.head_dim > 0 && (!o.rope || o.head_dim % 2 == 0),
      "differential attention: RoPE needs an even q/k head dim (model.d_model / model.n_heads)");
  auto linear = [](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  const int64_t d = o.head_dim;
  q_proj = register_module("q_proj", linear(o.d_model, (o.n_signal + o.n_noise) * d));
  k_proj = register_module("k_proj", linear(o.d_model, 2 * o.n_kv * d));
  v_proj = register_module("v_proj", linear(o.d_model, 2 * o.n_kv * d));
  out_proj = register_module("out_proj", linear(o.n_signal * 2 * d, o.d_model));
  // λ vectors: float32, N(0, 0.1) as in unilm.
  auto lambda = [&](const std::string& name) {
    return register_parameter(name, torch::randn({d}) * 0.1);
  };
  lambda_q1 = lambda("lambda_q1");
  lambda_k1 = lambda("lambda_k1");
  lambda_q2 = lambda("lambda_q2");
  lambda_k2 = lambda("lambda_k2");
  subln = register_module("subln", HeadRmsNorm(2 * d, o.subln_eps));
}

void DiffAttentionImpl::reset_parameters(const ParameterInit& init) {
  init_projection(q_proj, init.std);
  init_projection(k_proj, init.std);
  init_projection(v_proj, init.std);
  init_projection(out_proj, init.residual_std);
}

torch::Tensor DiffAttentionImpl::lambda_full() const {
  auto lambda_1 = torch::exp((lambda_q1 * lambda_k1).sum());
  auto lambda_2 = torch::exp((lambda_q2 * lambda_k2).sum());
  return lambda_1 - lambda_2 + options_.lambda_init;
}

AttentionOutput DiffAttentionImpl::forward(const torch::Tensor& x,
                                           const AttentionContext& context) {
  const auto& o = options_;
  const int64_t batch = x.size(0), length = x.size(1), d = o.head_dim;
  const int64_t group = o.n_signal / o.n_noise;
  // q rows per group: [G signal heads, 1 noise head] (DIFF: [q1, q2] per differential head).
  auto q = lora_linear(q_proj, x).view({batch, length, o.n_noise, group + 1, d});
  auto q_signal = q.narrow(3, 0, group).reshape({batch, length, o.n_signal, d}).transpose(1, 2);
  auto q_noise = q.select(3, group).transpose(1, 2);  // [B, n_noise, T, d]
  // k rows per kv pair: [k1, k2] -> kept together as [B, n_kv, T, 2d] for the cache.
  auto k = lora_linear(k_proj, x).view({batch, length, o.n_kv, 2, d}).transpose(1, 2);
  auto v = lora_linear(v_proj, x).view({batch, length, o.n_kv, 2 * d}).transpose(1, 2);
  if (o.rope) {
    auto rope = [&](const torch::Tensor& t) {
      return apply_rope(t, context.positions, o.rope_theta, o.rope_style, o.rope_scaling);
    };
    q_signal = rope(q_signal);
    q_noise = rope(q_noise);
    k = torch::stack({rope(k.select(3, 0)), rope(k.select(3, 1))}, 3);
  }
  k = k.flatten(3);  // [B, n_kv, T, 2d] = [k1 | k2]
  AttentionKeys keys = keys_with_cache(k, v, context.positions, context);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  auto k1 = keys.k.narrow(-1, 0, d), k2 = keys.k.narrow(-1, d, d);
  // GQA by the flash rule within each query set: signal head i -> pair i / (n_signal / n_kv),
  // noise head j -> pair j / (n_noise / n_kv); both agree for i's noise head j = i / G.
  const int64_t signal_rep = o.n_signal / o.n_kv, noise_rep = o.n_noise / o.n_kv;
  AttentionOutput out;
  torch::Tensor heads;  // [B, n_signal, T, 2d]
  const SoftmaxKernel kernel =
      select_differential_kernel(o.backend, q_signal, context, o.dropout, is_training());
  if (kernel == SoftmaxKernel::kDense) {
    // The composed difference map (A1 − λ·A2), which probes read and dropout drops entries of.
    auto mask = build_attention_mask(context.mask, context.positions, keys.positions);
    auto a1 = masked_softmax_probs(q_signal, repeat_kv(k1, signal_rep), mask, scale);
    auto a2 = masked_softmax_probs(q_noise, repeat_kv(k2, noise_rep), mask, scale);
    auto lambda = lambda_full().to(a1.scalar_type());
    auto diff_map = a1 - lambda * repeat_kv(a2, group);  // [B, n_signal, T, T_k]
    if (context.need_probs) out.probs = diff_map;
    diff_map = torch::dropout(diff_map, o.dropout, is_training());
    heads = torch::matmul(diff_map.to(v.scalar_type()), repeat_kv(keys.v, signal_rep));
  } else {
    // (A1 − λ·A2) V = A1·V − λ·(A2·V): each map is one softmax attention through the selected
    // kernel (never materialised), the noise heads' outputs repeated to their G signal heads.
    const SoftmaxAttentionOptions plain{scale, 0.0, false};  // no dropout: see the selector
    auto y1 = softmax_attention_with(kernel, q_signal, repeat_kv(k1, signal_rep),
                                     repeat_kv(keys.v, signal_rep), keys.positions, context, plain)
                  .y;
    auto y2 = softmax_attention_with(kernel, q_noise, repeat_kv(k2, noise_rep),
                                     repeat_kv(keys.v, noise_rep), keys.positions, context, plain)
                  .y;
    heads = y1 - lambda_full().to(y1.scalar_type()) * repeat_kv(y2, group);
  }
  heads = subln(heads) * (1.0 - o.lambda_init);  // [B, n_signal, T, 2d]
  out.y = lora_linear(out_proj, heads.transpose(1, 2).reshape({batch, length, o.n_signal * 2 * d}));
  return out;
}

}  // namespace attnlab
