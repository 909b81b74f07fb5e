// Random-window and sequential samplers, evaluation batches (see sampler.h).
// Randomness comes from SplitMix64 hashes of (seed, rank, counter) instead of std::
// distributions, whose outputs differ between standard libraries: the same seed gives the same
// batches on every platform, and a sampler's whole state is a few integers.
#include "data/sampler.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"

namespace attnlab {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Uniform integer in [0, range) from 64 random bits (Lemire's multiply-shift; the bias is below
// range / 2^64, negligible for token counts).
uint64_t below(uint64_t bits, uint64_t range) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * range) >> 64);
}

void check_options(const SamplerOptions& o) {
  check_user(o.batch_size > 0,
             "data.batch_size must be positive, got " + std::to_string(o.batch_size));
  check_user(o.seq_len > 0, "data.seq_len must be positive, got " + std::to_string(o.seq_len));
  check_user(o.world_size > 0 && o.rank >= 0 && o.rank < o.world_size,
             "sampler rank " + std::to_string(o.rank) + " outside world size " +
                 std::to_string(o.world_size));
}

// Fills row `row` of input/target with window tokens [start, start + T + 1).
void fill_row(const TokenShard& shard, int64_t start, int64_t row, torch::Tensor& input,
              torch::Tensor& target, std::vector<int64_t>& buffer) {
  const int64_t T = input.size(1);
  buffer.resize(static_cast<size_t>(T + 1));
  shard.copy(start, T + 1, buffer.data());
  int64_t* x = input.data_ptr<int64_t>() + row * T;
  int64_t* y = target.data_ptr<int64_t>() + row * T;
  std::copy(buffer.begin(), buffer.begin() + T, x);
  std::copy(buffer.begin() + 1, buffer.end(), y);
}

Batch empty_batch(int64_t batch_size, int64_t seq_len) {
  Batch batch;
  batch.input = torch::empty({batch_size, seq_len}, torch::kLong);
  batch.target = torch::empty({batch_size, seq_len}, torch::kLong);
  return batch;
}

// "kind v1 a=1 b=2" -> {"a": 1, "b": 2}, checking kind and version.
std::map<std::string, int64_t> parse_state(const std::string& state, const std::string& kind) {
  std::istringstream in(state);
  std::string got_kind, version, field;
  in >> got_kind >> version;
  check_user(got_kind == kind && version == "v1",
             "sampler state '" + state + "' is not a " + kind + " v1 sampler state");
  std::map<std::string, int64_t> values;
  while (in >> field) {
    const size_t eq = field.find('=');
    check_user(eq != std::string::npos, "malformed sampler state '" + state + "'");
    try {
      values[field.substr(0, eq)] = std::stoll(field.substr(eq + 1));
    } catch (const std::exception&) {
      throw UserError("malformed sampler state '" + state + "'");
    }
  }
  return values;
}

int64_t field(const std::map<std::string, int64_t>& values, const std::string& name,
              const std::string& state) {
  auto it = values.find(name);
  check_user(it != values.end(), "sampler state '" + state + "' lacks '" + name + "'");
  return it->second;
}

}  // namespace

// ---- random windows ----

RandomWindowSampler::RandomWindowSampler(std::shared_ptr<const TokenShard> shard,
                                         const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  check_options(options_);
  check_user(shard_->size() > options_.seq_len,
             "token shard " + shard_->path().string() + " has " + std::to_string(shard_->size()) +
                 " tokens, too few for data.seq_len=" + std::to_string(options_.seq_len));
  // `^ 0`: the key single-process runs have always used (rank 0), so their batches are unchanged.
  stream_ = splitmix64(splitmix64(options_.seed) ^ 0ULL);
}

int64_t RandomWindowSampler::offset(int64_t draw) const {
  const auto starts = static_cast<uint64_t>(shard_->size() - options_.seq_len);  // i + T + 1 <= N
  const auto global = static_cast<uint64_t>(draw * options_.world_size + options_.rank);
  return static_cast<int64_t>(below(splitmix64(stream_ + global * 0x9E3779B97F4A7C15ULL), starts));
}

Batch RandomWindowSampler::next() {
  Batch batch = empty_batch(options_.batch_size, options_.seq_len);
  std::vector<int64_t> buffer;
  for (int64_t row = 0; row < options_.batch_size; ++row)
    fill_row(*shard_, offset(draws_++), row, batch.input, batch.target, buffer);
  return batch;
}

std::string RandomWindowSampler::state() const {
  return "random v1 seed=" + std::to_string(static_cast<int64_t>(options_.seed)) +
         " draws=" + std::to_string(draws_);
}

void RandomWindowSampler::load_state(const std::string& state) {
  const auto values = parse_state(state, "random");
  check_user(field(values, "seed", state) == static_cast<int64_t>(options_.seed),
             "sampler state '" + state + "' was saved with another seed than " +
                 std::to_string(options_.seed));
  draws_ = field(values, "draws", state);
  check_user(draws_ >= 0, "malformed sampler state '" + state + "'");
}

// ---- random windows at document starts ----

DocumentAlignedSampler::DocumentAlignedSampler(std::shared_ptr<const TokenShard> shard,
                                               const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  check_options(options_);
  check_user(options_.document_separator >= 0,
             "data.sampler=bos_aligned needs the tokenizer's EOS id (the document separator)");
  // Document starts: 0 and every position after a separator, if a window of T + 1 tokens fits.
  const int64_t last_start = shard_->size() - options_.seq_len - 1;
  std::vector<int64_t> chunk;
  const int64_t step = int64_t{1} << 20;
  if (last_start >= 0) starts_.push_back(0);
  for (int64_t begin = 0; begin < last_start; begin += step) {
    const int64_t count = std::min(step, last_start - begin);  // tokens begin .. begin+count-1
    chunk.resize(static_cast<size_t>(count));
    shard_->copy(begin, count, chunk.data());
    for (int64_t i = 0; i < count; ++i)
      if (chunk[static_cast<size_t>(i)] == options_.document_separator)
        starts_.push_back(begin + i + 1);  // <= last_start
  }
  check_user(!starts_.empty(), "token shard " + shard_->path().string() + " has no document that " +
                                   "starts early enough for a window of data.seq_len=" +
                                   std::to_string(options_.seq_len) +
                                   " (data.sampler=bos_aligned)");
  stream_ = splitmix64(splitmix64(options_.seed) ^ 0xB05ULL);
}

int64_t DocumentAlignedSampler::offset(int64_t draw) const {
  const auto global = static_cast<uint64_t>(draw * options_.world_size + options_.rank);
  const uint64_t pick = below(splitmix64(stream_ + global * 0x9E3779B97F4A7C15ULL),
                              static_cast<uint64_t>(starts_.size()));
  return starts_[static_cast<size_t>(pick)];
}

Batch DocumentAlignedSampler::next() {
  Batch batch = empty_batch(options_.batch_size, options_.seq_len);
  std::vector<int64_t> buffer;
  for (int64_t row = 0; row < options_.batch_size; ++row)
    fill_row(*shard_, offset(draws_++), row, batch.input, batch.target, buffer);
  return batch;
}

std::string DocumentAlignedSampler::state() const {
  return "bos_aligned v1 seed=" + std::to_string(static_cast<int64_t>(options_.seed)) +
         " starts=" + std::to_string(starts_.size()) + " draws=" + std::to_string(draws_);
}

void DocumentAlignedSampler::load_state(const std::string& state) {
  const auto values = parse_state(state, "bos_aligned");
  check_user(field(values, "seed", state) == static_cast<int64_t>(options_.seed) &&
                 field(values, "starts", state) == static_cast<int64_t>(starts_.size()),
             "sampler state '" + state + "' does not match this run (seed " +
                 std::to_string(options_.seed) + ", " + std::to_string(starts_.size()) +
                 " document starts): the data, seq_len or seed changed");
  draws_ = field(values, "draws", state);
  check_user(draws_ >= 0, "malformed sampler state '" + state + "'");
}

// ---- sequential epochs ----

SequentialSampler::SequentialSampler(std::shared_ptr<const TokenShard> shard,
                                     const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  check_options(options_);
  windows_ = (shard_->size() - 1) / options_.seq_len;
  per_rank_ = windows_ / options_.world_size;  // the remainder is skipped, differently per epoch
  check_user(per_rank_ > 0, "token shard " + shard_->path().string() + " has " +
                                std::to_string(shard_->size()) + " tokens: too few for one " +
                                "window of data.seq_len=" + std::to_string(options_.seq_len) +
                                " per rank with " + std::to_string(options_.world_size) + " ranks");
}

void SequentialSampler::shuffle_for(int64_t epoch) const {
  if (order_epoch_ == epoch) return;
  order_.resize(static_cast<size_t>(windows_));
  for (int64_t i = 0; i < windows_; ++i) order_[static_cast<size_t>(i)] = i;
  // Fisher-Yates driven by a (seed, epoch) stream; identical on every rank, so the ranks'
  // interleaved shares of the permutation are disjoint.
  const uint64_t stream = splitmix64(splitmix64(options_.seed) + static_cast<uint64_t>(epoch));
  for (int64_t i = windows_ - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(
        below(splitmix64(stream ^ (static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ULL)),
              static_cast<uint64_t>(i + 1)));
    std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(j)]);
  }
  order_epoch_ = epoch;
}

int64_t SequentialSampler::window_at(int64_t epoch, int64_t position) const {
  check_user(position >= 0 && position < per_rank_, "sequential sampler position out of range");
  shuffle_for(epoch);
  // Strided, not blocked: at each step the N ranks read consecutive stretches of the order, the
  // same windows one process with an N-times larger batch reads (see sampler.h).
  return order_[static_cast<size_t>(position * options_.world_size + options_.rank)];
}

Batch SequentialSampler::next() {
  Batch batch = empty_batch(options_.batch_size, options_.seq_len);
  std::vector<int64_t> buffer;
  for (int64_t row = 0; row < options_.batch_size; ++row) {
    if (position_ == per_rank_) ++epoch_, position_ = 0;  // a batch may straddle two epochs
    const int64_t window = window_at(epoch_, position_++);
    fill_row(*shard_, window * options_.seq_len, row, batch.input, batch.target, buffer);
  }
  return batch;
}

std::string SequentialSampler::state() const {
  return "sequential v1 seed=" + std::to_string(static_cast<int64_t>(options_.seed)) +
         " windows=" + std::to_string(windows_) + " world=" + std::to_string(options_.world_size) +
         " epoch=" + std::to_string(epoch_) + " position=" + std::to_string(position_);
}

void SequentialSampler::load_state(const std::string& state) {
  const auto values = parse_state(state, "sequential");
  check_user(field(values, "seed", state) == static_cast<int64_t>(options_.seed) &&
                 field(values, "windows", state) == windows_ &&
                 field(values, "world", state) == options_.world_size,
             "sampler state '" + state + "' does not match this run (seed " +
                 std::to_string(options_.seed) + ", " + std::to_string(windows_) +
                 " windows, world size " + std::to_string(options_.world_size) +
                 "): the data, seq_len, seed or number of ranks changed");
  const int64_t epoch = field(values, "epoch", state);
  const int64_t position = field(values, "position", state);
  check_user(epoch >= 0 && position >= 0 && position <= per_rank_,
             "malformed sampler state '" + state + "'");
  epoch_ = epoch;
  position_ = position;
}

// ---- table, factory, evaluation ----

Registry<SamplerFactory>& sampler_registry() {
  static Registry<SamplerFactory> registry = [] {
    Registry<SamplerFactory> r("sampler");
    r.add("random", [](std::shared_ptr<const TokenShard> shard, const SamplerOptions& options) {
      return std::make_unique<RandomWindowSampler>(std::move(shard), options);
    });
    r.add("sequential", [](std::shared_ptr<const TokenShard> shard, const SamplerOptions& options) {
      return std::make_unique<SequentialSampler>(std::move(shard), options);
    });
    r.add("bos_aligned",
          [](std::shared_ptr<const TokenShard> shard, const SamplerOptions& options) {
            return std::make_unique<DocumentAlignedSampler>(std::move(shard), options);
          });
    return r;
  }();
  return registry;
}

std::unique_ptr<Sampler> make_sampler(const YAML::Node& config,
                                      std::shared_ptr<const TokenShard> shard, int64_t rank,
                                      int64_t world_size, int64_t document_separator) {
  SamplerOptions options;
  options.document_separator = document_separator;
  options.batch_size = cfg::get<int64_t>(config, "data.batch_size");
  options.seq_len = cfg::get<int64_t>(config, "data.seq_len");
  options.seed = static_cast<uint64_t>(cfg::get_or<int64_t>(config, "seed", 0));
  options.rank = rank;
  options.world_size = world_size;
  const std::string name = cfg::get_or<std::string>(config, "data.sampler", "random");
  return sampler_registry().get(name)(std::move(shard), options);
}

std::vector<Batch> eval_batches(const TokenShard& shard, int64_t n_batches, int64_t batch_size,
                                int64_t seq_len, int64_t rank, int64_t world_size) {
  check_options(SamplerOptions{batch_size, seq_len, 0, rank, world_size});
  const int64_t available = std::max<int64_t>(0, (shard.size() - 1) / seq_len) / batch_size;
  int64_t total = std::min(n_batches, available);
  total -= total % world_size;
  check_user(total > 0, "token shard " + shard.path().string() + " (" +
                            std::to_string(shard.size()) + " tokens) is too short for " +
                            "evaluation batches of " + std::to_string(batch_size) + " x " +
                            std::to_string(seq_len) + " tokens on " + std::to_string(world_size) +
                            " rank(s)");
  std::vector<Batch> batches;
  std::vector<int64_t> buffer;
  for (int64_t i = rank; i < total; i += world_size) {
    Batch batch = empty_batch(batch_size, seq_len);
    for (int64_t row = 0; row < batch_size; ++row)
      fill_row(shard, (i * batch_size + row) * seq_len, row, batch.input, batch.target, buffer);
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace attnlab
