// The `lm` task (task.name=lm, the default): language modelling with model=gpt on token shards.
// The data are prepared by rank 0 first (corpus -> tokenizer -> shards, data/prepare.h), then
// read by every rank; the objective (`objective.name`: autoregressive or masked_diffusion)
// turns a sampled window into a loss; validation is the objective's loss over fixed batches,
// split across ranks, as loss, perplexity and bits per byte. The objective's RNG stream (masking
// noise) travels in the checkpoint, one stream per rank.
#include "tasks/lm/lm_task.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstring>
#include <iostream>

#include "common/config_access.h"
#include "common/error.h"
#include "config/run_options.h"
#include "data/prepare.h"
#include "data/tokenizers/tokenizer.h"
#include "data/window_sampler.h"
#include "interop/hf/pretrained_config.h"
#include "io/weights_io.h"
#include "modules/weight_conversion.h"
#include "trainer/evaluator.h"
#include "trainer/finetune.h"
#include "trainer/objective.h"
#include "trainer/run_setup.h"
#include "trainer/trainer_options.h"
#include "trainer/weight_sources.h"

namespace attnlab {

namespace {

// An LM's reported number `key` (val_perplexity, val_bits_per_byte): from the run's results
// (result.json of a finished run) or else its last validation's metric (val/perplexity, ...).
double reported(const TrainSummary& summary, const std::string& key) {
  const auto result = summary.results.find(key);
  if (result != summary.results.end()) return result->second;
  const auto metric = summary.val_metrics.find("val/" + key.substr(4));
  return metric == summary.val_metrics.end() ? 0.0 : metric->second;
}

// The objective's generator state travels in TrainState::extra as raw bytes.
std::string generator_state(const torch::Generator& generator) {
  auto bytes = generator.get_state().contiguous();
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
}

void set_generator_state(torch::Generator& generator, const std::string& state) {
  auto bytes = torch::empty({static_cast<int64_t>(state.size())}, torch::kUInt8);
  std::memcpy(bytes.data_ptr<uint8_t>(), state.data(), state.size());
  generator.set_state(bytes);
}

// init_from: weights only, strict or partial (init_strict). Weights of another attention module
// are converted first by the conversions the modules register (modules/weight_conversion.h; e.g.
// an `mha` source into `moh` layers: q/k/v -> qkv, out_proj -> proj, routers freshly
// initialised); a conversion follows the model's tensors, so layers that keep the source's
// module are copied as they are.
void load_initial_weights(const YAML::Node& config, GptImpl& model, bool is_main) {
  const std::string source = cfg::get<std::string>(config, "init_from");
  StateDict weights = read_weights(source);
  // A pretrained vocabulary smaller than the model's (the tokenizer appended MASK/PAD ids).
  const int64_t grown = grow_vocabulary_rows(weights, state_dict(model));
  if (grown > 0 && is_main)
    std::cerr << "init_from " << source << ": " << grown
              << " vocabulary rows added (initialised to the mean pretrained embedding)\n";
  const GptOptions& options = model.options();
  std::vector<std::string> layer_modules = {options.attention};
  layer_modules.insert(layer_modules.end(), options.layer_attention.begin(),
                       options.layer_attention.end());
  weights = convert_attention_weights(std::move(weights), state_dict(model), layer_modules,
                                      {options.d_model, options.n_heads, options.n_kv_heads});
  const LoadReport report =
      load_init_weights(model, weights, source, run_options(config).init_strict);
  if (is_main) std::cerr << "init_from " << source << ":\n" << report.summary() << "\n";
}

class LmTask : public Task {
 public:
  explicit LmTask(const TaskContext& context)
      : config_(context.config),
        dist_(context.dist),
        device_(context.device),
        data_(context.dist.rank_zero_first([&] { return prepare_data(context.config); })),
        model_(build_model(config_, data_.tokenizer->vocab_size())),
        losses_(config_, model_->options().n_layers),
        objective_name_(objective_name(config_)),
        objective_(make_objective(config_)),
        seq_len_(cfg::get<int64_t>(config_, "data.seq_len")),
        batch_size_(cfg::get<int64_t>(config_, "data.batch_size")) {
    if (context.initial_weights && cfg::has(config_, "init_from"))
      load_initial_weights(config_, *model_, dist_.is_main());
    // finetune=lora: adapters on the loaded base (also when a run is reloaded for eval, so its
    // checkpoint's lora_A / lora_B tensors have their place).
    const std::string finetune = apply_finetune(config_, *model_);
    if (!finetune.empty() && context.initial_weights && dist_.is_main())
      std::cerr << finetune << "\n";
    objective_context_.mask_token = data_.tokenizer->mask();
    objective_context_.bos_token = data_.tokenizer->bos();
    objective_context_.generator =
        at::detail::createCPUGenerator(context.seed + 7919 * dist_.rank());
    sampler_ = make_sampler(config_, data_.train, dist_.rank(), dist_.world_size(),
                            data_.tokenizer->eos());
    eval_set_ = eval_batches(*data_.val, TrainerOptions::from_config(config_).loop().eval_batches(),
                             batch_size_, seq_len_);
  }

  torch::nn::Module& model() override { return *model_; }
  int64_t embedding_parameters() const override {
    int64_t count = model_->embed->weight.numel();
    if (model_->pos_embed) count += model_->pos_embed->weight.numel();
    return count;
  }
  double flops_per_token() const override { return gpt_flops_per_token(*model_, seq_len_); }
  std::string tokenizer_fingerprint() const override { return data_.tokenizer->fingerprint(); }

  Batch next_batch() override {
    // Once, when training starts (after every check, so a failing command stays one line):
    // which text trains and which validates.
    if (!split_reported_ && dist_.is_main()) std::cerr << describe_split(data_) << "\n";
    split_reported_ = true;
    return sampler_->next();
  }
  int64_t tokens_in(const Batch& batch) const override { return batch.input.numel(); }
  LossResult training_loss(const Batch& batch) override {
    return objective_->compute(*model_, batch, losses_, objective_context_, /*training=*/true);
  }

  TaskEvaluation evaluate(const EvalSpec& spec) override {
    check_user(spec.split == "val",
               "eval: task 'lm' holds out a validation split only, not '" + spec.split + "'");
    const int64_t seq_len = spec.seq_len > 0 ? spec.seq_len : seq_len_;
    int64_t fit = static_cast<int64_t>(eval_set_.size());
    std::vector<Batch> batches;
    if (!spec.is_loop_validation()) {
      // Long lengths may not fit spec.batches batches of the validation split: use as many as
      // fit. Noise-drawing objectives see every window t_samples times (the evaluator's
      // generator advances between them).
      const int64_t batch_size = spec.batch_size > 0 ? spec.batch_size : batch_size_;
      const int64_t windows = (data_.val->size() - 1) / seq_len;
      fit = std::min<int64_t>(spec.batches, windows / batch_size);
      check_user(fit > 0, "eval: the validation split (" + std::to_string(data_.val->size()) +
                              " tokens) is too short for seq_len " + std::to_string(seq_len) +
                              " x batch " + std::to_string(batch_size));
      const std::vector<Batch> once = eval_batches(*data_.val, fit, batch_size, seq_len);
      for (int64_t k = 0; k < spec.t_samples; ++k)
        batches.insert(batches.end(), once.begin(), once.end());
    }
    const EvalResult result =
        attnlab::evaluate(*model_, *objective_, losses_, objective_context_,
                          spec.is_loop_validation() ? eval_set_ : batches, dist_, device_,
                          data_.val_bytes_per_token(), spec.progress);
    TaskEvaluation out;
    out.loss = result.loss;
    out.metrics = {{"val/loss", result.loss},
                   {"val/perplexity", result.perplexity},
                   {"val/bits_per_byte", result.bits_per_byte}};
    out.line =
        "val loss " + std::to_string(result.loss) + " ppl " + std::to_string(result.perplexity);
    out.row = {{"seq_len", seq_len}, {"batches", fit}};
    for (auto& column : objective_->evaluation_row(result, seq_len)) out.row.push_back(column);
    return out;
  }

  EvalPlan eval_plan(const EvalOptions& options) const override {
    const bool noise = objective_->evaluates_with_noise();
    const int64_t t_samples = noise ? options.t_samples : 1;
    check_user(t_samples > 0, "eval.t_samples: expected a positive number of t draws, got " +
                                  std::to_string(t_samples));
    EvalPlan plan;
    for (int64_t seq_len :
         options.seq_lens.empty() ? std::vector<int64_t>{seq_len_} : options.seq_lens) {
      check_user(seq_len > 0, "eval.seq_lens: lengths must be positive");
      EvalSpec spec;
      spec.seq_len = seq_len;
      spec.batches = options.batches;
      spec.batch_size = options.batch_size;
      spec.t_samples = t_samples;
      plan.specs.push_back(spec);
    }
    plan.title = objective_->evaluation_title(t_samples);
    plan.header = {{"objective", objective_name_}, {"train_seq_len", seq_len_}};
    if (noise) plan.header["t_samples"] = t_samples;
    return plan;
  }

  void save_state(TrainState& state) override {
    state.sampler_state = sampler_->state();
    state.extra["objective_rng"] = generator_state(objective_context_.generator);
    for (int r = 0; dist_.is_distributed() && r < dist_.world_size(); ++r)
      state.extra["objective_rng.rank" + std::to_string(r)] =
          dist_.broadcast_string(generator_state(objective_context_.generator), r);
  }
  void load_state(const TrainState& state) override {
    sampler_->load_state(state.sampler_state);
    // Each rank continues its own objective RNG stream (ranks draw different masking noise);
    // "objective_rng" is rank 0's, for single-process runs and a changed world size.
    const std::string own = "objective_rng.rank" + std::to_string(dist_.rank());
    if (dist_.is_distributed() && state.extra.count(own))
      set_generator_state(objective_context_.generator, state.extra.at(own));
    else if (state.extra.count("objective_rng"))
      set_generator_state(objective_context_.generator, state.extra.at("objective_rng"));
  }

  void finish(TrainSummary& summary, MetricsLogger*) override {
    summary.results["val_perplexity"] = reported(summary, "val_perplexity");
    summary.results["val_bits_per_byte"] = reported(summary, "val_bits_per_byte");
  }

  std::string report(const TrainSummary& s) const override {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "final: step %lld | val loss %.4f | val ppl %.2f | val bpb %.4f | %.0f tok/s\n",
                  static_cast<long long>(s.step), s.val_loss, reported(s, "val_perplexity"),
                  reported(s, "val_bits_per_byte"), s.tokens_per_second);
    return line;
  }

 private:
  const YAML::Node& config_;
  DistributedContext& dist_;
  torch::Device device_;
  PreparedData data_;
  Gpt model_;
  LossSet losses_;
  std::string objective_name_;
  std::unique_ptr<ObjectiveImpl> objective_;
  ObjectiveContext objective_context_;
  std::unique_ptr<WindowSampler> sampler_;
  std::vector<Batch> eval_set_;
  int64_t seq_len_, batch_size_;
  bool split_reported_ = false;
};

}  // namespace

std::unique_ptr<Task> make_lm_task(const TaskContext& context) {
  return std::make_unique<LmTask>(context);
}

}  // namespace attnlab
