// `wngan sample`: images from a checkpoint's generator, in evaluation mode: a PNG grid
// of random codes, or the raw output x (N, C, H, W) for codes z (N, code) given in a
// safetensors file. `wngan split`: writes a reproducible data split on its own.
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/autograd.h"
#include "engine/random.h"
#include "gan/data.h"
#include "gan/image_grid.h"
#include "gan/split.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::app {

void add_sample(CLI::App& app) {
  struct Opts {
    std::string checkpoint, z, out, device = "cpu";
    int64_t n = 64;
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("sample", "Generate images from a checkpoint (evaluation mode)");
  cmd->add_option("--checkpoint", o->checkpoint,
                  "A checkpoint file, or a run folder (its best checkpoint, else its last)")
      ->required();
  add_checked(cmd, "--n", o->n, "Number of random codes for a PNG grid", in_range(1, 65536));
  cmd->add_option("--seed", o->seed, "Seed of the random codes")->capture_default_str()->check(seed_value());
  cmd->add_option("--z", o->z, "Codes: a safetensors file with tensor 'z' (N, code); writes tensor 'x' to --out");
  cmd->add_option("--out", o->out, "Output: grid.png, or X.safetensors with --z")->required()
      ->check(non_empty());
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->callback([o]() {
    std::string ckpt = o->checkpoint;
    if (std::filesystem::is_directory(ckpt)) {
      const std::string best = ckpt + "/checkpoints/best.safetensors", last = ckpt + "/checkpoints/last.safetensors";
      if (std::filesystem::exists(best))
        ckpt = best;
      else if (std::filesystem::exists(last))
        ckpt = last;
      else
        throw std::runtime_error(fmt::format("{}: a folder without checkpoints/best or last.safetensors", ckpt));
    }
    const std::string ext = std::filesystem::path(o->out).extension().string();
    if (o->z.empty() && ext != ".png" && ext != ".jpg" && ext != ".jpeg")
      throw std::invalid_argument(fmt::format("--out {}: a grid is written as .png, .jpg or .jpeg", o->out));
    if (!o->z.empty() && ext != ".safetensors")
      throw std::invalid_argument(fmt::format("--out {}: with --z the images are written as .safetensors", o->out));
    check_distinct_outputs({{"--z", o->z}, {"--out", o->out}, {"--checkpoint", o->checkpoint}}, "", {});
    check_not_input("--out", o->out, {o->z, o->checkpoint}, "");
    gan::Gan g = gan::load_gan_from_checkpoint(ckpt);
    const Device device = Device::parse(o->device);
    g.G->to(device);
    g.G->eval();
    NoGradGuard ng;
    if (!o->z.empty()) {
      nn::TensorFile f = nn::load_safetensors(o->z);
      Tensor z = f.get("z").to(DType::F32);
      if (z.rank() != 2 || z.dim(1) != g.config.code || z.dim(0) < 1)
        throw std::invalid_argument(
            fmt::format("{}: 'z' must be (N, {}) with N >= 1, got {}", o->z, g.config.code, z.shape().str()));
      Tensor x = (*g.G)(z.to(device));
      nn::save_safetensors(o->out, {{"x", x}}, {{"checkpoint", ckpt}});
      fmt::print("wrote x {} to {}\n", x.shape().str(), o->out);
      return;
    }
    Generator gen(o->seed);
    Tensor x = (*g.G)(randn({o->n, g.config.code}, gen).to(device));
    if (ext == ".png")
      gan::write_png_grid(o->out, x);
    else
      gan::write_jpg_grid(o->out, x);
    fmt::print("wrote a grid of {} samples ({}) to {}\n", o->n, g.config.describe(), o->out);
  });
}

void add_split(CLI::App& app) {
  struct Opts {
    std::string data = "fashion-mnist", out = "split.json";
    int64_t final_test = 2000, running_test = 200;
    uint64_t seed = 1;
    std::string select_on = "test";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("split", "Write a reproducible split (final_test, running_test, train) as JSON");
  cmd->add_option("--data", o->data, "Data set (as for train)")->capture_default_str();
  cmd->add_option("--final-test", o->final_test, "Images in the final test set")->capture_default_str()
      ->check(in_range(1, 1e12));
  cmd->add_option("--running-test", o->running_test, "Images of the running test")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--select-on", o->select_on,
                  "The running test: the first final-test images (test: the paper) or the first training images (train)")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--seed", o->seed, "Seed")->capture_default_str()->check(seed_value());
  cmd->add_option("--out", o->out, "Output file")->capture_default_str()->check(output_file());
  cmd->callback([o]() {
    check_not_input("--out", o->out, {}, o->data);
    auto d = gan::open_dataset(o->data);
    gan::Split s = gan::make_split(d->size(), o->final_test, o->running_test, o->seed, o->select_on == "train");
    gan::save_split(o->out, s);
    fmt::print("{}: final_test {}, running_test {}, train {} -> {}\n", d->describe(), s.final_test.size(),
               s.running_test.size(), s.train.size(), o->out);
  });
}

}  // namespace wn::app
