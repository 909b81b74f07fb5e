// The attention interface every attention module implements (mha, moh, diff, gda, lssa, lssar…).
// A module receives hidden states plus an AttentionContext (mask kind, absolute positions, an
// optional KV cache, whether attention probabilities are wanted) and returns its output with
// optional extras. Causality is not hard-coded in modules: it comes from MaskSpec, so any module
// runs causal, bidirectional or block-causal. Modules are created by name from
// attention_registry(), and initialise their own parameters in reset_parameters(), which the
// model calls once after building every layer.
#pragma once

#include <torch/torch.h>

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/registry.h"
#include "config/option_schema.h"
#include "modules/masks.h"
#include "modules/rope.h"

namespace attnlab {

// Which kernels softmax attention runs on (model.attention_backend): kAuto = attnlab's CPU kernels
// (block skipping, fused prefix rows) on the CPU and device kernels (SDPA, masks built on the
// device, no host work) elsewhere; kSdpa = the device kernels on any device (also the CPU, where
// CI runs the path that GPUs take); kNative = the CPU kernels where they apply, else composed ops.
// modules/attention_backend.h is the one place that decides, for every module: its selectors
// (select_softmax_kernel, select_routed_kernel for MoH's routed heads, select_differential_kernel
// for DIFF/GDA) turn the backend, the tensors and the context into the kernel a module runs.
enum class AttentionBackend { kAuto, kSdpa, kNative };

// Per-layer KV cache for incremental decoding. Layout is module-defined (mha: [B, H_kv, T, D]).
// `commit == false` in the context lets a step attend over cache + current tokens without
// appending (used by the block-diffusion sampler until a block is final).
struct KVCache {
  torch::Tensor k;
  torch::Tensor v;
  // Absolute positions of the cached keys, [T_cached] int64.
  torch::Tensor positions;
  int64_t length() const { return k.defined() ? k.size(-2) : 0; }
  void reset() { k = v = positions = torch::Tensor(); }
};

struct AttentionContext {
  MaskSpec mask;
  torch::Tensor positions;   // [T] int64 absolute positions of the query tokens
  KVCache* cache = nullptr;  // when set: attend over cached keys + current keys
  bool cache_commit = true;  // append this step's keys/values to the cache
  bool need_probs = false;   // fill AttentionOutput::probs ([B, H, T_q, T_k])
  // positions are start, start+1, ... (the model made them): with no cache, a causal mask is then
  // the lower triangle, which fused device kernels (SDPA's is_causal) compute without a mask.
  bool positions_in_order = false;
};

struct AttentionOutput {
  torch::Tensor y;  // [B, T, d_model]
  // Auxiliary losses already multiplied by their coefficient (e.g. MoH's beta * l_aux); the model
  // averages each name over the layers that report it and adds it to the total loss.
  std::map<std::string, torch::Tensor> aux_losses;
  torch::Tensor probs;                         // defined only when need_probs
  std::map<std::string, torch::Tensor> stats;  // detached diagnostics (e.g. head utilisation)
};

struct AttentionOptions {
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;   // == n_heads for plain MHA
  int64_t layer_index = 0;  // 0-based depth (DIFF lambda_init, MoH per-layer lists)
  int64_t n_layers = 1;
  int64_t max_seq_len = 0;
  double dropout = 0.0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;  // model.rope_scaling (none | linear | llama3)
  // The model family's projection biases (model.attention_bias / model.qkv_bias): defaults for
  // modules whose own `bias` option is null.
  bool bias = false;
  bool qkv_bias = false;
  // model.attention_backend (modules/attention_backend.h): which softmax kernels modules use.
  AttentionBackend backend = AttentionBackend::kAuto;
  // The model's mask (model.mask / model.block_size): what the model puts in every
  // AttentionContext unless a caller asks for another; modules read the mask of each call from
  // the context, this is for code that runs one module alone (attnlab probe).
  MaskSpec mask;
  // false: the model adds learned positions at the embedding (model.positions=learned), so no
  // module rotates q/k whatever its own `rope` option says.
  bool rotary_positions = true;
  // The module's own options: its `attention:` group (and a hybrid layer's own entry) bound into
  // the struct its registry entry declares (e.g. MohModuleOptions); empty = that struct's
  // defaults. Read with module_options<T>(options).
  std::any module_options;
};

// The module's own options held by `options` (its defaults when none were bound); a
// std::logic_error when they are another module's (a programming error, not a config one).
template <class T>
T module_options(const AttentionOptions& options) {
  if (!options.module_options.has_value()) return T{};
  const T* held = std::any_cast<T>(&options.module_options);
  if (held == nullptr)
    throw std::logic_error("AttentionOptions::module_options holds another module's options");
  return *held;
}

// The model's init scheme, handed to every module's reset_parameters(): GPT-2's N(0, std) for
// projections that read the residual stream, N(0, residual_std) for those that write into it
// (residual_std = std / sqrt(2 · n_layers)).
struct ParameterInit {
  double std = 0.02;
  double residual_std = 0.02;
};

class AttentionImpl : public torch::nn::Module {
 public:
  ~AttentionImpl() override = default;
  virtual AttentionOutput forward(const torch::Tensor& x, const AttentionContext& context) = 0;
  // Re-initialises the module's parameters for the model's scheme `init`. The GPT calls it once
  // per layer after construction, under torch::NoGradGuard, layer by layer, between the
  // embedding's init and that layer's MLP init; every normal_/uniform_ here draws from the global
  // generator, so the order of draws is part of a module's init (and of bitwise-reproducible
  // runs). A module decides for each of its tensors: the scheme (init_projection() in
  // attention_math.h for projections) or its own init from the constructor (routers, λ vectors,
  // norms) — say which in the module's reset_parameters.
  virtual void reset_parameters(const ParameterInit& init) = 0;
};

using AttentionFactory = std::function<std::shared_ptr<AttentionImpl>(const AttentionOptions&)>;

// A registry entry: the module's factory and its own options struct (the keys of the
// `attention:` group besides `name`, each default in that struct). Made by attention_entry<Impl,
// Options>() (modules/attention_entry.h), which a module's room or a test calls.
struct AttentionSpec {
  AttentionFactory make;
  config::ErasedOptions options;
};

// name -> spec; the table lives in modules/attention_registry.cpp (one line per module).
Registry<AttentionSpec>& attention_registry();

// Convenience: attention_registry().get(name)(options).
std::shared_ptr<AttentionImpl> make_attention(const std::string& name,
                                              const AttentionOptions& options);

}  // namespace attnlab
