// LoRA (Hu et al., 2021) on a torch::nn::Linear: y = W x (+ b) + scale * B(A(dropout(x))) with the
// base W, b frozen and only A: [r, in] and B: [out, r] trained (scale = alpha / r, or alpha /
// sqrt(r) with rsLoRA). W + scale * B A is never formed while training.
//
// The adapter lives *inside* the Linear it adapts, as child modules, rather than as a wrapper that
// replaces it: the models hold their projections as typed torch::nn::Linear members (and the
// fused q/k/v GEMM reads q_proj->weight directly), so a module swapped in with replace_module
// would never be called. Children of the Linear give exactly PEFT's parameter names:
//   blocks.0.attn.q_proj.weight          the frozen base (name unchanged)
//   blocks.0.attn.q_proj.lora_A.weight   A, kaiming-uniform(a = sqrt(5)) as PEFT initialises it
//   blocks.0.attn.q_proj.lora_B.weight   B, zeros: the adapted model starts equal to the base
// plus a parameterless child `lora` (LoraPathImpl: scale and dropout, absent from state dicts).
// Every forward that calls a Linear goes through lora_linear(), which adds the low-rank path when
// the Linear carries an adapter and is the plain Linear otherwise.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace attnlab {

// How one adapter is built.
struct LoraAdapterOptions {
  int64_t r = 16;
  double alpha = 32.0;
  double dropout = 0.0;
  bool use_rslora = false;
};

// alpha / r, or alpha / sqrt(r) (rsLoRA).
double lora_scale(const LoraAdapterOptions& options);

// The adapter's settings, a child of the adapted Linear without parameters or buffers.
struct LoraPathImpl : torch::nn::Module {
  LoraPathImpl(double scale, double dropout) : scale(scale), dropout(dropout) {}
  double scale;
  double dropout;
};
TORCH_MODULE(LoraPath);

// Adds lora_A, lora_B and lora to `linear` (A drawn from `generator`, on the base weight's device
// and dtype) and sets the base weight and bias to requires_grad=false. The Linear must not carry
// an adapter already.
void attach_lora(torch::nn::LinearImpl& linear, const LoraAdapterOptions& options,
                 at::Generator generator);

// True when `linear` carries an adapter.
bool has_lora(const torch::nn::LinearImpl& linear);

// scale * B(A(dropout(x))) of the adapter on `linear` (dropout in training mode only); an
// undefined tensor when the Linear has none.
torch::Tensor lora_delta(const torch::nn::LinearImpl& linear, const torch::Tensor& x);

// linear(x) plus its adapter's path when it has one.
torch::Tensor lora_linear(const torch::nn::Linear& linear, const torch::Tensor& x);

}  // namespace attnlab
