// Writes the seed corpus of the readers fuzz target (fuzz/readers/corpus/) from attnlab's own
// writers: one byte naming the reader (0 shard, 1 checkpoint archive without its trailer,
// 2 torch.save file), then the file. Run: build/fuzz_readers_make_seeds fuzz/readers/corpus
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "data/token_shard.h"
#include "io/atomic_file.h"
#include "io/weights_io.h"
#include "trainer/checkpoint.h"

namespace fs = std::filesystem;

namespace {

void write_seed(const fs::path& dir, const std::string& name, char reader,
                const std::string& file) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.put(reader);
  out.write(file.data(), static_cast<std::streamsize>(file.size()));
  std::cout << (dir / name).string() << " (" << file.size() + 1 << " bytes)\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR\n";
    return 2;
  }
  const fs::path dir = argv[1];
  const fs::path scratch =
      fs::temp_directory_path() / ("attnlab_make_seeds_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::create_directories(scratch);

  for (const uint64_t vocab : {300ull, 70000ull}) {
    std::vector<int32_t> tokens;
    for (int32_t i = 0; i < 40; ++i) tokens.push_back(static_cast<int32_t>((i * 37) % vocab));
    attnlab::ShardInfo info;
    info.vocab_size = vocab;
    info.utf8_bytes = 120;
    info.document_count = 2;
    info.fingerprint = "byte-v1";
    info.role = attnlab::ShardRole::kTrain;
    info.corpus_hash = 0x1234;
    const fs::path shard = scratch / "shard.bin";
    attnlab::write_token_shard(shard, tokens, info);
    write_seed(dir, "shard_vocab" + std::to_string(vocab), 0, attnlab::read_file_bytes(shard));
  }

  torch::manual_seed(0);
  torch::nn::Linear model(torch::nn::LinearOptions(3, 2));
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  model->forward(torch::ones({1, 3})).sum().backward();
  optimizer.step();
  attnlab::TrainState state;
  state.step = 1;
  state.tokenizer = "byte-v1";
  state.sampler_state = "seed";
  const std::string checkpoint =
      attnlab::save_checkpoint(scratch.string(), *model, &optimizer, state, "seed: 1\n");
  const std::string bytes = attnlab::read_file_bytes(checkpoint);
  write_seed(dir, "checkpoint_linear", 1, bytes.substr(0, bytes.size() - 24));

  attnlab::save_weights_file((scratch / "weights.pt").string(), attnlab::state_dict(*model));
  write_seed(dir, "torch_save_zip", 2, attnlab::read_file_bytes((scratch / "weights.pt").string()));
  fs::remove_all(scratch);
  return 0;
}
