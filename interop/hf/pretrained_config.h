// Starting from a pretrained model sets the architecture: with `init_from=hf:<folder>` (a Hugging
// Face folder) or `init_from=<folder written by attnlab import>`, the model settings (and the
// tokenizer, when the folder has one) come from the pretrained model, as if they had been given
// on the command line before the user's own overrides. A key the user sets keeps the user's value
// (a different size then fails at load time, naming the tensor).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/config_node.h"
#include "io/weights_io.h"

namespace attnlab {

// The file `attnlab import` writes into its folder: the settings as `overrides: [key=value...]`.
inline constexpr const char* kPretrainedSettingsFile = "pretrained.yaml";

// A folder `attnlab import` wrote: its settings file and config.yaml beside its weights.
bool is_import_folder(const std::string& path);

// The architecture settings of `init_from` (key, value); empty for any other kind of source.
std::vector<std::pair<std::string, std::string>> pretrained_settings(const std::string& init_from);

// config::compose, then, when the composed init_from is a pretrained folder, composes again with
// its settings ahead of request.overrides (skipping keys the user set; any tokenizer override of
// the user's keeps the whole tokenizer choice). A folder without a tokenizer needs the user's
// tokenizer= on the command line: without one, a UserError lists the choices that fit the
// model's vocabulary (tokenizer=gpt2 for 50257 rows, tokenizer=byte for a byte-level model,
// tokenizer=hf tokenizer.path=...), instead of training it on the default byte tokenizer.
ConfigNode compose_with_pretrained(const config::ComposeRequest& request);

// Pretrained weights with fewer vocabulary rows than the model (a tokenizer that appends a MASK
// or PAD id): embed.weight / lm_head.weight get the missing rows, initialised to the mean of the
// pretrained rows (as transformers' resize_token_embeddings does). Returns the rows added.
int64_t grow_vocabulary_rows(StateDict& weights, const StateDict& model_state);

}  // namespace attnlab
