// `wngan eval RUN`: the final test (docs/paper.md section 5, eval/run_eval.h): reconstructs the
// final-test images with a checkpoint's generator and reports the mean per-image loss,
// with the same measure on as many training images so that over-fitting shows as a gap.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "gan/signals.h"
#include "engine/dist/comm.h"
#include "engine/parallel.h"
#include "eval/run_eval.h"

namespace wn::app {

void add_eval(CLI::App& app) {
  struct Opts {
    eval::EvalRequest request;
    std::string device = "cpu";
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  eval::EvalRequest& r = o->request;
  CLI::App* cmd = app.add_subcommand("eval", "Final test: reconstruction loss of the final-test images (and as many training images)");
  cmd->add_option("run", r.run, "Run folder")->required();
  cmd->add_option("--checkpoint", r.checkpoint, "best | last | a checkpoint file")->capture_default_str();
  add_checked(cmd, "--n", r.n, "Final-test images to reconstruct", in_range(1, 1e12));
  add_checked(cmd, "--steps", r.steps, "RMSProp steps on z per image", in_range(0, 1e9));
  add_checked(cmd, "--batch", r.batch, "Images per batch (does not change the result)", in_range(1, 65536));
  cmd->add_option("--split", r.split, "Use this split.json instead of the run's");
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)")
      ->check(in_range(0, 4096));
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  add_max_pixels_option(cmd);
  cmd->callback([o]() {
    gan::StopSignals signals;  // a signal stops the reconstruction between steps (rc 128 + signal)
    if (o->threads > 0) set_num_threads(o->threads);
    eval::EvalRequest& r = o->request;
    r.device = Device::parse(o->device);
    // Under mpirun the images are split over the ranks; rank 0 reports and writes.
    dist::Comm& world = dist::world();
    if (world.size() > 1 && r.device.type == DeviceType::CUDA && o->device.find(':') == std::string::npos)
      r.device = Device{DeviceType::CUDA, world.local_rank()};
    r.comm = &world;
    r.verbose = world.is_root();
    eval::EvalResult e = eval::evaluate_run(r);
    gan::throw_if_stopped();
    if (!world.is_root()) return;
    fmt::print("final test reconstruction error: {:.6f} per pixel value  ({} images, {} steps, checkpoint at iteration {})\n", e.test_loss,
               e.n, r.steps, e.iteration);
    fmt::print("training images, same measure:  {:.6f}  (train - test {:+.6f}; clearly negative would mean over-fitting)\n",
               e.train_loss, e.train_loss - e.test_loss);
    fmt::print("per-image losses: {}\ntargets (top) and reconstructions (bottom): {}\nrow added to {}/eval.csv\n",
               e.per_image_csv, e.pairs_png, r.run);
  });
}

}  // namespace wn::app
