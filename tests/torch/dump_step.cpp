// Writes everything a reference implementation needs to check one wngan model and one
// training iteration: the initial weights, the inputs, G's output and D's logits, the
// gradients of the iteration's G and D updates and the weights after it. Read by
// tests/torch/parity.py (a PyTorch port of the authors' modules); not run by CI.
//   dump_step ARCH NORM PROTOCOL LOSS OUT.safetensors [HxW]
//   (e.g. dcgan weight alternating bce /tmp/a.safetensors 30x22; images 32x32 by default)
#include <cstdio>
#include <exception>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "gan/models.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/optim.h"

using namespace wn;

namespace {

// A copy of every tensor of a named list, with a prefix.
void add_all(nn::Named& out, const std::string& prefix, const nn::Named& src) {
  for (const auto& [n, t] : src) out.emplace_back(prefix + n, t.clone());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6 && argc != 7) {
    std::fprintf(stderr, "usage: dump_step dcgan|resnet none|batch|weight alternating|simultaneous bce|ls OUT [HxW]\n");
    return 2;
  }
  try {
    const std::string arch = argv[1], protocol = argv[3], loss = argv[4], out = argv[5];
    gan::ModelConfig c;
    c.arch = gan::parse_arch(arch);
    c.norm = gan::parse_norm(argv[2]);
    c.channels = 3, c.height = 32, c.width = 32, c.code = 20;
    if (argc == 7 && std::sscanf(argv[6], "%ldx%ld", &c.height, &c.width) != 2)
      throw std::invalid_argument(fmt::format("size '{}': expected HxW", argv[6]));
    c.nf = 16;                  // DCGAN: 3 layers, 16-32-64 features
    c.features = {8, 16, 24};   // ResNet: 3 levels
    c.blocks = 2;
    Generator init(7);
    gan::Gan g = gan::build_gan(c, init);
    const int64_t b = 6;
    Generator data(8);
    Tensor real = rand_uniform({b, 3, c.height, c.width}, data, 0.0, 1.0);
    nn::Named dump;
    add_all(dump, "init.", g.G->state());
    add_all(dump, "init.", g.D->state());
    dump.emplace_back("input.real", real);
    // Outputs at the initial weights, training mode (BN on batch statistics), no update.
    Tensor z0 = randn({b, c.code}, data);
    dump.emplace_back("input.z", z0);
    {
      NoGradGuard ng;
      g.G->train();
      g.D->train();
      dump.emplace_back("out.G", (*g.G)(z0));
      dump.emplace_back("out.D", (*g.D)(real));
    }
    // BN's running statistics moved in those forwards: restore the initial state for the step.
    nn::TensorFile initial;
    initial.tensors = dump;
    nn::assign_named(g.G->state(), initial, "init.", "G.");
    nn::assign_named(g.D->state(), initial, "init.", "D.");
    // One iteration with the trainer's step and RMSProp (lr 1e-3 so that the update shows).
    const double eps = arch == "resnet" ? 1e-8 : 1e-6;
    nn::RMSProp og(g.G->named_parameters(), 1e-3, 0.9, eps), od(g.D->named_parameters(), 1e-3, 0.9, eps);
    og.add_post_step_hook([&] { nn::after_update_all(*g.G); });
    od.add_post_step_hook([&] { nn::after_update_all(*g.D); });
    Generator rng(9), copy = rng;
    gan::StepLosses l = gan::gan_step(g, og, od, real, rng, gan::parse_loss(loss) == gan::Loss::LS,
                                         gan::parse_protocol(protocol) == gan::Protocol::Simultaneous);
    dump.emplace_back("input.z1", randn({b, c.code}, copy));
    if (protocol == "alternating") dump.emplace_back("input.z2", randn({b, c.code}, copy));
    for (nn::Module* m : {g.G.get(), g.D.get()})
      for (const auto& [n, p] : m->named_parameters())
        if (p.grad().defined()) dump.emplace_back("grad." + n, p.grad().clone());
    add_all(dump, "after.", g.G->state());
    add_all(dump, "after.", g.D->state());
    nlohmann::json meta = {{"arch", arch},          {"norm", argv[2]},    {"protocol", protocol}, {"loss", loss},
                           {"channels", 3},         {"height", c.height}, {"width", c.width},     {"code", c.code},
                           {"nf", c.nf},            {"features", c.features}, {"blocks", c.blocks},
                           {"lr", 1e-3},            {"rms_eps", eps},     {"d_real", l.d_real},   {"d_fake", l.d_fake},
                           {"g_loss", l.g}};
    nn::save_safetensors(out, dump, {{"config", meta.dump()}});
    std::printf("%s: %zu tensors; losses D real %.6f fake %.6f G %.6f\n", out.c_str(), dump.size(), l.d_real, l.d_fake,
                l.g);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dump_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
