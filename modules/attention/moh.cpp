// Mixture-of-Head attention; see moh.h and docs/methods.md §1.
#include "modules/attention/moh.h"

#include <limits>

#include "common/error.h"
#include "modules/attention_backend.h"
#include "modules/attention_math.h"
#include "modules/rope.h"
#include "modules/routed_head_attention.h"
#include "modules/weight_conversion.h"

namespace attnlab {

namespace {

// Layer `layer`'s value of a per-layer option (one value: every layer's), or `fallback` (null).
int64_t per_layer_value(const std::optional<std::vector<int64_t>>& values, const std::string& key,
                        int64_t layer, int64_t fallback) {
  if (!values) return fallback;
  if (values->size() == 1) return values->front();
  check_user(layer < static_cast<int64_t>(values->size()),
             "attention." + key + " lists " + std::to_string(values->size()) +
                 " layers but layer " + std::to_string(layer) + " exists (model.n_layers)");
  return (*values)[layer];
}

// torch.finfo(dtype).eps, the official clamp of the routed-gate denominator.
double dtype_epsilon(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kDouble:
      return std::numeric_limits<double>::epsilon();
    case torch::kHalf:
      return 0.0009765625;  // 2^-10
    case torch::kBFloat16:
      return 0.0078125;  // 2^-7
    default:
      return std::numeric_limits<float>::epsilon();
  }
}

void init_router(torch::nn::Linear& router, const std::string& scheme) {
  torch::NoGradGuard no_grad;
  if (scheme == "xavier_uniform") {
    torch::nn::init::xavier_uniform_(router->weight);
  } else {
    // timm trunc_normal_(std=.02) truncates at ±2 (absolute), i.e. at 100 std: a plain normal.
    router->weight.normal_(0.0, 0.02).clamp_(-2.0, 2.0);
  }
}

}  // namespace

MohOptions moh_options_from(const AttentionOptions& options) {
  MohOptions o;
  o.d_model = options.d_model;
  o.n_heads = options.n_heads;
  check_user(o.n_heads > 0 && o.d_model % o.n_heads == 0,
             "model.d_model (" + std::to_string(o.d_model) +
                 ") must be divisible by model.n_heads (" + std::to_string(o.n_heads) + ")");
  check_user(options.n_kv_heads == 0 || options.n_kv_heads == o.n_heads,
             "attention=moh has no grouped KV heads: model.n_kv_heads must equal model.n_heads");
  o.head_dim = o.d_model / o.n_heads;
  const auto own = module_options<MohModuleOptions>(options);
  const int64_t layer = options.layer_index;
  // Defaults: MoH-LLaMA3's h_s = int(0.5 h), K = int(0.25 h) (75% of heads active per token).
  o.shared_heads = per_layer_value(own.shared_heads(), "shared_heads", layer, o.n_heads / 2);
  o.routed_k = per_layer_value(own.routed_k(), "routed_k", layer, o.n_heads / 4);
  o.router = own.router();
  o.router_init = own.router_init();
  o.balance_coef = own.balance_coef();
  o.qkv_bias = own.qkv_bias();
  o.proj_bias = own.proj_bias();
  o.rope = own.rope() && options.rotary_positions;
  o.sparse_compute = own.sparse_compute();
  o.rope_theta = options.rope_theta;
  o.rope_scaling = options.rope_scaling;
  o.backend = options.backend;
  o.dropout = options.dropout;
  return o;
}

MohAttentionImpl::MohAttentionImpl(const AttentionOptions& options)
    : MohAttentionImpl(moh_options_from(options)) {}

MohAttentionImpl::MohAttentionImpl(const MohOptions& options) : options_(options) {
  const auto& o = options_;
  const int64_t routed = o.n_heads - o.shared_heads;
  const std::string where = " (layer's shared_heads=" + std::to_string(o.shared_heads) +
                            ", routed_k=" + std::to_string(o.routed_k) +
                            ", n_heads=" + std::to_string(o.n_heads) + ")";
  check_user(o.shared_heads >= 0 && o.shared_heads <= o.n_heads,
             "attention.shared_heads must be in [0, model.n_heads]" + where);
  check_user(o.routed_k >= 0 && o.routed_k <= routed,
             "attention.routed_k must be in [0, n_heads - shared_heads]" + where);
  check_user(o.shared_heads > 0 || o.routed_k > 0,
             "attention=moh needs shared heads or routed_k > 0 (no head would be active)" + where);
  check_user(o.router == "learned" || o.router == "qnorm",
             "attention.router: expected learned or qnorm, got '" + o.router + "'");
  check_user(o.router_init == "xavier_uniform" || o.router_init == "trunc_normal",
             "attention.router_init: expected xavier_uniform or trunc_normal, got '" +
                 o.router_init + "'");
  check_user(
      o.router != "qnorm" || o.routed_k == 0 || routed >= 2,
      "attention.router=qnorm needs at least 2 routed heads (it divides by their std)" + where);
  const int64_t inner = o.n_heads * o.head_dim;
  qkv = register_module(
      "qkv", torch::nn::Linear(torch::nn::LinearOptions(o.d_model, 3 * inner).bias(o.qkv_bias)));
  proj = register_module(
      "proj", torch::nn::Linear(torch::nn::LinearOptions(inner, o.d_model).bias(o.proj_bias)));
  if (o.router != "learned") return;
  auto router = [&](const std::string& name, int64_t out) {
    auto linear = torch::nn::Linear(torch::nn::LinearOptions(o.d_model, out).bias(false));
    init_router(linear, o.router_init);
    return register_module(name, linear);
  };
  // Same conditions as MoH-DiT: wg/wg_0 exist with routed heads, wg_1 with h_s > 1 (h_s = 1 uses
  // a constant gate of 1, the ViT branch).
  if (o.routed_k > 0) {
    wg = router("wg", routed);
    if (o.shared_heads > 0) wg_0 = router("wg_0", 2);
  }
  if (o.shared_heads > 1) wg_1 = router("wg_1", o.shared_heads);
}

void MohAttentionImpl::reset_parameters(const ParameterInit& /*init*/) {
  // See moh.h: MoH keeps its constructor init (LibTorch defaults for qkv/proj, routers by
  // attention.router_init) on purpose.
}

MohAttentionImpl::Gates MohAttentionImpl::route(const torch::Tensor& x, const torch::Tensor& q) {
  const auto& o = options_;
  const int64_t batch = x.size(0), length = x.size(1), hs = o.shared_heads;
  const int64_t routed = o.n_heads - hs;
  Gates out;
  auto ones = [&](int64_t n) { return torch::ones({batch, length, n}, x.options()); };
  torch::Tensor shared;
  if (hs > 0) {
    shared = (o.router == "learned" && hs > 1)
                 ? torch::softmax(wg_1(x), -1) * static_cast<double>(hs)
                 : ones(hs);
  }
  if (o.routed_k == 0) {
    // Routed heads left over with K = 0 are never selected (official code: only h_s == h).
    out.gates = routed > 0
                    ? torch::cat({shared, torch::zeros({batch, length, routed}, x.options())}, -1)
                    : shared;
    return out;
  }
  // Router probabilities over the routed heads: learned (W_r x) or the query-norm score.
  torch::Tensor probs;
  if (o.router == "learned") {
    probs = torch::softmax(wg(x), -1);
  } else {
    auto norms = q.narrow(1, hs, routed).norm(2, -1).transpose(1, 2);  // [B, T, E]
    probs = torch::softmax(norms / norms.std(-1, /*unbiased=*/true, /*keepdim=*/true), -1);
  }
  auto indices = std::get<1>(probs.topk(o.routed_k, -1));
  auto selected = torch::zeros_like(probs).scatter(-1, indices, 1.0);  // 0/1, [B, T, E]
  out.active = selected.to(torch::kBool);
  torch::Tensor routed_gates;
  if (o.router == "learned") {
    if (is_training()) {
      // l_aux = E² · mean_i(P_i f_i) over all B·T tokens, on the probabilities before masking.
      auto p = probs.reshape({-1, routed}).mean(0);
      auto f = selected.reshape({-1, routed}).mean(0);
      out.balance = (p * f).mean() * static_cast<double>(routed * routed);
    }
    auto kept = probs * selected;
    auto denom = kept.sum(-1, true).clamp_min(dtype_epsilon(kept.scalar_type()));
    routed_gates = kept / denom * static_cast<double>(o.routed_k);
  } else {
    // Binary gates; in training the straight-through estimator passes dL/dg to the softmax.
    routed_gates = is_training() ? selected + (probs - probs.detach()) : selected;
  }
  if (hs == 0) {
    out.gates = routed_gates;
  } else if (o.router == "learned") {
    auto mix = torch::softmax(wg_0(x), -1) * 2.0;  // [B, T, 2]
    out.gates =
        torch::cat({mix.narrow(-1, 0, 1) * shared, mix.narrow(-1, 1, 1) * routed_gates}, -1);
  } else {
    out.gates = torch::cat({shared, routed_gates}, -1);
  }
  return out;
}

torch::Tensor MohAttentionImpl::attend_all_rows(const torch::Tensor& q, const torch::Tensor& k,
                                                const torch::Tensor& v,
                                                const torch::Tensor& key_positions,
                                                const AttentionContext& context,
                                                AttentionOutput& out) const {
  const double scale = 1.0 / std::sqrt(static_cast<double>(options_.head_dim));
  auto attended = softmax_attention(options_.backend, q, k, v, key_positions, context,
                                    {scale, options_.dropout, is_training()});
  if (context.need_probs) out.probs = attended.probs;
  return attended.y;
}

AttentionOutput MohAttentionImpl::forward(const torch::Tensor& x, const AttentionContext& context) {
  const auto& o = options_;
  const int64_t batch = x.size(0), length = x.size(1), hs = o.shared_heads;
  const int64_t routed = o.n_heads - hs;
  auto qkv_heads = qkv(x).view({batch, length, 3, o.n_heads, o.head_dim}).permute({2, 0, 3, 1, 4});
  auto q = qkv_heads[0], k = qkv_heads[1], v = qkv_heads[2];  // [B, h, T, D]
  Gates gates = route(x, q);  // the qnorm router scores queries before RoPE
  if (o.rope) {
    q = apply_rope(q, context.positions, o.rope_theta, RopeStyle::kRotateHalf, o.rope_scaling);
    k = apply_rope(k, context.positions, o.rope_theta, RopeStyle::kRotateHalf, o.rope_scaling);
  }
  AttentionKeys keys = keys_with_cache(k, v, context.positions, context);
  const double scale = 1.0 / std::sqrt(static_cast<double>(o.head_dim));

  AttentionOutput out;
  // Skipping a routed head's inactive rows is exact whenever unselected heads have gate 0 with no
  // gradient through it; the STE (qnorm, training) needs every head's output for dL/dg. Which
  // kernel runs (and whether rows are skipped at all on this backend, mask and device) is
  // select_routed_kernel's decision.
  RoutedKernelRequest request;
  request.rows_skippable = o.sparse_compute && o.routed_k > 0 && o.routed_k < routed &&
                           !(o.router == "qnorm" && is_training());
  request.dropout = o.dropout;
  request.training = is_training();
  const RoutedKernelChoice choice =
      select_routed_kernel(o.backend, q, keys.v.size(3), context.positions, keys.positions,
                           context.mask, context.need_probs, request);
  torch::Tensor heads;
  if (choice.kernel != RoutedKernel::kAllRows) {
    RoutedAttentionOptions routed_options;
    routed_options.scale = scale;
    routed_options.dropout = o.dropout;
    routed_options.training = is_training();
    routed_options.backend = o.backend;
    heads = shared_and_routed_attention(q, keys.k, keys.v, hs, gates.active, context.positions,
                                        keys.positions, context.mask, routed_options, choice);
  } else {
    heads = attend_all_rows(q, keys.k, keys.v, keys.positions, context, out);
  }
  heads = heads * gates.gates.transpose(1, 2).unsqueeze(-1).to(heads.scalar_type());
  out.y = proj(heads.transpose(1, 2).reshape({batch, length, o.n_heads * o.head_dim}));
  if (gates.balance.defined()) out.aux_losses["moh_balance"] = gates.balance * o.balance_coef;
  // Head utilisation: fraction of tokens for which each head is active (shared heads: 1).
  torch::NoGradGuard no_grad;
  auto utilisation = torch::ones({o.n_heads}, x.options());
  if (gates.active.defined())
    utilisation.narrow(0, hs, routed)
        .copy_(gates.active.reshape({-1, routed}).to(x.dtype()).mean(0));
  else if (hs < o.n_heads)
    utilisation.narrow(0, hs, routed).zero_();
  out.stats["head_util"] = utilisation;
  return out;
}

std::map<std::string, torch::Tensor> convert_mha_to_moh(
    const std::map<std::string, torch::Tensor>& mha_state,
    const std::map<std::string, torch::Tensor>& target_state, bool zero_routers, int64_t head_dim) {
  auto source = [&](const std::string& key) -> const torch::Tensor& {
    auto it = mha_state.find(key);
    check_user(it != mha_state.end(), "MHA -> MoH conversion: the source checkpoint has no '" +
                                          key + "' (is it an attention=mha checkpoint?)");
    return it->second;
  };
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  std::map<std::string, torch::Tensor> out;
  for (const auto& [key, target] : target_state) {
    torch::NoGradGuard no_grad;
    torch::Tensor value;
    if (ends_with(key, "qkv.weight") || ends_with(key, "qkv.bias")) {
      const std::string prefix = key.substr(0, key.rfind("qkv."));
      const std::string kind = ends_with(key, "weight") ? "weight" : "bias";
      auto q = source(prefix + "q_proj." + kind), k = source(prefix + "k_proj." + kind),
           v = source(prefix + "v_proj." + kind);
      if (k.size(0) != q.size(0)) {
        // Grouped KV heads (GQA, e.g. an imported Llama): MoH has a key and value per head, so
        // each KV head is repeated for the query heads that share it (query head h reads KV head
        // h / n_rep, as repeat_kv does): the same attention function with full-width k and v.
        check_user(head_dim > 0 && k.size(0) % head_dim == 0 && q.size(0) % k.size(0) == 0,
                   "MHA -> MoH conversion: '" + prefix + "k_proj' has " +
                       std::to_string(k.size(0)) + " rows and q_proj " + std::to_string(q.size(0)) +
                       ": grouped KV heads need whole heads");
        const int64_t n_rep = q.size(0) / k.size(0);
        auto expand = [&](const torch::Tensor& t) {
          std::vector<int64_t> heads = {t.size(0) / head_dim, head_dim};
          for (int64_t d = 1; d < t.dim(); ++d) heads.push_back(t.size(d));
          std::vector<int64_t> flat = t.sizes().vec();
          flat[0] *= n_rep;
          return t.reshape(heads).repeat_interleave(n_rep, 0).reshape(flat);
        };
        k = expand(k);
        v = expand(v);
      }
      value = torch::cat({q, k, v}, 0);
    } else if (ends_with(key, "proj.weight") && !ends_with(key, "_proj.weight")) {
      value =
          source(key.substr(0, key.size() - std::string("proj.weight").size()) + "out_proj.weight");
    } else if (ends_with(key, "proj.bias") && !ends_with(key, "_proj.bias")) {
      auto it = mha_state.find(key.substr(0, key.size() - std::string("proj.bias").size()) +
                               "out_proj.bias");
      value = it != mha_state.end() ? it->second : torch::zeros_like(target);
    } else if (ends_with(key, "wg.weight") || ends_with(key, "wg_0.weight") ||
               ends_with(key, "wg_1.weight")) {
      value = zero_routers ? torch::zeros_like(target) : target;
    } else {
      auto it = mha_state.find(key);
      value = it != mha_state.end() ? it->second : target;
    }
    check_user(value.sizes() == target.sizes(), "MHA -> MoH conversion: shape mismatch for '" +
                                                    key + "' (source " + c10::str(value.sizes()) +
                                                    ", target " + c10::str(target.sizes()) + ")");
    out[key] = value.to(target.options()).clone();
  }
  return out;
}

WeightConversion mha_to_moh_conversion() {
  WeightConversion conversion;
  conversion.target = "moh";
  conversion.accepts = [](const StateDict& source) {
    return source.count("blocks.0.attn.q_proj.weight") > 0;
  };
  conversion.convert = [](const StateDict& source, const StateDict& target,
                          const AttentionShape& shape) {
    return convert_mha_to_moh(source, target, /*zero_routers=*/false,
                              shape.d_model / shape.n_heads);
  };
  return conversion;
}

}  // namespace attnlab
