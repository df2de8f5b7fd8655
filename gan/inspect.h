// One GAN training step read layer by layer through gan_step's hooks, for `wngan
// inspect` and the gradient trace (`train --trace-grads`): per step (D: D's update, G: G's
// update) and layer, tidy rows (step, layer, quantity, value) of gradient norms (of the
// parameter v and of the effective weight w = scale * v / ||v||), cosines with the weight,
// update ratios, parameter statistics, activations and BN projection shares (the
// quantities are listed in gan/grad_trace.h). The hooks only read: the step is the same,
// bit for bit, with and without them.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gan/data.h"
#include "gan/models.h"
#include "gan/trainer.h"
#include "nn/inspect.h"

namespace wn::gan {

// One value of an inspected step: step "D" or "G", layer (a module's name; the
// network's name for its losses), quantity (grad_trace.h's names) and value.
struct StepRow {
  std::string step, layer, quantity;
  double value = 0;
};
// A layer as a step met it (in the order of its forward): the step, its name and type.
struct StepLayer {
  std::string step, layer, type;
};

// A note is made where eps / (factor ||v_u||^2 + eps) (WNLayer::eps_shares) reaches this
// for some unit: there cos(v_u, dL/dv_u) is of the order of the share, not ~1e-7.
constexpr double kEpsShareNote = 1e-3;

class StepInspector {
 public:
  // Reads the steps of gan; with tapes, also keeps each step's tape as coloured DOT.
  explicit StepInspector(Gan& gan, bool tapes = false);
  ~StepInspector();
  StepInspector(const StepInspector&) = delete;
  StepInspector& operator=(const StepInspector&) = delete;
  // Before a step: snapshots the parameters, records activations and effective weights,
  // turns inspection mode on; returns the hooks to pass to gan_step (valid until end()).
  const StepHooks& begin(Protocol protocol);
  // After the step (also when it threw): update ratios; inspection mode off.
  void end();
  // The rows of the step (each network's after its backward, update ratios at the end).
  const std::vector<StepRow>& rows() const;
  // Each step's layers (its network's modules that made an output, Sequentials left out).
  const std::vector<StepLayer>& layers() const;
  // One line per WN layer where eps is not negligible beside ||v_u||^2 (kEpsShareNote).
  const std::vector<std::string>& notes() const;
  // The effective weights of a step's network ("D" or "G") recorded since begin() (for
  // tests and further reading inside the hooks; valid until end()).
  const nn::EffectiveWeights& effective_weights(const std::string& step) const;
  // DOT of a step's tape ("D": D's real and fake losses; "G": G's loss, and in the
  // simultaneous protocol also G's output), "" without tapes.
  const std::string& tape(const std::string& step) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a step's rows come from in a protocol: its batch, forward, backward and update
// (the labels of inspect's tables and of its JSON).
std::string step_description(const std::string& step, Protocol protocol);

// The training settings of an inspected step (a run's, or the architecture's defaults).
struct InspectSettings {
  double lr = 1e-4, rms_eps = nn::kPaperRMSPropEps;
  Loss loss = Loss::BCE;
  Protocol protocol = Protocol::Alternating;
  uint64_t seed = 1;  // the codes of the step are drawn from Generator(seed)
};

// What inspect_step saw.
struct Inspection {
  std::string variant;  // the model's normalization (norm_name)
  Protocol protocol = Protocol::Alternating;
  StepLosses losses;
  std::vector<StepRow> rows;  // StepInspector's, then the losses (layer "D" / "G")
  std::vector<StepLayer> layers;
  std::vector<std::string> notes;
  std::string tape_d, tape_g;  // DOT
  // The value of a row (NaN when there is none).
  double value(const std::string& step, const std::string& layer, const std::string& quantity) const;
};

// One training step of gan (its parameters change) by gan_step with opt, on the batch
// real, read through a StepInspector with tapes.
Inspection inspect_step(Gan& gan, GanOptimizers& opt, const Tensor& real, const InspectSettings& st);

// The real batch of an inspected step: `batch` images of data drawn by Generator(seed).
Tensor inspect_batch(const Dataset& data, int64_t batch, uint64_t seed);

// Everything of the inspections as JSON: settings as given, then per variant its losses,
// notes, and per step its description and layers, each with type and quantities.
nlohmann::json inspection_json(const std::vector<Inspection>& all, const nlohmann::json& settings);
// The header of inspection_csv.
extern const char* const kInspectCsvHeader;
// Everything of the inspections as tidy CSV rows variant,step,layer,quantity,value.
std::string inspection_csv(const std::vector<Inspection>& all);

}  // namespace wn::gan
