// GAN training with the paper's protocol (docs/paper.md section 4): RMSProp (alpha 0.9, eps
// 1e-6) for G and D; each iteration updates D on a real batch and on a separate
// generated batch, then G with the non-saturating loss on a fresh code batch; PReLU /
// TPReLU slopes are clipped to [0, 1] after every update. The authors' ResNet code's
// "simultaneous" protocol is the other choice (gan_step). A run folder holds
// config.json, split.json, metrics.csv, samples/ and checkpoints/ (best, last, and
// every --save-every), each checkpoint a safetensors file with G, D, both optimizers,
// the iteration, the data cursor and the random state, so a resumed run continues
// bit-identically (same thread count).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "engine/random.h"
#include "gan/data.h"
#include "gan/data_parallel.h"
#include "gan/loader.h"
#include "gan/models.h"
#include "gan/run_dir.h"
#include "gan/split.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

namespace wn::gan {

// D's loss (and G's non-saturating one): binary cross-entropy on D's logit (the paper) or
// least squares on D's sigmoid output (the authors' --ls).
enum class Loss { BCE, LS };
// The order of the updates in one iteration (see gan_step).
enum class Protocol { Alternating, Simultaneous };
// "bce" | "ls" (as config.json and --loss spell it); anything else is an error naming both.
Loss parse_loss(const std::string& s);
const char* loss_name(Loss loss);
// "alternating" | "simultaneous"; anything else is an error naming both.
Protocol parse_protocol(const std::string& s);
const char* protocol_name(Protocol protocol);
// The running-test interval when --test-every is not given: iters / 10, between 1 and
// 1000, so that a short run's curve has 10 points and a long one a point every 1000.
int64_t auto_test_every(int64_t iters);

struct TrainConfig {
  ModelConfig model;  // channels, height, width 0: the data set's own
  std::string data = "fashion-mnist";
  int64_t crop_h = 0, crop_w = 0;  // centre crop before resizing (0: none)
  bool stretch = false;            // resize to width x height ignoring the aspect ratio (--image-size HxW)
  int64_t batch = 32;
  double lr = 1e-4;
  int64_t iters = 2000;           // total iterations of the run
  Loss loss = Loss::BCE;
  Protocol protocol = Protocol::Alternating;
  double rms_eps = nn::kPaperRMSPropEps;  // RMSProp epsilon of G and D (the ResNet code: 1e-8)
  uint64_t seed = 1;
  std::string out = "runs/wn";
  int64_t sample_every = 100, test_every = 1000, save_every = 0, log_every = 100;
  int64_t trace_grads = 0;        // gradient-flow trace at iteration 1 and every N (0: none)
  int64_t final_test = 2000, running_test = 200;
  std::string select_on = "test";  // running test (and 'best') on final-test images (the paper) or "train" images
  std::string split_file;         // reuse this split instead of making one
  int64_t samples = 64;           // images in each sample grid
  Device device = kCPU;           // where G and D train (not stored in config.json)
  int64_t test_steps = 50;        // RMSProp steps of the running test (the hook reads it)
  bool force = false;             // a new run may replace the run in `out` (not stored)
  bool sync_bn = false;           // data-parallel runs: BN statistics over the global batch (--sync-bn)
};

// A loss above this is divergence, as a NaN is (BCE and LS losses of a sane run stay < 100).
constexpr double kLossBound = 1e6;

// Training stopped because a loss became NaN, infinite or above kLossBound, or a parameter
// or optimizer state stopped being finite.
struct DivergedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct StepLosses {
  double d_real = 0, d_fake = 0, g = 0;
};

// Inspection hooks of one step (wngan inspect, gradient traces): each runs after a
// network's backward and before its update, so gradients are the step's own and the
// parameters those the backward saw. Hooks must not change parameters or gradients.
struct StepHooks {
  // Keep each backward's graph (for tapes and per-node statistics); no effect on numbers.
  bool retain_graphs = false;
  // D's losses, in the order of their backward (alternating: real, fake; simultaneous:
  // fake, real).
  std::function<void(const std::vector<Tensor>& losses)> before_d_update;
  // G's backward roots (alternating: G's loss; simultaneous: G's loss, then its output,
  // through which the images' gradient reached G).
  std::function<void(const std::vector<Tensor>& roots)> before_g_update;
};

// One iteration on a real batch. Alternating (the paper, the authors' DCGAN code): D on
// the real batch and on a separately generated batch (one D update), then G with the
// non-saturating loss on fresh codes, D frozen. Simultaneous (the authors' ResNet code):
// one generated batch; G's non-saturating loss through D's current weights, G updated;
// D's fake loss on that same D output, then D's real loss, D updated. ls: least squares
// on sigmoid(D's logit) against 1 / 0 instead of binary cross-entropy.

// With dp, `real` is this rank's slice of the global batch, the codes are this rank's
// slice of a global code batch, and gradients are averaged over the ranks before each
// update and before the hooks, which so read the gradients of the update (the losses
// returned are this rank's).
StepLosses gan_step(Gan& gan, nn::Optimizer& opt_g, nn::Optimizer& opt_d, const Tensor& real, Generator& rng,
                    bool ls = false, bool simultaneous = false, const StepHooks* hooks = nullptr,
                    const DataParallel* dp = nullptr);

// The optimizers of a run: RMSProp (smoothing kPaperRMSPropAlpha, the authors') on G and on D with the
// run's learning rate and epsilon, each step followed by the slope clipping of (T)PReLU.
struct GanOptimizers {
  std::unique_ptr<nn::RMSProp> g, d;
};
GanOptimizers make_optimizers(const Gan& gan, double lr, double eps);

class GradTrace;  // gan/grad_trace.h

class Trainer {
 public:
  // Prepares a run folder (fails before any training if it cannot be written), opens
  // the data, makes or loads the split and builds the models. With resume, reads the
  // folder's config.json and its last checkpoint instead. With comm (mpirun), the run
  // is data-parallel over its ranks and only rank 0 writes the run folder.
  Trainer(TrainConfig cfg, bool resume, dist::Comm* comm = nullptr);
  ~Trainer();
  // Trains up to cfg.iters; returns false if interrupted by SIGINT, SIGTERM or SIGHUP
  // (`last` saved; interrupted_by() names the signal). A second signal during that save
  // does not stop it.
  bool run();
  // The signal that stopped run() (0: none).
  int interrupted_by() const { return signal_; }
  // One iteration on a real batch: D on real and generated batches, then G.
  StepLosses step(const Tensor& real);
  // Writes / reads a checkpoint with everything needed to continue.
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);

  // Called every test_every iterations with G; returns the running reconstruction
  // loss (the evaluation layer provides it; unset: no running test).
  std::function<double(nn::Module& G, const Tensor& images)> running_test;
  // Called with each progress line (default: stderr on rank 0).
  std::function<void(const std::string&)> log;
  // Called after each iteration with its losses (averaged over the ranks).
  std::function<void(int64_t iteration, const StepLosses&)> on_step;
  // The data parallelism of this run (one rank without mpirun).
  const DataParallel& data_parallel() const { return *dp_; }

  const TrainConfig& config() const { return cfg_; }
  Gan& gan() { return gan_; }
  const Dataset& data() const { return *data_; }
  const Split& split() const { return split_; }
  // The training batches, in the order the run takes them (tests read the order here).
  Loader& loader() { return *loader_; }
  int64_t iteration() const { return iter_; }
  double best_loss() const { return best_loss_; }
  int64_t best_iteration() const { return best_iter_; }
  std::string checkpoint_path(const std::string& name) const;
  // Seconds the training loop waited for the next batch (the data path's visible cost).
  double data_wait_seconds() const { return loader_->wait_seconds(); }

 private:
  void write_config() const;
  // Creates and locks the run folder (clearing it with --force): rank 0 only.
  void prepare_folder(bool resume);
  // The constructor's work after prepare_folder (data, split, models, optimizers, state).
  void start(bool resume);
  // After a failed start of a new run: removes what it wrote (the folder was empty).
  void undo_start() noexcept;
  bool created_folder_ = false;
  void sample(int64_t it);
  // The running test of an iteration at a test interval: a better loss saves `best`; then
  // `last` is saved. Returns the loss (-1: no running test).
  double test_and_save(const Tensor& running_images);
  void append_metrics(int64_t it, const StepLosses& l, double secs, double running);
  // What a checkpoint holds besides the tensors: the models, the data cursor, the random
  // state, the optimizers' step counts and the best running test so far.
  std::map<std::string, std::string> checkpoint_metadata() const;
  // Throws DivergedError when a loss is not sane or (with tensors) a parameter or an
  // optimizer state is not finite.
  void check_sane(const StepLosses& l, bool tensors) const;
  // The running test over the ranks' parts of the images (each rank tests its part).
  double running_loss(const Tensor& images);
  TrainConfig cfg_;
  std::unique_ptr<dist::Comm> own_comm_;  // one rank, when none was given
  std::unique_ptr<DataParallel> dp_;
  bool writer_ = true;                    // rank 0: writes the run folder
  RunDir dir_;
  std::unique_ptr<RunLock> lock_;
  std::unique_ptr<MetricsLog> metrics_;
  bool metrics_warned_ = false;
  int signal_ = 0;
  mutable int64_t last_saved_ = -1;  // iteration of the newest `last`
  std::unique_ptr<Dataset> data_;
  Split split_;
  Gan gan_;
  std::unique_ptr<nn::RMSProp> opt_g_, opt_d_;
  std::unique_ptr<GradTrace> trace_;  // with --trace-grads
  bool trace_warned_ = false;
  std::unique_ptr<Loader> loader_;
  Generator rng_;
  Tensor fixed_z_;
  Device device_ = kCPU;
  int64_t iter_ = 0, best_iter_ = -1;
  double best_loss_ = 0;
};

// Reads a run's config.json back.
TrainConfig load_train_config(const std::string& run_dir);
// Builds the models a checkpoint was saved from and loads their weights; also hands
// back the checkpoint's metadata when asked.
Gan load_gan_from_checkpoint(const std::string& checkpoint_path,
                             std::map<std::string, std::string>* metadata = nullptr);
// The same from a checkpoint already read (nn::load_safetensors).
Gan gan_from_checkpoint(const nn::TensorFile& checkpoint);
// Whether a checkpoint holds optimizer state (tensors "optim.G." / "optim.D." or the
// metadata optim_G_steps / optim_D_steps).
bool has_optimizer_state(const nn::TensorFile& checkpoint);
// Copies a checkpoint's optimizer state into the optimizers of its G and D (made by
// make_optimizers for its models): the step counts (both read before any tensor is
// copied), then each optimizer's state tensors (all checked before one is copied); an
// incomplete or mismatched state is a CheckpointError naming the file and what is wrong.
void restore_optimizers(const nn::TensorFile& checkpoint, nn::Optimizer& opt_g, nn::Optimizer& opt_d);

}  // namespace wn::gan
