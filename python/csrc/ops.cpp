// attnlab's fused CPU kernels as PyTorch custom operators (the `attnlab::` namespace of
// torch.ops), so that Python code calls the same kernels the trainer runs, with autograd and
// torch.compile. This file holds the schemas (TORCH_LIBRARY) and the CPU kernels
// (TORCH_LIBRARY_IMPL): each kernel checks its arguments, then calls the existing C++ function
// (modules/, losses/); nothing here is a second copy of a kernel.
//
// Every forward op has a `<name>_backward` op. python/attnlab/_meta.py registers the fake
// (meta) kernels and python/attnlab/_autograd.py ties each forward to its backward with
// torch.library.register_autograd. A backward op recomputes its forward with autograd enabled
// and takes the vector-Jacobian product of the existing functions: their hand-written backward
// kernels (rms_norm, gelu_tanh, prefix attention) run unchanged, at the cost of one extra forward.
// Backward ops have no derivative themselves (no double backward).
//
// Shapes and dtypes (float32 and float64, CPU; the docs page docs/python.md repeats them):
//   rms_norm(x [..., D], weight [D], eps) -> [..., D]
//   gelu_tanh(x [...]) -> [...]
//   attention(q [B, H, T_q, D], k [B, H_kv, T_k, D], v [B, H_kv, T_k, D_v], mask, block_size,
//             scale) -> [B, H, T_q, D_v]                                   (softmax attention)
//   softplus_attention(q, k, v, mask, block_size, reweight, power, free_rows) -> [B, H, T_q, D_v]
//   moh_attention(q, k, v, active [B, T_q, H - shared] bool, shared, mask, block_size, scale)
//             -> [B, H, T_q, D_v]: heads >= shared only on the rows `active` picks, zero elsewhere
//   diff_attention(q_signal [B, S, T_q, D], q_noise [B, N, T_q, D], k1, k2 [B, P, T_k, D],
//                  v [B, P, T_k, D_v], lambda [], mask, block_size, scale) -> [B, S, T_q, D_v]
//   focal_loss(logits, targets, mode, gamma, alpha, ignore_index, label_smoothing,
//              smoothing_mode, reduction) -> loss                           (losses/focal.h)
//   decorrelation_loss(hidden [B, T, C], prefix_length, token_mask [B, T]?) -> scalar
//             (losses/decorrelation.h's bos_decorrelation: one layer, factor 1)
//   segregation_loss(probs [B, H, T_q, T_k], groups, heads, concept_positions,
//                    concept_token_ids, input, key_padding, pair_reduction, retention_weight,
//                    retention_threshold) -> scalar        (losses/segregation.h, one layer)
// Attention masks: "causal", "bidirectional" or "block_causal" (key j visible to query i when
// floor(j / block_size) <= floor(i / block_size)). Keys sit at positions 0..T_k-1 and the T_q
// queries at the last T_q positions (T_k - T_q .. T_k - 1), as in KV-cached decoding; H must be a
// multiple of H_kv (grouped-query attention: each KV head serves H / H_kv query heads).
//
// Bad arguments fail with TORCH_CHECK (RuntimeError in Python) or TORCH_CHECK_VALUE (ValueError)
// naming the op and the argument; an attnlab::UserError from the code below is turned into a
// ValueError, so no C++ exception escapes as anything but a Python exception.
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "losses/decorrelation.h"
#include "losses/focal.h"
#include "losses/segregation.h"
#include "modules/attention.h"
#include "modules/attention/softplus_attention.h"
#include "modules/attention_backend.h"
#include "modules/attention_math.h"
#include "modules/kernels/gelu_tanh.h"
#include "modules/kernels/rms_norm.h"
#include "modules/masks.h"
#include "modules/routed_head_attention.h"

namespace attnlab::python_ops {
namespace {

using torch::Tensor;

// Runs `body`, turning attnlab::UserError (bad user input deep in the library) into a
// c10::ValueError that names the op. c10::Error passes through unchanged.
template <class F>
auto with_user_errors(const char* op, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const UserError& e) {
    TORCH_CHECK_VALUE(false, "attnlab.", op, ": ", e.what());
  }
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK(t.defined(), "attnlab.", op, ": ", arg, " is undefined");
  TORCH_CHECK(t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble, "attnlab.", op,
              ": ", arg, " must be float32 or float64, got ", t.scalar_type());
}

// The vector-Jacobian product of `forward` at `inputs` for the output gradient `grad`: the
// forward runs again with autograd on and the library's own backward computes the gradients.
// differentiable[i] false: input i gets no gradient (a zero tensor of its shape is returned).
std::vector<Tensor> recompute_vjp(const std::function<Tensor(const std::vector<Tensor>&)>& forward,
                                  const std::vector<Tensor>& inputs,
                                  const std::vector<bool>& differentiable, const Tensor& grad) {
  // Backward ops run below the Autograd dispatch keys (the dispatcher excludes them on the way
  // down); put them back so the recomputed forward records a graph, then enable grad mode.
  const auto local = c10::impl::tls_local_dispatch_key_set();
  c10::impl::ForceDispatchKeyGuard keys(
      local.included_, local.excluded_ - c10::autograd_dispatch_keyset_with_ADInplaceOrView);
  torch::AutoGradMode grad_mode(true);
  std::vector<Tensor> leaves;
  std::vector<Tensor> wrt;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor leaf = inputs[i].defined() ? inputs[i].detach() : inputs[i];
    if (differentiable[i]) {
      leaf.requires_grad_(true);
      wrt.push_back(leaf);
    }
    leaves.push_back(leaf);
  }
  Tensor out = forward(leaves);
  std::vector<Tensor> grads;
  if (out.requires_grad()) {
    grads = torch::autograd::grad({out}, wrt, {grad}, /*retain_graph=*/false,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  } else {
    grads.resize(wrt.size());
  }
  std::vector<Tensor> result;
  size_t next = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!differentiable[i]) continue;
    Tensor g = grads[next++];
    result.push_back(g.defined() ? g.contiguous() : torch::zeros_like(inputs[i]));
  }
  return result;
}

// ---- rms_norm ---------------------------------------------------------------------------------

void check_rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_float(x, "rms_norm", "x");
  check_float(weight, "rms_norm", "weight");
  TORCH_CHECK(x.dim() >= 1, "attnlab.rms_norm: x must have at least 1 dim, got a scalar");
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == x.size(-1),
              "attnlab.rms_norm: weight must be [D] with D = x.size(-1) = ", x.size(-1), ", got ",
              weight.sizes());
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), "attnlab.rms_norm: weight dtype ",
              weight.scalar_type(), " differs from x dtype ", x.scalar_type());
  TORCH_CHECK_VALUE(std::isfinite(eps) && eps >= 0.0,
                    "attnlab.rms_norm: eps must be finite and >= 0, got ", eps);
}

Tensor rms_norm_cpu(const Tensor& x, const Tensor& weight, double eps) {
  check_rms_norm(x, weight, eps);
  torch::NoGradGuard no_grad;
  return with_user_errors("rms_norm", [&] { return rms_norm(x, weight, eps).contiguous(); });
}

std::tuple<Tensor, Tensor> rms_norm_backward_cpu(const Tensor& grad, const Tensor& x,
                                                 const Tensor& weight, double eps) {
  check_rms_norm(x, weight, eps);
  auto g = recompute_vjp([&](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1], eps); },
                         {x, weight}, {true, true}, grad);
  return {g[0], g[1]};
}

// ---- gelu_tanh --------------------------------------------------------------------------------

Tensor gelu_tanh_cpu(const Tensor& x) {
  check_float(x, "gelu_tanh", "x");
  torch::NoGradGuard no_grad;
  return gelu_tanh(x).contiguous();
}

Tensor gelu_tanh_backward_cpu(const Tensor& grad, const Tensor& x) {
  check_float(x, "gelu_tanh", "x");
  return recompute_vjp([](const std::vector<Tensor>& in) { return gelu_tanh(in[0]); }, {x}, {true},
                       grad)[0];
}

// ---- attention (softmax and softplus) ---------------------------------------------------------

// The mask of one attention op call and the absolute positions of its queries and keys.
struct AttentionCall {
  MaskSpec spec;
  Tensor query_positions;  // [T_q] int64: T_k - T_q .. T_k - 1
  Tensor key_positions;    // [T_k] int64: 0 .. T_k - 1
  int64_t n_rep = 1;       // query heads per KV head
};

// The argument names in messages are `names` (q, k, v by default; diff_attention's differ).
struct QkvNames {
  const char* q = "q";
  const char* k = "k";
  const char* v = "v";
};

AttentionCall check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                              const std::string& mask, int64_t block_size, QkvNames n = {}) {
  check_float(q, op, n.q);
  check_float(k, op, n.k);
  check_float(v, op, n.v);
  TORCH_CHECK(q.dim() == 4, "attnlab.", op, ": ", n.q, " must be 4-D [B, H, T_q, D], got ",
              q.sizes());
  TORCH_CHECK(k.dim() == 4, "attnlab.", op, ": ", n.k, " must be 4-D [B, H_kv, T_k, D], got ",
              k.sizes());
  TORCH_CHECK(v.dim() == 4, "attnlab.", op, ": ", n.v, " must be 4-D [B, H_kv, T_k, D_v], got ",
              v.sizes());
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(), "attnlab.",
              op, ": ", n.q, ", ", n.k, " and ", n.v, " must share one dtype, got ",
              q.scalar_type(), ", ", k.scalar_type(), ", ", v.scalar_type());
  TORCH_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0), "attnlab.", op, ": ", n.k, " and ",
              n.v, " must have ", n.q, "'s batch size ", q.size(0), ", got ", n.k, " ", k.sizes(),
              ", ", n.v, " ", v.sizes());
  TORCH_CHECK(v.size(1) == k.size(1) && v.size(2) == k.size(2), "attnlab.", op, ": ", n.v,
              " must have ", n.k, "'s heads and length, got ", n.k, " ", k.sizes(), ", ", n.v, " ",
              v.sizes());
  TORCH_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0, "attnlab.", op, ": ", n.k, "'s heads (",
              k.size(1), ") must divide ", n.q, "'s heads (", q.size(1), ")");
  TORCH_CHECK(k.size(3) == q.size(3), "attnlab.", op, ": ", n.k, "'s head dim ", k.size(3),
              " differs from ", n.q, "'s ", q.size(3));
  TORCH_CHECK(q.size(2) <= k.size(2), "attnlab.", op, ": ", n.q, " has ", q.size(2),
              " positions but ", n.k, " only ", k.size(2), " (queries are the last T_q positions)");
  TORCH_CHECK_VALUE(mask == "causal" || mask == "bidirectional" || mask == "block_causal",
                    "attnlab.", op, ": mask must be causal, bidirectional or block_causal, got '",
                    mask, "'");
  TORCH_CHECK_VALUE(mask != "block_causal" || block_size > 0, "attnlab.", op,
                    ": block_size must be > 0 for the block_causal mask, got ", block_size);
  TORCH_CHECK_VALUE(block_size >= 0, "attnlab.", op, ": block_size must be >= 0, got ", block_size);
  AttentionCall call;
  call.spec.kind = parse_mask_kind(mask);
  call.spec.block_size = block_size;
  const int64_t t_q = q.size(2), t_k = k.size(2);
  call.key_positions = torch::arange(t_k, torch::kLong);
  call.query_positions = torch::arange(t_k - t_q, t_k, torch::kLong);
  call.n_rep = q.size(1) / k.size(1);
  return call;
}

double attention_scale(const Tensor& q, std::optional<double> scale, const char* op = "attention") {
  TORCH_CHECK_VALUE(!scale || (std::isfinite(*scale) && *scale > 0.0), "attnlab.", op,
                    ": scale must be finite and > 0, got ", scale.value_or(0.0));
  return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(3)));
}

// softmax(q kᵀ·scale + mask) v through the trainer's kernel selection (select_softmax_kernel with
// model.attention_backend=auto: block-sparse / fused prefix kernels for causal and block-causal
// masks on the CPU, dense masked softmax for bidirectional).
Tensor run_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionCall& call,
                     double scale) {
  AttentionContext context;
  context.mask = call.spec;
  context.positions = call.query_positions;
  context.positions_in_order = true;
  SoftmaxAttentionOptions options;
  options.scale = scale;
  auto result = softmax_attention(AttentionBackend::kAuto, q, repeat_kv(k, call.n_rep),
                                  repeat_kv(v, call.n_rep), call.key_positions, context, options);
  return result.y;
}

Tensor attention_cpu(const Tensor& q, const Tensor& k, const Tensor& v, c10::string_view mask,
                     int64_t block_size, std::optional<double> scale) {
  auto call = check_attention("attention", q, k, v, std::string(mask), block_size);
  const double s = attention_scale(q, scale);
  torch::NoGradGuard no_grad;
  return with_user_errors("attention",
                          [&] { return run_attention(q, k, v, call, s).contiguous(); });
}

std::tuple<Tensor, Tensor, Tensor> attention_backward_cpu(const Tensor& grad, const Tensor& q,
                                                          const Tensor& k, const Tensor& v,
                                                          c10::string_view mask, int64_t block_size,
                                                          std::optional<double> scale) {
  auto call = check_attention("attention", q, k, v, std::string(mask), block_size);
  const double s = attention_scale(q, scale);
  auto g = with_user_errors("attention", [&] {
    return recompute_vjp(
        [&](const std::vector<Tensor>& in) { return run_attention(in[0], in[1], in[2], call, s); },
        {q, k, v}, {true, true, true}, grad);
  });
  return {g[0], g[1], g[2]};
}

// LSSA / LSSAR as the module applies it (SoftplusAttentionImpl::forward without projections,
// RoPE and dropout): weights from softplus_attention_probs over the positional mask, then · v.
Tensor run_softplus_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                              const AttentionCall& call, const SoftplusAttentionOptions& options) {
  auto mask = build_attention_mask(call.spec, call.query_positions, call.key_positions);
  auto probs =
      softplus_attention_probs(q, repeat_kv(k, call.n_rep), mask, call.query_positions, options);
  return torch::matmul(probs.to(q.scalar_type()), repeat_kv(v, call.n_rep));
}

SoftplusAttentionOptions softplus_options(bool reweight, double power, int64_t free_rows) {
  TORCH_CHECK_VALUE(std::isfinite(power) && power >= 1.0,
                    "attnlab.softplus_attention: power must be finite and >= 1, got ", power);
  TORCH_CHECK_VALUE(free_rows >= 0, "attnlab.softplus_attention: free_rows must be >= 0, got ",
                    free_rows);
  SoftplusAttentionOptions options;
  options.reweight = reweight;
  options.power = power;
  options.free_rows = free_rows;
  return options;
}

Tensor softplus_attention_cpu(const Tensor& q, const Tensor& k, const Tensor& v,
                              c10::string_view mask, int64_t block_size, bool reweight,
                              double power, int64_t free_rows) {
  auto call = check_attention("softplus_attention", q, k, v, std::string(mask), block_size);
  auto options = softplus_options(reweight, power, free_rows);
  torch::NoGradGuard no_grad;
  return with_user_errors("softplus_attention", [&] {
    return run_softplus_attention(q, k, v, call, options).contiguous();
  });
}

std::tuple<Tensor, Tensor, Tensor> softplus_attention_backward_cpu(
    const Tensor& grad, const Tensor& q, const Tensor& k, const Tensor& v, c10::string_view mask,
    int64_t block_size, bool reweight, double power, int64_t free_rows) {
  auto call = check_attention("softplus_attention", q, k, v, std::string(mask), block_size);
  auto options = softplus_options(reweight, power, free_rows);
  auto g = with_user_errors("softplus_attention", [&] {
    return recompute_vjp(
        [&](const std::vector<Tensor>& in) {
          return run_softplus_attention(in[0], in[1], in[2], call, options);
        },
        {q, k, v}, {true, true, true}, grad);
  });
  return {g[0], g[1], g[2]};
}

// ---- moh_attention (MoH's shared and routed heads) --------------------------------------------

void check_moh(const Tensor& q, const Tensor& active, int64_t shared) {
  TORCH_CHECK_VALUE(shared >= 0 && shared <= q.size(1), "attnlab.moh_attention: shared_heads must ",
                    "lie in [0, H] with H = q.size(1) = ", q.size(1), ", got ", shared);
  TORCH_CHECK(active.defined() && active.scalar_type() == torch::kBool,
              "attnlab.moh_attention: active must be a bool tensor");
  TORCH_CHECK(active.dim() == 3 && active.size(0) == q.size(0) && active.size(1) == q.size(2) &&
                  active.size(2) == q.size(1) - shared,
              "attnlab.moh_attention: active must be [B, T_q, H - shared_heads] = [", q.size(0),
              ", ", q.size(2), ", ", q.size(1) - shared, "], got ", active.sizes());
}

// shared_and_routed_attention as MoH's forward calls it (modules/routed_head_attention.h): the
// shared heads attend with every row, each routed head only with the rows `active` selects.
Tensor run_moh_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& active,
                         int64_t shared, const AttentionCall& call, double scale) {
  RoutedAttentionOptions options;
  options.scale = scale;
  return shared_and_routed_attention(q, repeat_kv(k, call.n_rep), repeat_kv(v, call.n_rep), shared,
                                     active.contiguous(), call.query_positions, call.key_positions,
                                     call.spec, options);
}

Tensor moh_attention_cpu(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& active,
                         int64_t shared, c10::string_view mask, int64_t block_size,
                         std::optional<double> scale) {
  auto call = check_attention("moh_attention", q, k, v, std::string(mask), block_size);
  check_moh(q, active, shared);
  const double s = attention_scale(q, scale, "moh_attention");
  torch::NoGradGuard no_grad;
  return with_user_errors("moh_attention", [&] {
    return run_moh_attention(q, k, v, active, shared, call, s).contiguous();
  });
}

std::tuple<Tensor, Tensor, Tensor> moh_attention_backward_cpu(
    const Tensor& grad, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& active,
    int64_t shared, c10::string_view mask, int64_t block_size, std::optional<double> scale) {
  auto call = check_attention("moh_attention", q, k, v, std::string(mask), block_size);
  check_moh(q, active, shared);
  const double s = attention_scale(q, scale, "moh_attention");
  auto g = with_user_errors("moh_attention", [&] {
    return recompute_vjp(
        [&](const std::vector<Tensor>& in) {
          return run_moh_attention(in[0], in[1], in[2], active, shared, call, s);
        },
        {q, k, v}, {true, true, true}, grad);
  });
  return {g[0], g[1], g[2]};
}

// ---- diff_attention (DIFF / GDA differential maps) ---------------------------------------------

struct DiffCall {
  AttentionCall signal;  // q_signal against k1 (and v)
  int64_t signal_rep = 1, noise_rep = 1, group = 1;
};

DiffCall check_diff(const Tensor& q_signal, const Tensor& q_noise, const Tensor& k1,
                    const Tensor& k2, const Tensor& v, const Tensor& lambda,
                    const std::string& mask, int64_t block_size) {
  const char* op = "diff_attention";
  DiffCall call;
  call.signal = check_attention(op, q_signal, k1, v, mask, block_size, {"q_signal", "k1", "v"});
  check_attention(op, q_noise, k2, v, mask, block_size, {"q_noise", "k2", "v"});
  TORCH_CHECK(k2.sizes() == k1.sizes(), "attnlab.diff_attention: k2 must have k1's shape ",
              k1.sizes(), ", got ", k2.sizes());
  TORCH_CHECK(q_noise.size(2) == q_signal.size(2),
              "attnlab.diff_attention: q_noise must have q_signal's length ", q_signal.size(2),
              ", got ", q_noise.sizes());
  TORCH_CHECK(q_signal.size(1) % q_noise.size(1) == 0, "attnlab.diff_attention: q_noise's heads (",
              q_noise.size(1), ") must divide q_signal's heads (", q_signal.size(1), ")");
  check_float(lambda, op, "lambda");
  TORCH_CHECK(lambda.dim() == 0, "attnlab.diff_attention: lambda must be a 0-dim tensor, got ",
              lambda.sizes());
  TORCH_CHECK(lambda.scalar_type() == q_signal.scalar_type(), "attnlab.diff_attention: lambda ",
              "dtype ", lambda.scalar_type(), " differs from q_signal's ", q_signal.scalar_type());
  call.signal_rep = q_signal.size(1) / k1.size(1);
  call.noise_rep = q_noise.size(1) / k1.size(1);
  call.group = q_signal.size(1) / q_noise.size(1);
  return call;
}

// DiffAttentionImpl::forward's core without projections, RoPE and subln (modules/attention/
// diff.cpp): (softmax(q_s k1ᵀ) − λ·softmax(q_n k2ᵀ) repeated over each noise head's signal
// heads) · v, with the GQA rule of the module (signal head i and noise head j use kv pair
// i / (S / P) and j / (N / P)).
Tensor run_diff_attention(const Tensor& q_signal, const Tensor& q_noise, const Tensor& k1,
                          const Tensor& k2, const Tensor& v, const Tensor& lambda,
                          const DiffCall& call, double scale) {
  const auto& c = call.signal;
  auto mask = build_attention_mask(c.spec, c.query_positions, c.key_positions);
  auto a1 = masked_softmax_probs(q_signal, repeat_kv(k1, call.signal_rep), mask, scale);
  auto a2 = masked_softmax_probs(q_noise, repeat_kv(k2, call.noise_rep), mask, scale);
  auto diff_map = a1 - lambda.to(a1.scalar_type()) * repeat_kv(a2, call.group);
  return torch::matmul(diff_map.to(v.scalar_type()), repeat_kv(v, call.signal_rep));
}

Tensor diff_attention_cpu(const Tensor& q_signal, const Tensor& q_noise, const Tensor& k1,
                          const Tensor& k2, const Tensor& v, const Tensor& lambda,
                          c10::string_view mask, int64_t block_size, std::optional<double> scale) {
  auto call = check_diff(q_signal, q_noise, k1, k2, v, lambda, std::string(mask), block_size);
  const double s = attention_scale(q_signal, scale, "diff_attention");
  torch::NoGradGuard no_grad;
  return with_user_errors("diff_attention", [&] {
    return run_diff_attention(q_signal, q_noise, k1, k2, v, lambda, call, s).contiguous();
  });
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> diff_attention_backward_cpu(
    const Tensor& grad, const Tensor& q_signal, const Tensor& q_noise, const Tensor& k1,
    const Tensor& k2, const Tensor& v, const Tensor& lambda, c10::string_view mask,
    int64_t block_size, std::optional<double> scale) {
  auto call = check_diff(q_signal, q_noise, k1, k2, v, lambda, std::string(mask), block_size);
  const double s = attention_scale(q_signal, scale, "diff_attention");
  auto g = with_user_errors("diff_attention", [&] {
    return recompute_vjp(
        [&](const std::vector<Tensor>& in) {
          return run_diff_attention(in[0], in[1], in[2], in[3], in[4], in[5], call, s);
        },
        {q_signal, q_noise, k1, k2, v, lambda}, {true, true, true, true, true, true}, grad);
  });
  return {g[0], g[1], g[2], g[3], g[4], g[5]};
}

// ---- focal_loss -------------------------------------------------------------------------------

FocalOptions focal_options(const Tensor& logits, const Tensor& targets, c10::string_view mode,
                           double gamma, const std::optional<Tensor>& alpha, int64_t ignore_index,
                           double label_smoothing, c10::string_view smoothing_mode,
                           c10::string_view reduction) {
  check_float(logits, "focal_loss", "logits");
  TORCH_CHECK(targets.defined(), "attnlab.focal_loss: targets is undefined");
  TORCH_CHECK(logits.dim() >= 1, "attnlab.focal_loss: logits must have at least 1 dim");
  FocalOptions o;
  TORCH_CHECK_VALUE(mode == "softmax" || mode == "sigmoid",
                    "attnlab.focal_loss: mode must be softmax or sigmoid, got '", mode, "'");
  o.mode = mode == "softmax" ? FocalMode::kSoftmax : FocalMode::kSigmoid;
  if (o.mode == FocalMode::kSoftmax) {
    TORCH_CHECK(targets.scalar_type() == torch::kLong,
                "attnlab.focal_loss: targets must be int64 "
                "class indices in softmax mode, got ",
                targets.scalar_type());
    TORCH_CHECK(targets.sizes() == logits.sizes().slice(0, logits.dim() - 1),
                "attnlab.focal_loss: targets ", targets.sizes(), " must be logits ", logits.sizes(),
                " without the class dim");
  } else {
    const bool same = targets.sizes() == logits.sizes();
    const bool index = targets.scalar_type() == torch::kLong &&
                       targets.sizes() == logits.sizes().slice(0, logits.dim() - 1);
    TORCH_CHECK(same || index, "attnlab.focal_loss: targets ", targets.sizes(),
                " must match logits ", logits.sizes(),
                " (0/1 or soft) or be int64 class indices without the class dim");
  }
  TORCH_CHECK_VALUE(std::isfinite(gamma) && gamma >= 0.0,
                    "attnlab.focal_loss: gamma must be finite and >= 0, got ", gamma);
  TORCH_CHECK_VALUE(label_smoothing >= 0.0 && label_smoothing <= 1.0,
                    "attnlab.focal_loss: label_smoothing must lie in [0, 1], got ",
                    label_smoothing);
  TORCH_CHECK_VALUE(smoothing_mode == "pt" || smoothing_mode == "soft",
                    "attnlab.focal_loss: smoothing_mode must be pt or soft, got '", smoothing_mode,
                    "'");
  o.smoothing = smoothing_mode == "pt" ? FocalSmoothing::kPt : FocalSmoothing::kSoft;
  if (reduction == "none") {
    o.reduction = FocalReduction::kNone;
  } else if (reduction == "sum") {
    o.reduction = FocalReduction::kSum;
  } else if (reduction == "mean") {
    o.reduction = FocalReduction::kMean;
  } else if (reduction == "weighted_mean") {
    o.reduction = FocalReduction::kWeightedMean;
  } else {
    TORCH_CHECK_VALUE(false, "attnlab.focal_loss: reduction must be none, sum, mean or ",
                      "weighted_mean, got '", reduction, "'");
  }
  if (alpha && alpha->defined()) {
    check_float(*alpha, "focal_loss", "alpha");
    TORCH_CHECK(alpha->dim() == 0 || (alpha->dim() == 1 && alpha->size(0) == logits.size(-1)),
                "attnlab.focal_loss: alpha must be a scalar or [C] with C = logits.size(-1) = ",
                logits.size(-1), ", got ", alpha->sizes());
    o.alpha = alpha->detach();
  }
  o.gamma = gamma;
  o.ignore_index = ignore_index;
  o.label_smoothing = label_smoothing;
  return o;
}

Tensor focal_loss_cpu(const Tensor& logits, const Tensor& targets, c10::string_view mode,
                      double gamma, const std::optional<Tensor>& alpha, int64_t ignore_index,
                      double label_smoothing, c10::string_view smoothing_mode,
                      c10::string_view reduction) {
  auto o = focal_options(logits, targets, mode, gamma, alpha, ignore_index, label_smoothing,
                         smoothing_mode, reduction);
  torch::NoGradGuard no_grad;
  return with_user_errors("focal_loss", [&] {
    return focal_loss(logits, targets, o).to(logits.scalar_type()).contiguous();
  });
}

Tensor focal_loss_backward_cpu(const Tensor& grad, const Tensor& logits, const Tensor& targets,
                               c10::string_view mode, double gamma,
                               const std::optional<Tensor>& alpha, int64_t ignore_index,
                               double label_smoothing, c10::string_view smoothing_mode,
                               c10::string_view reduction) {
  auto o = focal_options(logits, targets, mode, gamma, alpha, ignore_index, label_smoothing,
                         smoothing_mode, reduction);
  return with_user_errors("focal_loss", [&] {
    return recompute_vjp(
        [&](const std::vector<Tensor>& in) {
          return focal_loss(in[0], targets, o).to(logits.scalar_type());
        },
        {logits}, {true}, grad)[0];
  });
}

// ---- decorrelation_loss ----------------------------------------------------------------------

void check_decorrelation(const Tensor& hidden, int64_t prefix_length,
                         const std::optional<Tensor>& token_mask) {
  check_float(hidden, "decorrelation_loss", "hidden");
  TORCH_CHECK(hidden.dim() == 3, "attnlab.decorrelation_loss: hidden must be [B, T, C], got ",
              hidden.sizes());
  TORCH_CHECK(hidden.size(1) >= 2,
              "attnlab.decorrelation_loss: hidden needs BOS and at least one more token, got T = ",
              hidden.size(1));
  TORCH_CHECK_VALUE(prefix_length == -1 || (prefix_length >= 1 && prefix_length < hidden.size(1)),
                    "attnlab.decorrelation_loss: prefix_length must be -1 (every token after BOS) ",
                    "or in [1, T - 1 = ", hidden.size(1) - 1, "], got ", prefix_length);
  if (token_mask && token_mask->defined())
    TORCH_CHECK(token_mask->scalar_type() == torch::kBool && token_mask->dim() == 2 &&
                    token_mask->size(0) == hidden.size(0) && token_mask->size(1) == hidden.size(1),
                "attnlab.decorrelation_loss: token_mask must be bool [B, T] = [", hidden.size(0),
                ", ", hidden.size(1), "], got ", token_mask->scalar_type(), " ",
                token_mask->sizes());
}

Tensor run_decorrelation(const Tensor& hidden, int64_t prefix_length,
                         const std::optional<Tensor>& token_mask) {
  return bos_decorrelation(hidden, prefix_length, token_mask ? *token_mask : Tensor())
      .to(hidden.scalar_type());
}

Tensor decorrelation_loss_cpu(const Tensor& hidden, int64_t prefix_length,
                              const std::optional<Tensor>& token_mask) {
  check_decorrelation(hidden, prefix_length, token_mask);
  torch::NoGradGuard no_grad;
  return with_user_errors("decorrelation_loss",
                          [&] { return run_decorrelation(hidden, prefix_length, token_mask); });
}

Tensor decorrelation_loss_backward_cpu(const Tensor& grad, const Tensor& hidden,
                                       int64_t prefix_length,
                                       const std::optional<Tensor>& token_mask) {
  check_decorrelation(hidden, prefix_length, token_mask);
  return with_user_errors("decorrelation_loss", [&] {
    return recompute_vjp(
        [&](const std::vector<Tensor>& in) {
          return run_decorrelation(in[0], prefix_length, token_mask);
        },
        {hidden}, {true}, grad)[0];
  });
}

// ---- segregation_loss -------------------------------------------------------------------------

// The `segregation` loss term (losses/segregation.h) on one layer's attention probabilities,
// run through SegregationTerm::compute itself; retention against the current (detached) maps.
struct SegregationCall {
  std::unique_ptr<SegregationTerm> term;
  Batch batch;
};

SegregationCall segregation_call(const Tensor& probs, c10::string_view groups,
                                 at::OptionalIntArrayRef heads,
                                 at::OptionalIntArrayRef concept_positions,
                                 at::OptionalIntArrayRef concept_token_ids,
                                 const std::optional<Tensor>& input,
                                 const std::optional<Tensor>& key_padding,
                                 std::optional<c10::string_view> pair_reduction,
                                 double retention_weight, double retention_threshold) {
  const char* op = "segregation_loss";
  check_float(probs, op, "probs");
  TORCH_CHECK(probs.dim() == 4, "attnlab.segregation_loss: probs must be [B, H, T_q, T_k], got ",
              probs.sizes());
  TORCH_CHECK_VALUE(groups == "heads" || groups == "tokens",
                    "attnlab.segregation_loss: groups must be heads or tokens, got '", groups, "'");
  TORCH_CHECK_VALUE(!pair_reduction || *pair_reduction == "mean" || *pair_reduction == "sum",
                    "attnlab.segregation_loss: pair_reduction must be mean or sum, got '",
                    pair_reduction.value_or(""), "'");
  TORCH_CHECK_VALUE(std::isfinite(retention_weight) && retention_weight >= 0.0,
                    "attnlab.segregation_loss: retention_weight must be finite and >= 0, got ",
                    retention_weight);
  TORCH_CHECK_VALUE(retention_threshold >= 0.0 && retention_threshold <= 1.0,
                    "attnlab.segregation_loss: retention_threshold must lie in [0, 1], got ",
                    retention_threshold);
  SegregationCall call;
  if (input && input->defined()) {
    TORCH_CHECK(input->dim() == 2 && input->size(0) == probs.size(0) &&
                    input->size(1) == probs.size(3) && !input->is_floating_point(),
                "attnlab.segregation_loss: input must be integer token ids [B, T_k] = [",
                probs.size(0), ", ", probs.size(3), "], got ", input->scalar_type(), " ",
                input->sizes());
    call.batch.input = *input;
  }
  if (key_padding && key_padding->defined()) {
    TORCH_CHECK(key_padding->scalar_type() == torch::kBool && key_padding->dim() == 2 &&
                    key_padding->size(0) == probs.size(0),
                "attnlab.segregation_loss: key_padding must be bool [B, T], got ",
                key_padding->scalar_type(), " ", key_padding->sizes());
    call.batch.key_padding = *key_padding;
  }
  TORCH_CHECK(!concept_token_ids || call.batch.input.defined(),
              "attnlab.segregation_loss: concept_token_ids needs input (the token ids)");
  SegregationTermOptions options;
  options.groups(std::string(groups));
  options.layers(std::vector<int64_t>{0});
  if (heads) options.heads(heads->vec());
  if (concept_positions) options.concept_positions(concept_positions->vec());
  if (concept_token_ids) options.concept_token_ids(concept_token_ids->vec());
  if (pair_reduction) options.pair_reduction(std::string(*pair_reduction));
  options.retention_weight(retention_weight);
  options.retention_threshold(retention_threshold);
  options.retention_reference("current");
  LossTermContext context;
  context.where = "attnlab.segregation_loss";
  context.n_layers = 1;
  call.term = std::make_unique<SegregationTerm>(options, context);
  return call;
}

Tensor run_segregation(const SegregationCall& call, const Tensor& probs) {
  ModelOutput output;
  output.probs[0] = probs;
  std::map<std::string, Tensor> stats;
  return call.term->compute(output, call.batch, stats).to(probs.scalar_type());
}

Tensor segregation_loss_cpu(const Tensor& probs, c10::string_view groups,
                            at::OptionalIntArrayRef heads,
                            at::OptionalIntArrayRef concept_positions,
                            at::OptionalIntArrayRef concept_token_ids,
                            const std::optional<Tensor>& input,
                            const std::optional<Tensor>& key_padding,
                            std::optional<c10::string_view> pair_reduction, double retention_weight,
                            double retention_threshold) {
  return with_user_errors("segregation_loss", [&] {
    auto call =
        segregation_call(probs, groups, heads, concept_positions, concept_token_ids, input,
                         key_padding, pair_reduction, retention_weight, retention_threshold);
    torch::NoGradGuard no_grad;
    return run_segregation(call, probs);
  });
}

Tensor segregation_loss_backward_cpu(const Tensor& grad, const Tensor& probs,
                                     c10::string_view groups, at::OptionalIntArrayRef heads,
                                     at::OptionalIntArrayRef concept_positions,
                                     at::OptionalIntArrayRef concept_token_ids,
                                     const std::optional<Tensor>& input,
                                     const std::optional<Tensor>& key_padding,
                                     std::optional<c10::string_view> pair_reduction,
                                     double retention_weight, double retention_threshold) {
  return with_user_errors("segregation_loss", [&] {
    auto call =
        segregation_call(probs, groups, heads, concept_positions, concept_token_ids, input,
                         key_padding, pair_reduction, retention_weight, retention_threshold);
    return recompute_vjp(
        [&](const std::vector<Tensor>& in) { return run_segregation(call, in[0]); }, {probs},
        {true}, grad)[0];
  });
}

}  // namespace
}  // namespace attnlab::python_ops

// Schemas. Defaults follow the YAML keys (configs/attention/*.yaml, configs/loss/focal.yaml).
TORCH_LIBRARY(attnlab, m) {
  m.def("rms_norm(Tensor x, Tensor weight, float eps=1e-05) -> Tensor");
  m.def("rms_norm_backward(Tensor grad, Tensor x, Tensor weight, float eps) -> (Tensor, Tensor)");
  m.def("gelu_tanh(Tensor x) -> Tensor");
  m.def("gelu_tanh_backward(Tensor grad, Tensor x) -> Tensor");
  m.def(
      "attention(Tensor q, Tensor k, Tensor v, str mask=\"causal\", int block_size=0, "
      "float? scale=None) -> Tensor");
  m.def(
      "attention_backward(Tensor grad, Tensor q, Tensor k, Tensor v, str mask, int block_size, "
      "float? scale) -> (Tensor, Tensor, Tensor)");
  m.def(
      "softplus_attention(Tensor q, Tensor k, Tensor v, str mask=\"causal\", int block_size=0, "
      "bool reweight=False, float power=15.0, int free_rows=3) -> Tensor");
  m.def(
      "softplus_attention_backward(Tensor grad, Tensor q, Tensor k, Tensor v, str mask, "
      "int block_size, bool reweight, float power, int free_rows) -> (Tensor, Tensor, Tensor)");
  m.def(
      "moh_attention(Tensor q, Tensor k, Tensor v, Tensor active, int shared_heads, "
      "str mask=\"causal\", int block_size=0, float? scale=None) -> Tensor");
  m.def(
      "moh_attention_backward(Tensor grad, Tensor q, Tensor k, Tensor v, Tensor active, "
      "int shared_heads, str mask, int block_size, float? scale) -> (Tensor, Tensor, Tensor)");
  m.def(
      "diff_attention(Tensor q_signal, Tensor q_noise, Tensor k1, Tensor k2, Tensor v, "
      "Tensor lambda_full, str mask=\"causal\", int block_size=0, float? scale=None) -> Tensor");
  m.def(
      "diff_attention_backward(Tensor grad, Tensor q_signal, Tensor q_noise, Tensor k1, "
      "Tensor k2, Tensor v, Tensor lambda_full, str mask, int block_size, float? scale) -> "
      "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "focal_loss(Tensor logits, Tensor targets, str mode=\"softmax\", float gamma=2.0, "
      "Tensor? alpha=None, int ignore_index=-100, float label_smoothing=0.0, "
      "str smoothing_mode=\"pt\", str reduction=\"mean\") -> Tensor");
  m.def(
      "focal_loss_backward(Tensor grad, Tensor logits, Tensor targets, str mode, float gamma, "
      "Tensor? alpha, int ignore_index, float label_smoothing, str smoothing_mode, "
      "str reduction) -> Tensor");
  m.def(
      "decorrelation_loss(Tensor hidden, int prefix_length=-1, Tensor? token_mask=None) -> Tensor");
  m.def(
      "decorrelation_loss_backward(Tensor grad, Tensor hidden, int prefix_length, "
      "Tensor? token_mask) -> Tensor");
  m.def(
      "segregation_loss(Tensor probs, str groups=\"heads\", int[]? heads=None, "
      "int[]? concept_positions=None, int[]? concept_token_ids=None, Tensor? input=None, "
      "Tensor? key_padding=None, str? pair_reduction=None, float retention_weight=0.0, "
      "float retention_threshold=0.5) -> Tensor");
  m.def(
      "segregation_loss_backward(Tensor grad, Tensor probs, str groups, int[]? heads, "
      "int[]? concept_positions, int[]? concept_token_ids, Tensor? input, Tensor? key_padding, "
      "str? pair_reduction, float retention_weight, float retention_threshold) -> Tensor");
}

TORCH_LIBRARY_IMPL(attnlab, CPU, m) {
  using namespace attnlab::python_ops;
  m.impl("rms_norm", &rms_norm_cpu);
  m.impl("rms_norm_backward", &rms_norm_backward_cpu);
  m.impl("gelu_tanh", &gelu_tanh_cpu);
  m.impl("gelu_tanh_backward", &gelu_tanh_backward_cpu);
  m.impl("attention", &attention_cpu);
  m.impl("attention_backward", &attention_backward_cpu);
  m.impl("softplus_attention", &softplus_attention_cpu);
  m.impl("softplus_attention_backward", &softplus_attention_backward_cpu);
  m.impl("moh_attention", &moh_attention_cpu);
  m.impl("moh_attention_backward", &moh_attention_backward_cpu);
  m.impl("diff_attention", &diff_attention_cpu);
  m.impl("diff_attention_backward", &diff_attention_backward_cpu);
  m.impl("decorrelation_loss", &decorrelation_loss_cpu);
  m.impl("decorrelation_loss_backward", &decorrelation_loss_backward_cpu);
  m.impl("segregation_loss", &segregation_loss_cpu);
  m.impl("segregation_loss_backward", &segregation_loss_backward_cpu);
  m.impl("focal_loss", &focal_loss_cpu);
  m.impl("focal_loss_backward", &focal_loss_backward_cpu);
}
