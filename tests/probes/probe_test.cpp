// Loss probe: the returned dictionary's keys and shapes, and the cross-entropy gradient against
// its closed form (softmax - onehot) / N.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "probes/loss_probe.h"

using namespace attnlab;

TEST(LossProbe, CrossEntropyGradientIsClosedForm) {
  LossProbeShape shape;
  shape.dtype = torch::kDouble;
  auto inputs = synthetic_loss_inputs(shape, 1);
  auto out = probe_loss_term("cross_entropy", YAML::Node(), inputs, shape.n_layers);
  for (const char* key : {"logits", "targets", "loss", "grad.logits", "hidden.0", "grad.hidden.2",
                          "attn.1", "grad.attn.1", "loss/cross_entropy"})
    EXPECT_TRUE(out.count(key)) << key;
  const int64_t N = shape.batch * shape.seq_len;
  auto expect = (torch::softmax(inputs.logits, -1) -
                 torch::one_hot(inputs.targets, shape.vocab).to(torch::kDouble)) /
                static_cast<double>(N);
  EXPECT_TRUE(torch::allclose(out.at("grad.logits"), expect, 1e-10, 1e-12));
  EXPECT_EQ(out.at("grad.hidden.0").abs().sum().item<double>(), 0.0);  // not read by the term
}

TEST(LossProbe, HiddenAndAttentionTermsGetGradients) {
  auto inputs = synthetic_loss_inputs(LossProbeShape{}, 2);
  auto dec = probe_loss_term("decorrelation", YAML::Load("{layers: [0, 1]}"), inputs, 3);
  EXPECT_GT(dec.at("grad.hidden.0").abs().sum().item<double>(), 0.0);
  EXPECT_EQ(dec.at("grad.hidden.2").abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(dec.count("stat/max_act/layer1"));
  auto seg = probe_loss_term("segregation", YAML::Load("{layers: [2]}"), inputs, 3);
  EXPECT_EQ(seg.at("grad.attn.2").sizes(), inputs.attn.at(2).sizes());
  EXPECT_GT(seg.at("grad.attn.2").abs().sum().item<double>(), 0.0);
  auto composed = probe_loss_set(
      YAML::Load("loss: {terms: [{name: cross_entropy}, {name: focal, gamma: 0}]}"), inputs, 3);
  EXPECT_NEAR(composed.at("loss").item<double>(),
              2 * composed.at("loss/cross_entropy").item<double>(), 1e-5);
}
