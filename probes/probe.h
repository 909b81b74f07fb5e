// `attnlab probe`: runs one part (an attention layer by default) on random input through the same
// code path as training and dumps everything a reference implementation needs for a parity check:
// the input, output, parameters, aux losses and the gradients of y.sum() + Σ aux. The result is a
// {name: tensor} dict that Python's torch.load reads. Targets are a name -> function table so
// other parts (losses, models) add one function and one line each.
#pragma once

#include <functional>
#include <string>

#include "common/registry.h"
#include "config/config_node.h"
#include "io/weights_io.h"

namespace attnlab {

// A probe target: composed config -> tensors to write.
using ProbeTarget = std::function<StateDict(const ConfigNode& config)>;

// probe.target name -> function; `attention` is the default.
Registry<ProbeTarget>& probe_registry();

// The `attention` target. Reads seed, model.{d_model,n_heads,n_kv_heads,n_layers,rope_theta,
// max_seq_len}, attention.* and probe.{batch,seq_len,dtype,training,layer_index}. Keys written:
// x, y, param.<name>, aux.<name>, stat.<name>, grad.x, grad.param.<name> and, when the module
// has attention maps, attn [B, heads, T, T] (from a second, identical forward asking for them,
// so the first forward takes the training path that skips probabilities).
StateDict probe_attention(const ConfigNode& config);

// Runs probe.target (default attention) and writes probe.out (default probe.pt); returns the path.
std::string run_probe(const ConfigNode& config);

}  // namespace attnlab
