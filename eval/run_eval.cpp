#include "eval/run_eval.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "eval/reconstruct.h"
#include "gan/image_grid.h"
#include "gan/loader.h"
#include "gan/run_dir.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::eval {

namespace fs = std::filesystem;

EvalResult evaluate_run(const EvalRequest& r) {
  const gan::RunDir run(r.run);
  gan::TrainConfig cfg = gan::load_train_config(r.run);
  std::string ckpt = r.checkpoint;
  if (ckpt == "best" || ckpt == "last") ckpt = run.checkpoint(ckpt);
  if (!fs::exists(ckpt)) throw std::runtime_error(fmt::format("{}: no such checkpoint", ckpt));
  std::map<std::string, std::string> meta;
  gan::Gan g = gan::load_gan_from_checkpoint(ckpt, &meta);
  g.G->to(r.device);
  auto data = gan::open_dataset(cfg.data, cfg.model.height, cfg.model.width, cfg.model.channels, cfg.crop_h, cfg.crop_w,
                                cfg.stretch);
  if (g.config.channels != data->channels || g.config.height != data->height || g.config.width != data->width)
    throw std::runtime_error(fmt::format("{} makes {}x{}x{} images, the run's data are {}x{}x{}", ckpt, g.config.channels,
                                         g.config.height, g.config.width, data->channels, data->height, data->width));
  gan::Split split = gan::load_split(r.split.empty() ? run.split() : r.split, data->size());
  const int64_t n = std::min<int64_t>(r.n, static_cast<int64_t>(split.final_test.size()));
  std::vector<int64_t> test(split.final_test.begin(), split.final_test.begin() + n);
  std::vector<int64_t> train(split.train.begin(), split.train.begin() + std::min<int64_t>(n, split.train.size()));
  ReconstructOptions o;
  o.steps = r.steps;
  o.batch = r.batch;
  auto progress = [&](const char* what, int64_t total) {
    return [what, total, &r](int64_t done) {
      if (r.verbose) fmt::print(stderr, "\r\033[Kreconstructing {} images: {}/{}", what, done, total);
    };
  };
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor test_images = gan::Loader::load(*data, test);
  Reconstruction rt = reconstruct(*g.G, g.config.code, test_images.to(r.device), o, progress("test", n));
  if (r.verbose) fmt::print(stderr, "\n");
  Reconstruction rr =
      reconstruct(*g.G, g.config.code, gan::Loader::load(*data, train).to(r.device), o, progress("training", train.size()));
  if (r.verbose) fmt::print(stderr, "\n");
  EvalResult res;
  res.test_loss = rt.mean_loss;
  res.train_loss = rr.mean_loss;
  res.iteration = meta.count("iteration") ? std::stoll(meta.at("iteration")) : -1;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.n = n;
  // Outputs: per-image losses, target / reconstruction pairs, and a row in RUN/eval.csv.
  const std::string tag = fmt::format("{}_{}steps", fs::path(ckpt).stem().string(), r.steps);
  fs::create_directories(run.eval_dir());
  std::string csv = std::string(gan::kPerImageHeader) + "\n";
  for (int64_t i = 0; i < n; ++i) csv += gan::format_per_image_row(test[i], "final_test", rt.losses[i]);
  for (size_t i = 0; i < train.size(); ++i) csv += gan::format_per_image_row(train[i], "train", rr.losses[i]);
  res.per_image_csv = run.eval_file(tag, "per_image.csv");
  nn::write_file_atomic(res.per_image_csv, csv);
  // The first (up to) 16 images and their reconstructions.
  const int64_t show = std::min<int64_t>(n, 16), per = test_images.numel() / std::max<int64_t>(n, 1);
  const Shape shown{show, test_images.dim(1), test_images.dim(2), test_images.dim(3)};
  auto first = [&](const Tensor& t) {
    std::vector<double> v = t.to_vector();
    v.resize(static_cast<size_t>(show * per));
    return Tensor::from_vector(v, shown);
  };
  res.pairs_png = run.eval_file(tag, "pairs.png");
  gan::write_png_rows(res.pairs_png, {first(test_images), first(rt.images)});
  res.first_file = run.eval_file(tag, "first.safetensors");
  nn::save_safetensors(res.first_file, {{"targets", first(test_images)}, {"reconstructions", first(rt.images)}},
                       {{"checkpoint", ckpt}, {"iteration", std::to_string(res.iteration)},
                        {"steps", std::to_string(r.steps)}});
  gan::append_eval_row(run.eval_table(), {ckpt, res.iteration, n, r.steps, res.test_loss, res.train_loss, res.seconds});
  return res;
}

std::string final_checkpoint(const std::string& run) {
  return fs::exists(gan::RunDir(run).checkpoint("best")) ? "best" : "last";
}

std::function<double(nn::Module&, const Tensor&)> running_test_hook(int64_t code, int64_t steps) {
  return [code, steps](nn::Module& G, const Tensor& images) {
    ReconstructOptions o;
    o.steps = steps;
    return reconstruct(G, code, images, o).mean_loss;
  };
}

}  // namespace wn::eval
