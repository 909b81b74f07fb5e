// The `classification` task; see classification_task.h. Data: the fixed stratified split of the
// labelled dataset, tokens (BOS = [CLS] + truncated text), training batches from ExampleSampler
// (each rank its slice of the global batch), validation and test as fixed ordered batches.
#include "tasks/classification/classification_task.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/config_access.h"
#include "common/error.h"
#include "config/options.h"
#include "data/corpora/labelled_dataset.h"
#include "data/data_options.h"
#include "data/tokenizers/tokenizer.h"
#include "io/atomic_file.h"
#include "io/weights_io.h"
#include "modules/sequence_classifier.h"
#include "tasks/classification/classification_data.h"
#include "tasks/classification/classification_metrics.h"
#include "trainer/metrics_logger.h"
#include "trainer/run_setup.h"
#include "trainer/weight_sources.h"

namespace attnlab {

namespace {

struct SplitEval {
  double loss = 0.0;
  int64_t examples = 0;
  ClassificationMetrics metrics;
};

std::string split_sizes(const std::vector<int64_t>& counts, const std::vector<std::string>& names) {
  std::string out;
  for (size_t c = 0; c < counts.size(); ++c)
    out += (c ? ", " : "") + names[c] + " " + std::to_string(counts[c]);
  return out;
}

// The dataset, its split and the tokenizer (trained on the training texts when the tokenizer
// needs training).
struct LabelledData {
  LabelledDataset dataset;
  StratifiedSplit split;
  std::unique_ptr<Tokenizer> tokenizer;
};

LabelledData load_labelled_data(const YAML::Node& config) {
  LabelledData data;
  data.dataset = load_labelled_dataset(config);
  data.split = split_from_config(data.dataset, config);
  data.tokenizer = load_tokenizer(config, [&data] {
    std::vector<std::string> texts;
    for (const auto& example : data.split.train) texts.push_back(example.text);
    return texts;
  });
  return data;
}

}  // namespace

template <class ConfigTree>
ClassificationTaskOptions classification_task_options(const ConfigTree& config) {
  return config::bind<ClassificationTaskOptions>(
      cfg::find(config, "task"), "task", config::BindScope{"task 'classification'", {"name"}});
}

template ClassificationTaskOptions classification_task_options(const YAML::Node&);

namespace {

class ClassificationTask : public Task {
 public:
  explicit ClassificationTask(const TaskContext& context)
      : config_(context.config),
        device_(context.device),
        // Rank 0 loads first: ranks never race on the download or the tokenizer cache.
        data_(context.dist.rank_zero_first([&] { return load_labelled_data(context.config); })),
        num_classes_(static_cast<int64_t>(data_.dataset.classes.size())),
        train_counts_(class_counts(data_.split.train, num_classes_)),
        seq_len_(cfg::get<int64_t>(config_, "data.seq_len")),
        pad_(data_.tokenizer->pad()) {
    const ClassificationTaskOptions task = classification_task_options(config_);
    const int64_t max_text_bytes = labelled_data(data_options(config_)).max_text_bytes();
    auto encode = [&](const std::vector<LabelledExample>& examples) {
      return encode_examples(examples, *data_.tokenizer, seq_len_, max_text_bytes);
    };
    train_set_ = encode(data_.split.train);
    const int64_t eval_batch = task.eval_batch_size();
    val_batches_ = ordered_batches(encode(data_.split.val), eval_batch, pad_);
    test_batches_ = ordered_batches(encode(data_.split.test), eval_batch, pad_);
    if (context.dist.is_main())
      std::cerr << "classification: " << data_.dataset.examples.size() << " examples; train "
                << split_sizes(train_counts_, data_.dataset.classes) << "; val "
                << data_.split.val.size() << ", test " << data_.split.test.size() << "\n";

    torch::manual_seed(context.seed);
    model_ = SequenceClassifier(gpt_options_from_config(config_, data_.tokenizer->vocab_size()),
                                num_classes_, parse_pooling(task.pooling()));
    if (context.initial_weights && cfg::has(config_, "init_from")) {
      // An LM run's weights: everything but the fresh classifier head (init_from_config warns
      // with the report when something is missing, as the head always is).
      LoadReport report = init_from_config(*model_, config_);
      if (report.complete() && context.dist.is_main())
        std::cerr << "init_from: " << report.summary() << "\n";
    }
    const GptImpl& encoder = model_->encoder();
    embedding_parameters_ = encoder.embed->weight.numel();
    if (encoder.pos_embed) embedding_parameters_ += encoder.pos_embed->weight.numel();
    // Counted at data.seq_len; batches are padded only to their longest member, so this is an
    // upper bound of the attention term.
    flops_per_token_ = gpt_flops_per_token(encoder, seq_len_);
    losses_ = std::make_unique<LossSet>(config_, model_->options().n_layers);
    losses_->set_class_counts(train_counts_);
    sampler_ = std::make_unique<ExampleSampler>(
        train_set_.size(), cfg::get<int64_t>(config_, "data.batch_size"),
        static_cast<uint64_t>(context.seed), context.dist.rank(), context.dist.world_size());
  }

  torch::nn::Module& model() override { return *model_; }
  int64_t embedding_parameters() const override { return embedding_parameters_; }
  double flops_per_token() const override { return flops_per_token_; }
  std::string tokenizer_fingerprint() const override { return data_.tokenizer->fingerprint(); }

  Batch next_batch() override { return make_example_batch(train_set_, sampler_->next(), pad_); }
  int64_t tokens_in(const Batch& batch) const override {
    return batch.key_padding.sum().item<int64_t>();  // real tokens, not padding
  }
  LossResult training_loss(const Batch& batch) override {
    return losses_->compute(model_->forward(batch.input, batch.key_padding, losses_->taps()),
                            batch);
  }

  TaskEvaluation evaluate(const EvalSpec& spec) override {
    check_user(
        spec.split == "val" || spec.split == "test",
        "eval: task 'classification' holds out the splits val and test, not '" + spec.split + "'");
    check_user(spec.seq_len == 0 || spec.seq_len == seq_len_,
               "eval.seq_lens: task 'classification' evaluates at its training length (" +
                   std::to_string(seq_len_) + "); leave eval.seq_lens empty");
    const SplitEval split = evaluate_split(spec.split == "val" ? val_batches_ : test_batches_);
    if (spec.is_loop_validation()) last_val_ = split;
    TaskEvaluation out;
    out.loss = split.loss;
    out.metrics[spec.split + "/loss"] = split.loss;
    for (const auto& [key, value] : flat_metrics(split.metrics, spec.split + "/"))
      out.metrics[key] = value;
    out.line = spec.split + " loss " + std::to_string(split.loss) + " acc " +
               std::to_string(split.metrics.accuracy) + " macro-F1 " +
               std::to_string(split.metrics.macro_f1);
    out.row = {{"split", spec.split},
               {"examples", split.examples},
               {"loss", split.loss},
               {"accuracy", split.metrics.accuracy},
               {"macro_f1", split.metrics.macro_f1}};
    out.details = metrics_to_markdown(split.metrics, spec.split);
    return out;
  }

  EvalPlan eval_plan(const EvalOptions& options) const override {
    check_user(options.seq_lens.empty() ||
                   (options.seq_lens.size() == 1 && options.seq_lens[0] == seq_len_),
               "eval.seq_lens: task 'classification' evaluates at its training length (" +
                   std::to_string(seq_len_) + "); leave eval.seq_lens empty");
    EvalPlan plan;
    for (const char* split : {"val", "test"}) {
      EvalSpec spec;
      spec.split = split;
      spec.seq_len = seq_len_;
      plan.specs.push_back(spec);
    }
    plan.title = "classification: loss, accuracy and macro-F1 of the held-out splits";
    plan.header = {{"classes", data_.dataset.classes}};
    return plan;
  }

  void save_state(TrainState& state) override { state.sampler_state = sampler_->state(); }
  void load_state(const TrainState& state) override { sampler_->load_state(state.sampler_state); }

  // The final model on both held-out splits. Validation is the loop's last evaluate(), which
  // ran on these same weights (task.h).
  void finish(TrainSummary& summary, MetricsLogger* metrics) override {
    const SplitEval val = last_val_ ? *last_val_ : evaluate_split(val_batches_);
    const SplitEval test = evaluate_split(test_batches_);
    test_table_ = metrics_to_markdown(test.metrics, "test (final model)");
    summary.results["test_loss"] = test.loss;
    for (const auto& [key, value] : flat_metrics(val.metrics, "val/")) summary.results[key] = value;
    for (const auto& [key, value] : flat_metrics(test.metrics, "test/"))
      summary.results[key] = value;
    if (!metrics) return;  // ranks other than 0 write nothing
    nlohmann::json record = {{"step", summary.step}, {"test/loss", test.loss}};
    for (const auto& [key, value] : flat_metrics(test.metrics, "test/")) record[key] = value;
    metrics->log(record);
    const nlohmann::json report = {{"step", summary.step},
                                   {"val", metrics_to_json(val.metrics)},
                                   {"test", metrics_to_json(test.metrics)}};
    write_file_atomic(summary.run_dir + "/classification_metrics.json", report.dump(2) + "\n");
    write_file_atomic(summary.run_dir + "/classification_metrics.md",
                      "# Classification metrics (step " + std::to_string(summary.step) + ")\n\n" +
                          metrics_to_markdown(test.metrics, "test") + "\n" +
                          metrics_to_markdown(val.metrics, "val"));
  }

  std::string report(const TrainSummary& s) const override {
    auto result = [&s](const std::string& key) {
      auto it = s.results.find(key);
      return it == s.results.end() ? 0.0 : it->second;
    };
    char line[256];
    std::snprintf(line, sizeof(line),
                  "final: step %lld | val loss %.4f | val macro-F1 %.4f | test acc %.4f | test "
                  "macro-F1 %.4f | %.1f examples/s\n",
                  static_cast<long long>(s.step), s.val_loss, result("val/macro_f1"),
                  result("test/accuracy"), result("test/macro_f1"), s.examples_per_second);
    return (test_table_.empty() ? "" : test_table_ + "\n") + line;
  }

 private:
  // Mean LossSet total over the examples (batch losses weighted by batch size) and the metrics
  // of the argmax predictions.
  SplitEval evaluate_split(const std::vector<Batch>& batches) {
    torch::NoGradGuard no_grad;
    const bool was_training = model_->is_training();
    model_->eval();
    std::vector<int64_t> labels, predictions;
    double loss_sum = 0.0;
    for (const Batch& cpu : batches) {
      Batch batch = batch_to_device(cpu, device_);
      ModelOutput output = model_->forward(batch.input, batch.key_padding, losses_->taps());
      loss_sum += losses_->compute(output, batch).total.item<double>() * batch.labels.size(0);
      auto predicted = output.logits.argmax(-1).to(torch::kCPU).contiguous();
      auto truth = cpu.labels.contiguous();
      predictions.insert(predictions.end(), predicted.data_ptr<int64_t>(),
                         predicted.data_ptr<int64_t>() + predicted.numel());
      labels.insert(labels.end(), truth.data_ptr<int64_t>(),
                    truth.data_ptr<int64_t>() + truth.numel());
    }
    if (was_training) model_->train();
    SplitEval result;
    result.metrics = classification_metrics(labels, predictions, data_.dataset.classes);
    result.loss = labels.empty() ? 0.0 : loss_sum / static_cast<double>(labels.size());
    result.examples = static_cast<int64_t>(labels.size());
    return result;
  }

  const YAML::Node& config_;
  torch::Device device_;
  LabelledData data_;
  int64_t num_classes_;
  std::vector<int64_t> train_counts_;
  int64_t seq_len_;
  int32_t pad_;
  EncodedExamples train_set_;
  std::vector<Batch> val_batches_, test_batches_;
  SequenceClassifier model_{nullptr};
  std::unique_ptr<LossSet> losses_;
  std::unique_ptr<ExampleSampler> sampler_;
  int64_t embedding_parameters_ = 0;
  double flops_per_token_ = 0.0;
  std::optional<SplitEval> last_val_;  // the latest evaluate(), for finish()
  std::string test_table_;             // the final test metrics, for report()
};

}  // namespace

std::unique_ptr<Task> make_classification_task(const TaskContext& context) {
  return std::make_unique<ClassificationTask>(context);
}

}  // namespace attnlab
